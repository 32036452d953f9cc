"""The proxy's HTTP surface: Anthropic's Messages API, routed per request.

`POST /v1/messages` (streaming and not), `POST /v1/messages/count_tokens`, `GET|HEAD /` for
health, `GET /v1/models`, the web dashboard under `/dashboard`; anything else is an
Anthropic-shaped 404. Listens on 127.0.0.1 unless
told otherwise; any other address needs HYBRID_ROUTER_TOKEN, checked on every request.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__, home, store
from ..config import RouterConfig, load_config, provider_api_key, provider_base_url
from ..dashboard import dashboard_routes
from ..providers import probe
from ..providers.openrouter import FreeTierTracker
from ..routing import Decision, RoutingTable, Target, decide, decide_with_pin
from ..routing_table import routing_table
from ..signals import Signals, signals_from_request
from .errors import error_body, request_id
from .links import Link, candidate_links, skip_reason
from .log_writer import LogWriter
from .relay import Exchange, StreamRelay, answer_once
from .upstream import Call, LinkFailure, Opened, anthropic_headers
from .validate import BadRequest, parse_messages_body

log = logging.getLogger("hybrid_router.proxy")
TOKEN_ENV = "HYBRID_ROUTER_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
OLLAMA_MESSAGES_API = (0, 14)  # Ollama serves /v1/messages from 0.14 on
VERSION_TTL_SECONDS = 300.0


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class ProxyState:
    """What every request shares: config, routing table, HTTP client, log writer, pin reader."""

    def __init__(self, config: RouterConfig, environ: dict[str, str], token: str | None) -> None:
        self.config = config
        self.table: RoutingTable = routing_table(config)
        self.environ = environ
        self.token = token
        database = os.path.join(home.home_path(environ), home.DATABASE_FILENAME)
        self.log_writer = LogWriter(database)
        self.pins = store.connect(database)  # the pin reads happen on the event loop thread
        self.client = httpx.AsyncClient(
            trust_env=False, limits=httpx.Limits(max_connections=256, max_keepalive_connections=16)
        )
        self._ollama_versions: dict[str, tuple[float, tuple[int, ...] | None]] = {}
        self.openrouter = FreeTierTracker.at_home(environ)
        self.reports: list[Any] = probe.load_reports(probe.cache_path(environ))

    async def start_probe(self) -> None:
        """Probe the backends in the background (tool calls, windows); results take effect as
        they arrive, and until then the cached ones from the last probe or `doctor` apply."""
        try:
            reports = await probe.probe_all(self.config, self.environ, self.client)
        except Exception as exc:  # noqa: BLE001 - a failed probe only means less information
            log.warning("backend probe failed: %s", exc)
            return
        self.reports = reports
        probe.save_reports(probe.cache_path(self.environ), reports)

    async def refresh_openrouter(self) -> None:
        now = time.time()
        for name, provider in self.config.providers.items():
            key = provider_api_key(provider, self.environ)
            if provider.kind == "openrouter" and key:
                await self.openrouter.refresh(self.client, name, provider_base_url(provider, self.environ), key, now)

    def tool_capable(self, link: Link) -> bool | None:
        return probe.tool_capable(self.reports, link.provider_name, link.model)

    def with_reported_window(self, link: Link) -> Link:
        """The smaller of the configured window and the one the backend reports (/api/show):
        a config that promises more than the model has would let Ollama truncate silently."""
        reported = probe.reported_window(self.reports, link.provider_name, link.model)
        if reported is None or (link.window is not None and link.window <= reported):
            return link
        return dataclasses.replace(link, window=reported)

    def exhausted(self, link: Link) -> str | None:
        if link.provider.kind != "openrouter":
            return None
        return self.openrouter.exhausted(link.provider_name, link.model, time.time())

    def note_failure(self, link: Link, failure: LinkFailure) -> None:
        if link.provider.kind == "openrouter" and failure.status is not None:
            now = time.time()
            self.openrouter.count_request(link.provider_name, link.model, now)
            self.openrouter.record_response(link.provider_name, link.model, failure.status,
                                            failure.headers, failure.upstream_body, now)

    def note_success(self, link: Link, opened: Opened) -> None:
        if link.provider.kind == "openrouter":
            now = time.time()
            self.openrouter.count_request(link.provider_name, link.model, now)
            self.openrouter.record_response(link.provider_name, link.model, 200, opened.headers, None, now)

    async def close(self) -> None:
        await self.client.aclose()
        self.log_writer.close()
        self.pins.close()

    async def ollama_version(self, base_url: str) -> tuple[int, ...] | None:
        cached = self._ollama_versions.get(base_url)
        now = time.monotonic()
        if cached and now - cached[0] < VERSION_TTL_SECONDS:
            return cached[1]
        try:
            response = await self.client.get(f"{base_url.rstrip('/')}/api/version", timeout=3.0)
            text = str(response.json().get("version", ""))
            version = tuple(int(part) for part in text.split("-")[0].split(".")[:3] if part.isdigit())
        except (httpx.HTTPError, ValueError, AttributeError):
            return None  # not cached: ask again next time
        self._ollama_versions[base_url] = (now, version)
        return version

    async def protocol_for(self, link: Link) -> str:
        if link.is_anthropic:
            return "anthropic"
        if link.provider.protocol != "auto":
            return link.provider.protocol
        if link.provider.kind == "ollama":
            version = await self.ollama_version(link.base_url)
            if version is None or version >= OLLAMA_MESSAGES_API:
                return "anthropic"
        return "openai"

    def pinned(self, session_id: str | None) -> store.Pin | None:
        if not session_id:
            return None
        try:
            return store.read_pin(self.pins, session_id, self.config.hooks.pin_ttl_hours * 3600)
        except Exception as exc:  # noqa: BLE001 - a broken log must not stop routing
            log.warning("could not read the turn pin: %s", exc)
            return None


def _client_has_auth(headers: Any, token: str | None) -> bool:
    for name in ("x-api-key", "authorization"):
        value = headers.get(name)
        if value and not (token and token in value):
            return True
    return False


def _authorized(request: Request, token: str | None) -> bool:
    if not token:
        return True
    offered = request.headers.get("x-api-key") or ""
    bearer = request.headers.get("authorization") or ""
    if bearer.lower().startswith("bearer "):
        bearer = bearer[7:]
    return any(hmac.compare_digest(value.encode(), token.encode()) for value in (offered, bearer) if value)


def anthropic_error(status: int, message: str, rid: str | None = None) -> Response:
    rid = rid or request_id()
    return Response(error_body(status, message, rid), status_code=status,
                    media_type="application/json", headers={"request-id": rid})


def _pin_decision(state: ProxyState, signals: Signals, pin: store.Pin) -> Decision:
    if pin.tier:
        try:
            target = state.table.tier(pin.tier)
        except KeyError:
            target = Target(pin.provider, pin.model, None, None, ())
    else:
        target = Target(pin.provider, pin.model, None, None, ())
    return decide_with_pin(signals, state.table, target, pin.rule,
                           f"turn pinned by the prompt hook ({pin.reason or pin.rule})")


def _rejected(state: ProxyState, request: Request, response: Response, error_class: str) -> Response:
    """Log a request refused before routing (bad body, too large, no token): every request the
    proxy answers has its row. No body text goes in; the reason is the error message."""
    try:
        message = json.loads(response.body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
    state.log_writer.submit(store.DecisionRow(
        source="proxy", rule="rejected", provider="none", model="none", outcome=store.OUTCOME_REJECTED,
        session_id=request.headers.get("x-claude-code-session-id"), error_class=error_class,
        reason=message, latency_ms=0.0,
    ))
    return response


async def messages(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    raw = await _authorized_body(request, state)
    if isinstance(raw, Response):
        kind = "unauthorized" if raw.status_code == 401 else "too-large"
        return _rejected(state, request, raw, kind)
    try:
        body = parse_messages_body(raw)
    except BadRequest as exc:
        return _rejected(state, request, anthropic_error(exc.status, str(exc)), "bad-request")
    signals = signals_from_request(body, request.headers)
    pin = state.pinned(signals.session_id)
    decision = _pin_decision(state, signals, pin) if pin else decide(signals, state.table)
    links = [
        state.with_reported_window(link)
        for link in candidate_links(decision, state.config, state.table, state.environ, signals.requested_model)
    ]
    has_tools = bool(body.get("tools"))
    client_auth = _client_has_auth(request.headers, state.token)
    usable, skipped = [], []
    for link in links:
        reason = skip_reason(
            link, signals, output_reserve=state.config.output_reserve_tokens, has_tools=has_tools,
            tool_capable=state.tool_capable(link), exhausted=state.exhausted(link), client_has_auth=client_auth,
        )
        if reason:
            skipped.append(f"{link.label}: {reason}")
        else:
            usable.append(link)
    call = Call(
        body=body, raw=raw, headers=request.headers, stream=bool(body.get("stream")),
        estimated_tokens=signals.estimated_tokens, proxy_token=state.token,
        requested_model=body["model"],
    )
    exchange = Exchange(
        call=call, signals=signals, decision=decision, links=usable, config=state.config,
        protocol_for=state.protocol_for, client=state.client, write_row=state.log_writer.submit,
        prompt_id=pin.prompt_id if pin else None, skipped=skipped,
        on_failure=state.note_failure, on_response=state.note_success,
    )
    if call.stream:
        return StreamRelay(exchange)  # type: ignore[return-value] - an ASGI app is a valid response
    status, headers, payload = await answer_once(exchange)
    headers = {**headers, "request-id": headers.get("request-id", exchange.rid)}
    return Response(payload, status_code=status, headers=headers,
                    media_type=headers.get("content-type", "application/json"))


async def _authorized_body(request: Request, state: ProxyState) -> bytes | Response:
    """The request body, or the Anthropic-shaped error that answers instead (401, 413)."""
    if not _authorized(request, state.token):
        return anthropic_error(401, "invalid or missing hybrid-router token (x-api-key or Authorization: Bearer)")
    return await _read_body(request, state.config.proxy.max_body_bytes)


async def _read_body(request: Request, limit: int) -> bytes | Response:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return anthropic_error(413, f"request body of {int(declared):,} bytes is over the {limit:,}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return anthropic_error(413, f"request body is over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def count_tokens(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    raw = await _authorized_body(request, state)
    if isinstance(raw, Response):
        return raw
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return anthropic_error(400, "the request body is not valid JSON")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return anthropic_error(400, "messages: an array is required")
    anthropic = _anthropic_link(state)
    if anthropic is not None and anthropic.api_key:
        call = Call(body=body, raw=raw, headers=request.headers, stream=False, estimated_tokens=0,
                    proxy_token=state.token, requested_model=str(body.get("model", "")))
        url = f"{anthropic.base_url.rstrip('/')}/v1/messages/count_tokens"
        try:
            upstream = await state.client.post(url, content=raw, headers=anthropic_headers(anthropic, call),
                                               timeout=30.0)
            return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")
        except httpx.HTTPError as exc:
            log.warning("count_tokens passthrough failed, estimating instead: %s", exc)
    return JSONResponse({"input_tokens": signals_from_request(body, request.headers).estimated_tokens})


def _anthropic_link(state: ProxyState) -> Link | None:
    for name, provider in state.config.providers.items():
        if provider.kind == "anthropic":
            return Link(name, provider, "", provider_base_url(provider, state.environ),
                        provider_api_key(provider, state.environ), None)
    return None


async def health(request: Request) -> Response:
    if not _authorized(request, request.app.state.proxy.token):
        return anthropic_error(401, "invalid or missing hybrid-router token (x-api-key or Authorization: Bearer)")
    if request.method == "HEAD":
        return Response(status_code=200)
    return JSONResponse({"status": "ok", "service": "hybrid-router proxy", "version": __version__})


async def models(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    if not _authorized(request, state.token):
        return anthropic_error(401, "invalid or missing hybrid-router token (x-api-key or Authorization: Bearer)")
    seen: list[str] = []
    entries = []
    for name, target in state.table.tiers:
        if target.model in seen:
            continue
        seen.append(target.model)
        entries.append({"type": "model", "id": target.model,
                        "display_name": f"{target.model} ({name} tier, {target.provider})",
                        "created_at": "2026-01-01T00:00:00Z"})
    return JSONResponse({"data": entries, "has_more": False,
                         "first_id": entries[0]["id"] if entries else None,
                         "last_id": entries[-1]["id"] if entries else None})


async def not_found(request: Request) -> Response:
    if not _authorized(request, request.app.state.proxy.token):
        return anthropic_error(401, "invalid or missing hybrid-router token (x-api-key or Authorization: Bearer)")
    return anthropic_error(404, f"{request.method} {request.url.path} is not a hybrid-router endpoint")


def create_app(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    config: RouterConfig | None = None,
) -> Starlette:
    """The proxy app. Binding beyond loopback without HYBRID_ROUTER_TOKEN is refused."""
    env = home.load_environment(environ)
    token = env.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        raise ValueError(f"listening on {host} needs {TOKEN_ENV}: anyone who can reach the port could spend your keys")
    loaded = config or load_config(config_file, env).config

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state.proxy = ProxyState(loaded, env, token)
        async with anyio.create_task_group() as background:
            background.start_soon(state.refresh_openrouter)
            if loaded.proxy.probe_on_start:
                background.start_soon(state.start_probe)
            try:
                yield
            finally:
                background.cancel_scope.cancel()
                await state.close()

    database = os.path.join(home.home_path(env), home.DATABASE_FILENAME)
    routes = [
        *dashboard_routes(database, token),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/", health, methods=["GET", "HEAD"]),
        Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
