"""The proxy's HTTP surface: Anthropic's Messages API, routed per request.

`POST /v1/messages` (streaming and not), `POST /v1/messages/count_tokens`, `GET|HEAD /` for
health, `GET /v1/models`, and any routes the caller mounts beside them (the CLI mounts the web
dashboard under `/dashboard`: see cli/serve.py); anything else is an Anthropic-shaped 404.
Listens on 127.0.0.1 unless told otherwise; any other address needs HYBRID_ROUTER_TOKEN, checked
on every request.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..config.endpoints import provider_api_key, provider_base_url
from ..config.loading import load_config
from ..config.schema import RouterConfig
from ..core import home
from ..core.access import TOKEN_ENV, browser_refusal, is_loopback
from ..core.signals import signals_from_request
from ..providers.httpx_errors import mapped
from ..providers.link import Link
from .errors import error_body, request_id
from .messages import (
    JSON_ONLY,
    UNAUTHORIZED,
    authorized,
    header_map,
    is_json_content,
    log_refusal,
    messages_endpoint,
    read_body,
    send_json,
)
from .state import ProxyState
from .upstream import Call, anthropic_headers
from .validate import BadRequest, parse_json

log = logging.getLogger("hybrid_router.proxy")


def anthropic_error(status: int, message: str, rid: str | None = None) -> Response:
    rid = rid or request_id()
    return Response(
        error_body(status, message, rid),
        status_code=status,
        media_type="application/json",
        headers={"request-id": rid},
    )


async def _authorized_body(request: Request, state: ProxyState) -> bytes | Response:
    """The request body, or the Anthropic-shaped error that answers instead (401, 413, 415),
    its row logged as `/v1/messages` logs its refusals."""
    headers = request.headers
    if not authorized(headers, state.token):
        return _refused(state, request, 401, UNAUTHORIZED, "unauthorized")
    if not is_json_content(headers):
        return _refused(state, request, 415, JSON_ONLY, "content-type")
    try:
        return await read_body(request.receive, headers, state.config.proxy.max_body_bytes)
    except BadRequest as exc:
        kind = "too-large" if exc.status == 413 else "bad-request"
        return _refused(state, request, exc.status, str(exc), kind)


def _refused(
    state: ProxyState, request: Request, status: int, message: str, error_class: str
) -> Response:
    where = request.url.path
    log_refusal(state, request.headers, f"{where}: {message}", error_class, request.scope)
    answer = anthropic_error(status, message)
    if status != 400:  # the body was not read to its end: it is not read at all
        answer.headers["connection"] = "close"
    return answer


async def count_tokens(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    raw = await _authorized_body(request, state)
    if isinstance(raw, Response):
        return raw
    try:
        body = parse_json(raw)
    except BadRequest as exc:
        return _refused(state, request, exc.status, str(exc), "bad-request")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return _refused(state, request, 400, "messages: an array is required", "bad-request")
    anthropic = _anthropic_link(state)
    if anthropic is not None and anthropic.api_key:
        call = Call(
            body=body,
            raw=raw,
            headers=request.headers,
            stream=False,
            estimated_tokens=0,
            proxy_token=state.token,
            requested_model=str(body.get("model", "")),
        )
        url = f"{anthropic.base_url.rstrip('/')}/v1/messages/count_tokens"
        sent = anthropic_headers(anthropic, call)
        try:
            upstream = await state.client.post(url, content=raw, headers=sent, timeout=30.0)
            return Response(
                upstream.content, status_code=upstream.status_code, media_type="application/json"
            )
        except httpx.HTTPError as exc:
            # httpx quotes a header it refused, value and all (a key with a line break in it).
            failure = mapped(exc, "Anthropic", secrets=secret_forms(sent.values()))
            log.warning("count_tokens passthrough failed, estimating instead: %s", failure)
    return JSONResponse(
        {"input_tokens": signals_from_request(body, request.headers).estimated_tokens}
    )


def secret_forms(values: Iterable[str]) -> list[str]:
    """Each header value as an error text may quote it: whole, escaped as Python writes bytes
    (b'...\\n...'), and each of its lines."""
    forms: list[str] = []
    for value in values:
        forms.append(value)
        forms.append(repr(value.encode("utf-8", "replace"))[2:-1])
        forms.extend(value.splitlines())
    return forms


def _anthropic_link(state: ProxyState) -> Link | None:
    for name, provider in state.config.providers.items():
        if provider.kind == "anthropic":
            return Link(
                name,
                provider,
                "",
                provider_base_url(provider, state.environ),
                provider_api_key(provider, state.environ),
                None,
            )
    return None


async def health(request: Request) -> Response:
    if not authorized(request.headers, request.app.state.proxy.token):
        return anthropic_error(401, UNAUTHORIZED)
    if request.method == "HEAD":
        return Response(status_code=200)
    return JSONResponse({"status": "ok", "service": "hybrid-router proxy", "version": __version__})


async def models(request: Request) -> Response:
    state: ProxyState = request.app.state.proxy
    if not authorized(request.headers, state.token):
        return anthropic_error(401, UNAUTHORIZED)
    seen: list[str] = []
    entries = []
    for name, target in state.table.tiers:
        if target.model in seen:
            continue
        seen.append(target.model)
        entries.append(
            {
                "type": "model",
                "id": target.model,
                "display_name": f"{target.model} ({name} tier, {target.provider})",
                "created_at": "2026-01-01T00:00:00Z",
            }
        )
    return JSONResponse(
        {
            "data": entries,
            "has_more": False,
            "first_id": entries[0]["id"] if entries else None,
            "last_id": entries[-1]["id"] if entries else None,
        }
    )


async def not_found(request: Request) -> Response:
    if not authorized(request.headers, request.app.state.proxy.token):
        return anthropic_error(401, UNAUTHORIZED)
    return anthropic_error(
        404, f"{request.method} {request.url.path} is not a hybrid-router endpoint"
    )


def create_app(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    config: RouterConfig | None = None,
    mounted: Sequence[BaseRoute] = (),
) -> ProxyApp:
    """The proxy app, with `mounted` routes served beside its own (before its catch-all 404).
    Binding beyond loopback without HYBRID_ROUTER_TOKEN is refused."""
    env = home.load_environment(environ)
    token = env.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        raise ValueError(
            f"listening on {host} needs {TOKEN_ENV}: "
            "anyone who can reach the port could spend your keys"
        )
    loaded = config or load_config(config_file, env).config

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state.proxy = ProxyState(loaded, env, token)
        # Everything loaded so far lives as long as the server: out of the collector's sight,
        # a full collection scans only what requests allocate (a shorter pause in the tail).
        gc.collect()
        gc.freeze()
        async with anyio.create_task_group() as background:
            background.start_soon(state.refresh_openrouter)
            if loaded.proxy.probe_on_start:
                background.start_soon(state.start_probe)
            try:
                yield
            finally:
                background.cancel_scope.cancel()
                await state.close()

    routes = [
        *mounted,
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/", health, methods=["GET", "HEAD"]),
        Route(
            "/{path:path}",
            not_found,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
    ]
    return ProxyApp(Starlette(routes=routes, lifespan=lifespan))


class ProxyApp:
    """The ASGI app. `POST /v1/messages` (whatever its query string) goes straight to its
    handler; everything else — and the lifespan that builds the shared state — goes through
    Starlette's routing."""

    def __init__(self, routes: Starlette) -> None:
        self.routes = routes

    @property
    def state(self) -> Any:
        return self.routes.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.routes(scope, receive, send)  # the lifespan
        elif scope["path"] == "/v1/messages" and scope["method"] == "POST":
            await messages_endpoint(self.routes.state.proxy, scope, receive, send)
        else:
            state: ProxyState = self.routes.state.proxy
            refusal = browser_refusal(
                header_map(scope),
                token=state.token,
                allowed_origins=state.config.proxy.allowed_origins,
                allowed_hosts=state.config.proxy.allowed_hosts,
            )
            if refusal is not None:  # every endpoint, the mounted dashboard included
                rid = request_id()
                await send_json(send, 403, error_body(403, refusal, rid), {"request-id": rid})
                return
            await self.routes(scope, receive, send)
