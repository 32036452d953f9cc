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

The code is split by job: the reports and their cache in report.py, the requests in http.py,
the tool round trip in tools.py, the checks per kind in backends.py;
this module runs them (`probe_backend`, `probe_all`). Import from here; but patch a
constant (`TOOL_PROBE_MAX_TOKENS`, ...) in the module that defines it, where it is read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import anyio
import httpx2 as httpx

from ...config.endpoints import provider_api_key, provider_base_url
from ...config.schema import Provider, RouterConfig
from ..errors import BackendError
from .backends import (
    ANTHROPIC_VERSION,
    OLLAMA_MESSAGES_API_SINCE,
    ollama_serves_messages,
    probe_anthropic,
    probe_ollama,
    probe_openai,
)
from .http import METADATA_READ_TIMEOUT, public_url, unreachable
from .report import (
    CACHE_RELATIVE_PATH,
    CACHE_VERSION,
    DEFAULT_MAX_AGE_SECONDS,
    ERROR,
    MISSING,
    OK,
    SKIPPED,
    UNCHECKED,
    UNREACHABLE,
    BackendReport,
    ModelReport,
    cache_path,
    carry_over_tools,
    load_reports,
    reported_window,
    save_reports,
    tool_capable,
)
from .tools import (
    PROBE_MESSAGES,
    PROBE_TOOL,
    PROBE_TOOL_NAME,
    TOOL_PROBE_MAX_TOKENS,
    TOOL_PROBE_TIMEOUT,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "CACHE_RELATIVE_PATH",
    "CACHE_VERSION",
    "DEFAULT_MAX_AGE_SECONDS",
    "ERROR",
    "METADATA_READ_TIMEOUT",
    "MISSING",
    "OK",
    "OLLAMA_MESSAGES_API_SINCE",
    "PROBE_MESSAGES",
    "PROBE_TOOL",
    "PROBE_TOOL_NAME",
    "SKIPPED",
    "TOOL_PROBE_MAX_TOKENS",
    "TOOL_PROBE_TIMEOUT",
    "UNCHECKED",
    "UNREACHABLE",
    "BackendReport",
    "ModelReport",
    "cache_path",
    "carry_over_tools",
    "configured_backends",
    "load_reports",
    "ollama_serves_messages",
    "probe_all",
    "probe_backend",
    "public_url",
    "reported_window",
    "save_reports",
    "tool_capable",
]


def _scrub(text: str | None, secrets: Iterable[str | None]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


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
    report = BackendReport(
        provider=provider_name, kind=provider.kind, base_url=public_url(base_url)
    )
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
            await probe_ollama(client, report, provider, base_url, tools, tool_timeout)
        elif provider.kind in ("openai", "openrouter"):
            await probe_openai(client, report, provider, base_url, api_key, tools, tool_timeout)
        elif provider.kind == "anthropic":
            assert api_key is not None
            await probe_anthropic(client, report, provider, base_url, api_key)
        else:
            report.error = f"unknown provider kind {provider.kind!r}"
    except BackendError as exc:
        report.error = str(exc)
        if unreachable(exc):
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
            client,
            name,
            provider,
            provider_base_url(provider, environ),
            provider_api_key(provider, environ),
            models,
            tools=tools,
            tool_timeout=tool_timeout,
        )

    async with anyio.create_task_group() as group:
        for name, models in backends.items():
            group.start_soon(run, name, models)
    return [results[name] for name in backends]
