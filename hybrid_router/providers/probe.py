"""What each configured backend can actually do: reachable, models present, context window,
and whether a model really answers with a tool call (a tiny round trip, not the model card).

`hybrid-router doctor` runs `probe_all` and saves the reports under the home; the proxy reads
them back (`load_reports`) and asks `tool_capable` before sending a tool-using turn to a model.

What is probed, per provider kind:

- ollama: `GET /api/version` (reachable, version, whether `/v1/messages` exists: Ollama 0.14+),
  `GET /api/tags` (model present), `POST /api/show` (`model_info["<arch>.context_length"]`, and
  `capabilities` as a hint), `POST /api/chat` with one tool (the round trip).
- openai (llama.cpp, vLLM, LM Studio): `GET <base>/models` (reachable, model present, and the
  window when the server lists it: llama.cpp's `meta.n_ctx`, vLLM's `max_model_len`), llama.cpp's
  `GET /props` (the window in use, `default_generation_settings.n_ctx`, and `build_info` as the
  version), `POST <base>/chat/completions` with one tool.
- openrouter: needs its key (without one the router skips it, and so does the probe);
  `GET <base>/models` (present, `context_length`, `supported_parameters` as the tools hint); the
  round trip only for `:free` models, which cost nothing.
- anthropic: only with a key, `GET /v1/models`; never a (paid) tool probe.

No API key ever appears in a report: keys are sent as headers only, and any error text a server
echoes back is scrubbed of the key before it is stored.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2 as httpx

from .. import home
from ..config import Provider, RouterConfig, provider_api_key, provider_base_url
from .chat import error_message, request_headers, same_model

CACHE_VERSION = 1
CACHE_RELATIVE_PATH = os.path.join("state", "probe.json")
DEFAULT_MAX_AGE_SECONDS = 24 * 3600.0  # what the proxy should pass to load_reports

TOOL_PROBE_TIMEOUT = 30.0  # a cold local model may need this long to load and prefill
TOOL_PROBE_MAX_TOKENS = 128  # a tool call is ~20 tokens; room for a short preamble
METADATA_READ_TIMEOUT = 10.0
ANTHROPIC_VERSION = "2023-06-01"
OLLAMA_MESSAGES_API_SINCE = (0, 14, 0)

PROBE_TOOL_NAME = "get_weather"
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": PROBE_TOOL_NAME,
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name"}},
            "required": ["city"],
        },
    },
}
PROBE_MESSAGES = [
    {
        "role": "system",
        "content": "You answer by calling tools. You have no weather data of your own: "
        "to answer a weather question, call the get_weather tool.",
    },
    {"role": "user", "content": "What is the weather in Paris right now?"},
]

# Model status values (ModelReport.status).
OK = "ok"
MISSING = "missing"
UNREACHABLE = "unreachable"
SKIPPED = "skipped"  # the backend was not checked (no API key)
ERROR = "error"  # reachable, but the check failed (HTTP error, bad answer)
UNCHECKED = "unchecked"  # internal: not decided yet


@dataclass
class ModelReport:
    model: str
    status: str = UNCHECKED  # ok | missing | unreachable | skipped | error
    present: bool | None = None  # None: could not tell
    context_window: int | None = None  # None: unknown
    tools: bool | None = None  # the round trip: None = untested or inconclusive
    tools_hint: bool | None = None  # what the server claims (Ollama capabilities, OpenRouter)
    detail: str | None = None  # why tools is False/None, or what went wrong

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelReport:
        return cls(
            model=str(data["model"]),
            status=str(data.get("status") or UNCHECKED),
            present=_opt_bool(data.get("present")),
            context_window=_opt_int(data.get("context_window")),
            tools=_opt_bool(data.get("tools")),
            tools_hint=_opt_bool(data.get("tools_hint")),
            detail=_opt_str(data.get("detail")),
        )


@dataclass
class BackendReport:
    provider: str
    kind: str
    base_url: str
    reachable: bool | None = None  # None: not checked (see `skipped`)
    version: str | None = None
    messages_api: bool | None = None  # Ollama: serves /v1/messages (0.14+); None elsewhere
    skipped: str | None = None  # why the backend was not checked
    error: str | None = None
    checked_at: float = field(default_factory=time.time)
    models: list[ModelReport] = field(default_factory=list)

    def model(self, name: str) -> ModelReport | None:
        for entry in self.models:
            if entry.model == name or same_model(name, entry.model):
                return entry
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackendReport:
        models = data.get("models") or []
        if not isinstance(models, list):
            raise TypeError("models is not a list")
        return cls(
            provider=str(data["provider"]),
            kind=str(data["kind"]),
            base_url=str(data.get("base_url") or ""),
            reachable=_opt_bool(data.get("reachable")),
            version=_opt_str(data.get("version")),
            messages_api=_opt_bool(data.get("messages_api")),
            skipped=_opt_str(data.get("skipped")),
            error=_opt_str(data.get("error")),
            checked_at=float(data.get("checked_at") or 0.0),
            models=[ModelReport.from_dict(m) for m in models],
        )


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


class _ProbeFailure(Exception):
    """A request failed; `unreachable` when nothing answered at all."""

    def __init__(self, message: str, *, unreachable: bool = False, status: int | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        self.status = status


def public_url(url: str) -> str:
    """The URL without any user:password part (a base URL may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _scrub(text: str | None, secrets: Iterable[str | None]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _metadata_timeout(provider: Provider) -> httpx.Timeout:
    return httpx.Timeout(
        METADATA_READ_TIMEOUT, connect=provider.connect_timeout, pool=provider.connect_timeout
    )


def _error_text(response: httpx.Response) -> str:
    """The readable part of an error body (Ollama's, OpenAI's and Anthropic's shapes), short."""
    return error_message(response.text) or response.reason_phrase


async def _request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    shown_url: str,
    json_body: Any = None,
) -> httpx.Response:
    """One request; transport failures become _ProbeFailure with a message fit for a user."""
    try:
        return await client.request(method, url, headers=dict(headers), json=json_body,
                                    timeout=timeout)
    except httpx.ConnectError:
        raise _ProbeFailure(f"cannot connect to {shown_url}", unreachable=True) from None
    except httpx.TimeoutException as exc:
        unreachable = isinstance(exc, httpx.ConnectTimeout)
        raise _ProbeFailure(f"{shown_url} did not answer in time",
                            unreachable=unreachable) from None
    except httpx.HTTPError as exc:
        raise _ProbeFailure(f"the connection to {shown_url} failed: {type(exc).__name__}",
                            unreachable=True) from None
    except httpx.InvalidURL:
        raise _ProbeFailure(f"{shown_url} is not a valid URL", unreachable=True) from None


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _ProbeFailure(f"{what} did not answer with JSON") from None


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


def _tool_call_ok(name: Any, arguments: Any) -> bool:
    if name != PROBE_TOOL_NAME:
        return False
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return False
    return isinstance(arguments, dict)


def _no_call_detail(text: str, finish_reason: Any, calls: list[Any]) -> str:
    if calls:
        names = ", ".join(sorted({str(_call_name(c)) for c in calls}))
        return f"called {names} instead of a well-formed {PROBE_TOOL_NAME} call"
    snippet = " ".join(text.split())[:60]
    limit = f" (cut at {TOOL_PROBE_MAX_TOKENS} tokens)" if finish_reason == "length" else ""
    return f"answered with text{limit} instead of calling {PROBE_TOOL_NAME}" + (
        f": {snippet!r}" if snippet else ""
    )


def _call_name(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    return function.get("name") if isinstance(function, dict) else None


def _call_arguments(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    return function.get("arguments") if isinstance(function, dict) else None


# --------------------------------------------------------------------------------------------
# The tool round trip
# --------------------------------------------------------------------------------------------


async def _tool_round_trip(
    client: httpx.AsyncClient,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    model: str,
    timeout_seconds: float,
    *,
    thinks: bool = False,
) -> tuple[bool | None, str | None]:
    """Offer one trivial tool; (True, None) when the reply is a well-formed call to it.

    (False, why) when the model answered without one; (None, why) when the probe could not
    tell (timeout, server error, rate limit, the token budget spent on thinking).
    """
    shown = public_url(base_url)
    timeout = httpx.Timeout(timeout_seconds, connect=provider.connect_timeout)
    if provider.kind == "ollama":
        url = f"{base_url}/api/chat"
        body: dict[str, Any] = {
            "model": model,
            "messages": PROBE_MESSAGES,
            "tools": [PROBE_TOOL],
            "stream": False,
            "options": {"temperature": 0, "num_predict": TOOL_PROBE_MAX_TOKENS},
        }
        if thinks:  # don't spend the small budget on thinking (only sent to thinking models:
            body["think"] = False  # some Ollama versions refuse `think` for the others)
    else:
        url = f"{base_url}/chat/completions"
        body = {
            "model": model,
            "messages": PROBE_MESSAGES,
            "tools": [PROBE_TOOL],
            "tool_choice": "auto",
            "max_tokens": TOOL_PROBE_MAX_TOKENS,
            "temperature": 0,
            "stream": False,
        }
    try:
        with anyio.fail_after(timeout_seconds):
            response = await _request(client, "POST", url, json_body=body, timeout=timeout,
                                      headers=request_headers(provider, api_key),
                                      shown_url=shown)
    except TimeoutError:
        return None, f"tool probe: no answer within {timeout_seconds:g} s"
    except _ProbeFailure as exc:
        return None, f"tool probe: {exc}"
    if response.status_code != 200:
        message = _error_text(response)
        if response.status_code == 400 and "tool" in message.lower():
            return False, f"tool probe refused: {message}"  # Ollama: "... does not support tools"
        if response.status_code == 429:
            return None, "tool probe: rate limited, try again later"
        return None, f"tool probe: HTTP {response.status_code}: {message}"
    try:
        data = response.json()
    except ValueError:
        return None, "tool probe: the answer was not JSON"
    if not isinstance(data, dict):
        return None, "tool probe: unexpected answer"
    if provider.kind == "ollama":
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        calls = message.get("tool_calls") or []
        text = str(message.get("content") or "")
        finish = data.get("done_reason")
    else:
        if isinstance(data.get("error"), (dict, str)):
            return None, f"tool probe: {_error_text(response)}"
        choices = data.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        calls = message.get("tool_calls") or []
        text = str(message.get("content") or "")
        finish = choice.get("finish_reason")
    if not isinstance(calls, list):
        calls = []
    if any(_tool_call_ok(_call_name(c), _call_arguments(c)) for c in calls):
        return True, None
    if finish == "length" and not calls and not text.strip():
        return None, f"tool probe: the {TOOL_PROBE_MAX_TOKENS}-token budget went on thinking"
    return False, _no_call_detail(text, finish, calls)


# --------------------------------------------------------------------------------------------
# Per kind
# --------------------------------------------------------------------------------------------


async def _probe_ollama(
    client: httpx.AsyncClient, report: BackendReport, provider: Provider, base_url: str,
    tools: bool, tool_timeout: float,
) -> None:
    shown = public_url(base_url)
    meta = _metadata_timeout(provider)
    headers = request_headers(provider, None)
    response = await _request(client, "GET", f"{base_url}/api/version", headers=headers,
                              timeout=meta, shown_url=shown)
    report.reachable = True
    if response.status_code == 200:
        data = _json(response, shown)
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(version, str):
            report.version = version
            report.messages_api = ollama_serves_messages(version)
    else:
        raise _ProbeFailure(f"{shown}/api/version answered HTTP {response.status_code}"
                            " (is this Ollama?)", status=response.status_code)
    response = await _request(client, "GET", f"{base_url}/api/tags", headers=headers,
                              timeout=meta, shown_url=shown)
    if response.status_code != 200:
        raise _ProbeFailure(f"/api/tags: HTTP {response.status_code}: {_error_text(response)}")
    data = _json(response, shown)
    entries = data.get("models") if isinstance(data, dict) else None
    installed = [str(m.get("name") or m.get("model")) for m in entries or []
                 if isinstance(m, dict) and (m.get("name") or m.get("model"))]
    for entry in report.models:
        name = next((n for n in installed if same_model(entry.model, n)), None)
        entry.present = name is not None
        if name is None:
            entry.status = MISSING
            continue
        entry.status = OK
        capabilities = await _ollama_show(client, entry, base_url, name, headers, meta, shown)
        if tools:
            entry.tools, entry.detail = await _tool_round_trip(
                client, provider, base_url, None, name, tool_timeout,
                thinks="thinking" in capabilities)


async def _ollama_show(
    client: httpx.AsyncClient, entry: ModelReport, base_url: str, name: str,
    headers: Mapping[str, str], timeout: httpx.Timeout, shown: str,
) -> list[str]:
    """Fill in the window and the tools hint from `/api/show`; return the capabilities."""
    try:
        response = await _request(client, "POST", f"{base_url}/api/show",
                                  json_body={"model": name}, headers=headers, timeout=timeout,
                                  shown_url=shown)
    except _ProbeFailure as exc:
        entry.detail = f"/api/show: {exc}"
        return []
    if response.status_code != 200:
        entry.detail = f"/api/show: HTTP {response.status_code}: {_error_text(response)}"
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
            window = next((v for k, v in info.items()
                           if k.endswith(".context_length") and isinstance(v, int)), None)
        entry.context_window = _opt_int(window)
    capabilities = data.get("capabilities")
    if not isinstance(capabilities, list):
        return []
    entry.tools_hint = "tools" in capabilities
    return [str(c) for c in capabilities]


async def _probe_openai(
    client: httpx.AsyncClient, report: BackendReport, provider: Provider, base_url: str,
    api_key: str | None, tools: bool, tool_timeout: float,
) -> None:
    shown = public_url(base_url)
    meta = _metadata_timeout(provider)
    headers = request_headers(provider, api_key)
    response = await _request(client, "GET", f"{base_url}/models", headers=headers,
                              timeout=meta, shown_url=shown)
    report.reachable = True
    if response.status_code != 200:
        raise _ProbeFailure(f"{shown}/models: HTTP {response.status_code}: "
                            f"{_error_text(response)}", status=response.status_code)
    data = _json(response, shown)
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
        entry.tools, entry.detail = await _tool_round_trip(
            client, provider, base_url, api_key, entry.model, tool_timeout)


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
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    top = item.get("top_provider") if isinstance(item.get("top_provider"), dict) else {}
    for value in (item.get("context_length"), item.get("max_model_len"), meta.get("n_ctx"),
                  top.get("context_length"), item.get("max_context_length")):
        window = _opt_int(value)
        if window:
            return window
    return None


async def _llama_props(
    client: httpx.AsyncClient, report: BackendReport, provider: Provider, base_url: str,
    headers: Mapping[str, str], timeout: httpx.Timeout,
) -> int | None:
    """llama.cpp's `GET /props`: the window in use and the build; None elsewhere (404)."""
    root = _server_root(base_url)
    try:
        response = await _request(client, "GET", f"{root}/props", headers=headers,
                                  timeout=timeout, shown_url=public_url(root))
        if response.status_code != 200:
            return None
        data = response.json()
    except (_ProbeFailure, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    build = data.get("build_info")
    if isinstance(build, str) and build:
        report.version = f"llama.cpp {build}"
    settings = data.get("default_generation_settings")
    window = settings.get("n_ctx") if isinstance(settings, dict) else None
    return _opt_int(window) or _opt_int(data.get("n_ctx"))


async def _probe_anthropic(
    client: httpx.AsyncClient, report: BackendReport, provider: Provider, base_url: str,
    api_key: str,
) -> None:
    shown = public_url(base_url)
    headers = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION,
               "Accept": "application/json"}
    response = await _request(client, "GET", f"{base_url}/v1/models?limit=1000",
                              headers=headers, timeout=_metadata_timeout(provider),
                              shown_url=shown)
    report.reachable = True
    if response.status_code in (401, 403):
        env = provider.api_key_env or "the API key"
        raise _ProbeFailure(f"the API rejected {env} (HTTP {response.status_code})",
                            status=response.status_code)
    if response.status_code != 200:
        raise _ProbeFailure(f"/v1/models: HTTP {response.status_code}: {_error_text(response)}",
                            status=response.status_code)
    data = _json(response, shown)
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
                entry.context_window = _opt_int(item.get("max_input_tokens"))


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


async def probe_backend(
    client: httpx.AsyncClient,
    provider_name: str,
    provider: Provider,
    base_url: str,
    api_key: str | None,
    models: Iterable[str],
    *,
    tools: bool = True,
    tool_timeout: float = TOOL_PROBE_TIMEOUT,
) -> BackendReport:
    """Probe one backend for `models`; never raises for what the backend does or doesn't do.

    `tools=False` skips the tool round trips (their results stay None: untested).
    """
    base_url = base_url.rstrip("/")
    report = BackendReport(provider=provider_name, kind=provider.kind,
                           base_url=public_url(base_url))
    seen: set[str] = set()
    for model in models:
        if model not in seen:
            seen.add(model)
            report.models.append(ModelReport(model=model))
    try:
        if provider.kind in ("openrouter", "anthropic") and not api_key:
            env = provider.api_key_env or "its API key"
            report.skipped = f"{env} not set"
            for entry in report.models:
                entry.status = SKIPPED
        elif provider.kind == "ollama":
            await _probe_ollama(client, report, provider, base_url, tools, tool_timeout)
        elif provider.kind in ("openai", "openrouter"):
            await _probe_openai(client, report, provider, base_url, api_key, tools, tool_timeout)
        elif provider.kind == "anthropic":
            assert api_key is not None
            await _probe_anthropic(client, report, provider, base_url, api_key)
        else:
            report.error = f"unknown provider kind {provider.kind!r}"
    except _ProbeFailure as exc:
        report.error = str(exc)
        if exc.unreachable:
            report.reachable = False
    except Exception as exc:  # noqa: BLE001 -- an unforeseen answer must not stop doctor
        report.error = f"the probe failed: {type(exc).__name__}: {exc}"[:300]
    for entry in report.models:
        if entry.status == UNCHECKED or report.reachable is False:
            entry.status = UNREACHABLE if report.reachable is False else ERROR
    report.error = _scrub(report.error, [api_key])
    for entry in report.models:
        entry.detail = _scrub(entry.detail, [api_key])
    report.checked_at = time.time()
    return report


def configured_backends(config: RouterConfig) -> dict[str, list[str]]:
    """Every provider a tier or a tier's fallback uses, with its models, in config order."""
    backends: dict[str, list[str]] = {}

    def add(provider: str, model: str) -> None:
        models = backends.setdefault(provider, [])
        if model not in models:
            models.append(model)

    for tier in config.tiers.values():
        add(tier.provider, tier.model)
    for tier in config.tiers.values():
        for fallback in tier.fallbacks:
            if fallback.provider and fallback.model:
                add(fallback.provider, fallback.model)
            # a fallback naming a tier is that tier's primary: already added
    return backends


async def probe_all(
    config: RouterConfig,
    environ: Mapping[str, str],
    client: httpx.AsyncClient,
    *,
    tools: bool = True,
    tool_timeout: float = TOOL_PROBE_TIMEOUT,
) -> list[BackendReport]:
    """Probe every configured backend, concurrently; reports in config order."""
    backends = configured_backends(config)
    results: dict[str, BackendReport] = {}

    async def run(name: str, models: list[str]) -> None:
        provider = config.providers[name]
        results[name] = await probe_backend(
            client, name, provider, provider_base_url(provider, environ),
            provider_api_key(provider, environ), models, tools=tools, tool_timeout=tool_timeout,
        )

    async with anyio.create_task_group() as group:
        for name, models in backends.items():
            group.start_soon(run, name, models)
    return [results[name] for name in backends]


def tool_capable(reports: Iterable[BackendReport], provider: str, model: str) -> bool | None:
    """Whether `model` on `provider` answered the tool probe with a tool call.

    None: unknown (never probed, probe inconclusive, no cache); the proxy treats it as capable.
    """
    for report in reports:
        if report.provider != provider:
            continue
        entry = report.model(model)
        if entry is not None:
            return entry.tools
    return None


def reported_window(reports: Iterable[BackendReport], provider: str, model: str) -> int | None:
    """The context window the backend itself reported for `model` (None: unknown)."""
    for report in reports:
        if report.provider == provider:
            entry = report.model(model)
            if entry is not None:
                return entry.context_window
    return None


def carry_over_tools(reports: list[BackendReport], previous: Iterable[BackendReport]) -> None:
    """Keep earlier tool results where the new reports have none (`doctor --no-tools`)."""
    previous = list(previous)
    for report in reports:
        for entry in report.models:
            if entry.tools is None and entry.status == OK:
                earlier = tool_capable(previous, report.provider, entry.model)
                if earlier is not None:
                    entry.tools = earlier
                    entry.detail = entry.detail or "tools: from an earlier probe"


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------


def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """`<home>/state/probe.json`."""
    return Path(home.home_path(environ)) / CACHE_RELATIVE_PATH


def save_reports(path: Path | str, reports: Iterable[BackendReport]) -> None:
    """Write the reports atomically (a temporary file renamed over the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": CACHE_VERSION,
        "saved_at": time.time(),
        "reports": [report.to_dict() for report in reports],
    }
    fd, temporary = tempfile.mkstemp(prefix=".probe-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def load_reports(path: Path | str, max_age_seconds: float | None = DEFAULT_MAX_AGE_SECONDS,
                 ) -> list[BackendReport]:
    """The saved reports, or [] when the file is missing, unreadable, corrupt or too old.

    `max_age_seconds=None` accepts any age.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
        if not isinstance(payload, dict) or payload.get("version") != CACHE_VERSION:
            return []
        saved_at = float(payload["saved_at"])
        age = time.time() - saved_at
        if max_age_seconds is not None and (age > max_age_seconds or age < -300):
            return []
        raw = payload["reports"]
        if not isinstance(raw, list):
            return []
        return [BackendReport.from_dict(item) for item in raw]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
