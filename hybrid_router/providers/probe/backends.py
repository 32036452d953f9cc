"""The checks per provider kind: reachable and its version, which models are present, their
context windows and tools hints, then (where `tools`) the tool round trip for each model present.

Each fills in a `BackendReport` and raises a `BackendError` when the backend as a whole fails;
`probe.probe_backend` turns that into the report's error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx2 as httpx

from ...config.schema import Provider
from ..chat import request_headers, same_model
from ..errors import BackendError, ErrorStatus
from .http import error_text, metadata_timeout, probe_request, public_url, read_json
from .report import MISSING, OK, BackendReport, ModelReport, opt_int
from .tools import tool_round_trip

ANTHROPIC_VERSION = "2023-06-01"
OLLAMA_MESSAGES_API_SINCE = (0, 14, 0)


def _version_tuple(version: str) -> tuple[int, int, int] | None:
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        return None
    major, minor, patch = (int(g) if g else 0 for g in match.groups())
    if (major, minor, patch) == (0, 0, 0):
        return None  # a development build: its version says nothing
    return major, minor, patch


def ollama_serves_messages(version: str | None) -> bool | None:
    """Whether an Ollama of this version has the Anthropic-compatible /v1/messages (0.14+)."""
    parsed = _version_tuple(version) if version else None
    return None if parsed is None else parsed >= OLLAMA_MESSAGES_API_SINCE


def _server_root(base_url: str) -> str:
    """The server's root for an OpenAI-style base URL (`http://h:8080/v1` -> `http://h:8080`)."""
    return re.sub(r"/v1/?$", "", base_url.rstrip("/"))


async def probe_ollama(
    client: httpx.AsyncClient,
    report: BackendReport,
    provider: Provider,
    base_url: str,
    tools: bool,
    tool_timeout: float,
) -> None:
    shown = public_url(base_url)
    meta = metadata_timeout(provider)
    headers = request_headers(provider, None)
    response = await probe_request(
        client, "GET", f"{base_url}/api/version", headers=headers, timeout=meta, shown_url=shown
    )
    report.reachable = True
    if response.status_code == 200:
        data = read_json(response, shown)
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(version, str):
            report.version = version
            report.messages_api = ollama_serves_messages(version)
    else:
        raise ErrorStatus(
            f"{shown}/api/version answered HTTP {response.status_code} (is this Ollama?)",
            response.status_code,
        )
    response = await probe_request(
        client, "GET", f"{base_url}/api/tags", headers=headers, timeout=meta, shown_url=shown
    )
    if response.status_code != 200:
        raise ErrorStatus(
            f"/api/tags: HTTP {response.status_code}: {error_text(response)}", response.status_code
        )
    data = read_json(response, shown)
    entries = data.get("models") if isinstance(data, dict) else None
    installed = [
        str(m.get("name") or m.get("model"))
        for m in entries or []
        if isinstance(m, dict) and (m.get("name") or m.get("model"))
    ]
    running = await _ollama_running(client, base_url, headers, meta, shown)
    for entry in report.models:
        name = next((n for n in installed if same_model(entry.model, n)), None)
        entry.runtime_context = next(
            (window for loaded, window in running.items() if same_model(entry.model, loaded)), None
        )
        entry.present = name is not None
        if name is None:
            entry.status = MISSING
            continue
        entry.status = OK
        capabilities = await _ollama_show(client, entry, base_url, name, headers, meta, shown)
        if tools:
            entry.tools, entry.detail = await tool_round_trip(
                client,
                provider,
                base_url,
                None,
                name,
                tool_timeout,
                thinks="thinking" in capabilities,
            )


async def _ollama_running(
    client: httpx.AsyncClient, base_url: str, headers: dict[str, str], meta: Any, shown: str
) -> dict[str, int]:
    """Loaded model -> the window it runs with (`/api/ps`), read before the tool round trips
    load anything: what the proxy's requests (or another client) left loaded. Empty when the
    server does not say (older Ollama)."""
    response = await probe_request(
        client, "GET", f"{base_url}/api/ps", headers=headers, timeout=meta, shown_url=shown
    )
    if response.status_code != 200:
        return {}
    data = read_json(response, shown)
    running: dict[str, int] = {}
    for item in (data.get("models") if isinstance(data, dict) else None) or []:
        if not isinstance(item, dict):
            continue
        name, window = item.get("name") or item.get("model"), item.get("context_length")
        if isinstance(name, str) and isinstance(window, int) and window > 0:
            running[name] = window
    return running


async def _ollama_show(
    client: httpx.AsyncClient,
    entry: ModelReport,
    base_url: str,
    name: str,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    shown: str,
) -> list[str]:
    """Fill in the window and the tools hint from `/api/show`; return the capabilities."""
    try:
        response = await probe_request(
            client,
            "POST",
            f"{base_url}/api/show",
            json_body={"model": name},
            headers=headers,
            timeout=timeout,
            shown_url=shown,
        )
    except BackendError as exc:
        entry.detail = f"/api/show: {exc}"
        return []
    if response.status_code != 200:
        entry.detail = f"/api/show: HTTP {response.status_code}: {error_text(response)}"
        return []
    try:
        data = response.json()
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    info = data.get("model_info")
    if isinstance(info, dict):
        arch = info.get("general.architecture")
        window = info.get(f"{arch}.context_length") if isinstance(arch, str) else None
        if not isinstance(window, int):
            window = next(
                (
                    v
                    for k, v in info.items()
                    if k.endswith(".context_length") and isinstance(v, int)
                ),
                None,
            )
        entry.context_window = opt_int(window)
    capabilities = data.get("capabilities")
    if not isinstance(capabilities, list):
        return []
    entry.tools_hint = "tools" in capabilities
    return [str(c) for c in capabilities]


async def probe_openai(
    client: httpx.AsyncClient,
    report: BackendReport,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    tools: bool,
    tool_timeout: float,
) -> None:
    shown = public_url(base_url)
    meta = metadata_timeout(provider)
    headers = request_headers(provider, api_key)
    response = await probe_request(
        client, "GET", f"{base_url}/models", headers=headers, timeout=meta, shown_url=shown
    )
    report.reachable = True
    if response.status_code != 200:
        raise ErrorStatus(
            f"{shown}/models: HTTP {response.status_code}: {error_text(response)}",
            response.status_code,
        )
    data = read_json(response, shown)
    listed = data.get("data") if isinstance(data, dict) else None
    listed = [m for m in listed or [] if isinstance(m, dict) and m.get("id")]
    window_in_use: int | None = None
    if provider.kind == "openai":
        window_in_use = await _llama_props(client, report, provider, base_url, headers, meta)
    for entry in report.models:
        found = _find_listed(listed, entry.model)
        if found is None:
            if listed:
                entry.present, entry.status = False, MISSING
                continue
            entry.present = None  # the server lists nothing: can't tell, try the model anyway
        else:
            entry.present = True
        entry.status = OK
        entry.context_window = window_in_use or _listed_window(found)
        if provider.kind == "openrouter" and found is not None:
            supported = found.get("supported_parameters")
            if isinstance(supported, list):
                entry.tools_hint = "tools" in supported
        if not tools:
            continue
        if provider.kind == "openrouter":
            if entry.tools_hint is False:
                entry.tools = False
                entry.detail = "OpenRouter lists no tool support for this model"
                continue
            if not entry.model.endswith(":free"):
                entry.detail = "tool probe skipped: not a free model"
                continue
        entry.tools, entry.detail = await tool_round_trip(
            client, provider, base_url, api_key, entry.model, tool_timeout
        )


def _find_listed(listed: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    for item in listed:
        names = [item.get("id")]
        aliases = item.get("aliases")  # llama.cpp
        if isinstance(aliases, list):
            names += aliases
        if any(isinstance(n, str) and (n == model or same_model(model, n)) for n in names):
            return item
    return None


def _listed_window(item: dict[str, Any] | None) -> int | None:
    """The window a /models entry states: OpenRouter, vLLM, llama.cpp (`meta.n_ctx`)."""
    if item is None:
        return None
    meta: dict[str, Any] = item["meta"] if isinstance(item.get("meta"), dict) else {}
    top: dict[str, Any] = item["top_provider"] if isinstance(item.get("top_provider"), dict) else {}
    for value in (
        item.get("context_length"),
        item.get("max_model_len"),
        meta.get("n_ctx"),
        top.get("context_length"),
        item.get("max_context_length"),
    ):
        window = opt_int(value)
        if window:
            return window
    return None


async def _llama_props(
    client: httpx.AsyncClient,
    report: BackendReport,
    provider: Provider,
    base_url: str,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
) -> int | None:
    """llama.cpp's `GET /props`: the window in use and the build; None elsewhere (404)."""
    root = _server_root(base_url)
    try:
        response = await probe_request(
            client,
            "GET",
            f"{root}/props",
            headers=headers,
            timeout=timeout,
            shown_url=public_url(root),
        )
        if response.status_code != 200:
            return None
        data = response.json()
    except (BackendError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    build = data.get("build_info")
    if isinstance(build, str) and build:
        report.version = f"llama.cpp {build}"
    settings = data.get("default_generation_settings")
    window = settings.get("n_ctx") if isinstance(settings, dict) else None
    return opt_int(window) or opt_int(data.get("n_ctx"))


async def probe_anthropic(
    client: httpx.AsyncClient,
    report: BackendReport,
    provider: Provider,
    base_url: str,
    api_key: str,
) -> None:
    shown = public_url(base_url)
    headers = {
        "x-api-key": api_key,
        "anthropic-version": ANTHROPIC_VERSION,
        "Accept": "application/json",
    }
    response = await probe_request(
        client,
        "GET",
        f"{base_url}/v1/models?limit=1000",
        headers=headers,
        timeout=metadata_timeout(provider),
        shown_url=shown,
    )
    report.reachable = True
    if response.status_code in (401, 403):
        env = provider.api_key_env or "the API key"
        raise ErrorStatus(
            f"the API rejected {env} (HTTP {response.status_code})", response.status_code
        )
    if response.status_code != 200:
        raise ErrorStatus(
            f"/v1/models: HTTP {response.status_code}: {error_text(response)}",
            response.status_code,
        )
    data = read_json(response, shown)
    listed = data.get("data") if isinstance(data, dict) else None
    ids = [m.get("id") for m in listed or [] if isinstance(m, dict)]
    for entry in report.models:
        entry.status = OK
        if entry.model in ids:
            entry.present = True
        else:
            entry.present = None
            entry.detail = "not in the API's model list (an alias may still work)"
        for item in listed or []:
            if isinstance(item, dict) and item.get("id") == entry.model:
                entry.context_window = opt_int(item.get("max_input_tokens"))
