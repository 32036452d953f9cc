"""`POST /v1/messages`: read, validate, route and answer one Messages request.

This is the proxy's hot path, so it is a plain ASGI handler: no router, middleware or request
object between uvicorn and the routing decision. Every request it answers gets its log row —
refused ones (no token, too large, malformed) as outcome `rejected`, a bug as `error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from ..core.access import browser_refusal, token_offered
from ..core.outcomes import OUTCOME_ERROR, OUTCOME_REJECTED, SOURCE_PROXY
from ..core.routing import Decision, decide, decide_with_pin
from ..core.signals import Signals, signals_from_request
from ..core.table import Target
from ..log.pins import Pin
from ..log.rows import DecisionRow, decision_row
from .errors import error_body, request_id
from .links import candidate_links, skip_reason
from .relay import Exchange, StreamRelay, answer_once
from .state import ProxyState
from .upstream import Call
from .validate import BadRequest, parse_messages_body

log = logging.getLogger("hybrid_router.proxy")
UNAUTHORIZED = "invalid or missing hybrid-router token (x-api-key or Authorization: Bearer)"
# Reading a body this large (parsing, routing, hashing the prompt for its row) takes
# milliseconds a step: between the steps, other requests get their turn.
LARGE_BODY_BYTES = 1 << 20


class ClientGone(Exception):
    """The client hung up before its request body arrived: there is no one to answer."""


def header_map(scope: dict[str, Any]) -> dict[str, str]:
    """The request's headers by (lowercase) name; repeated ones joined as HTTP allows."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def authorized(headers: Mapping[str, str], token: str | None) -> bool:
    """With a token set (a non-loopback bind), the request must carry it."""
    return token_offered(headers, token)


def client_has_auth(headers: Mapping[str, str], token: str | None) -> bool:
    """Whether the client sent credentials of its own (not just the proxy's token)."""
    for name in ("x-api-key", "authorization"):
        value = headers.get(name)
        if value and not (token and token in value):
            return True
    return False


async def send_json(
    send: Any,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    close: bool = False,
) -> None:
    """A JSON answer; `close`: the connection ends with it (a body that was not read, or only
    in part, is not read to its end)."""
    out = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        out.append((b"connection", b"close"))
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-type", "content-length", "transfer-encoding"):
            out.append((name.lower().encode("latin-1"), value.encode("latin-1", "replace")))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})


JSON_ONLY = "content-type: the request body must be JSON (application/json)"


def is_json_content(headers: Mapping[str, str]) -> bool:
    """JSON, or no declared type (curl --data-binary, some SDKs): a browser cannot send a JSON
    type without a preflight, so the form and text types it can send are refused."""
    declared = headers.get("content-type")
    if declared is None:
        return True
    kind = declared.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def read_body(receive: Any, headers: Mapping[str, str], limit: int) -> bytes:
    """The whole request body; BadRequest(413) past `limit` bytes (declared or sent)."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(
            f"request body of {int(declared):,} bytes is over the {limit:,}-byte limit", 413
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body is over the {limit:,}-byte limit", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HeldEnd:
    """An ASGI `send` that holds back the message ending the response until `release()`: the
    request's row is journaled (log/writer.py) before the client has the answer's last byte,
    so a proxy killed at any moment keeps the row of every request a client saw answered."""

    __slots__ = ("_end", "_send")

    def __init__(self, send: Any) -> None:
        self._send = send
        self._end: dict[str, Any] | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._end = message
        else:
            await self._send(message)

    async def release(self) -> None:
        end, self._end = self._end, None
        if end is not None:
            await self._send(end)


async def messages_endpoint(
    state: ProxyState, scope: dict[str, Any], receive: Any, send: Any
) -> None:
    headers = header_map(scope)
    exchange: Exchange | None = None
    relay: StreamRelay | None = None
    replying = False  # a response may have begun: a second one must not follow
    try:
        refusal = browser_refusal(
            headers,
            token=state.token,
            allowed_origins=state.config.proxy.allowed_origins,
            allowed_hosts=state.config.proxy.allowed_hosts,
        )
        if refusal is not None:
            await _refuse(state, scope, headers, send, 403, refusal, "browser")
            return
        if not authorized(headers, state.token):
            await _refuse(state, scope, headers, send, 401, UNAUTHORIZED, "unauthorized")
            return
        if not is_json_content(headers):
            await _refuse(state, scope, headers, send, 415, JSON_ONLY, "content-type")
            return
        try:
            raw = await read_body(receive, headers, state.config.proxy.max_body_bytes)
            large = len(raw) > LARGE_BODY_BYTES
            body = parse_messages_body(raw)
        except BadRequest as exc:
            kind = "too-large" if exc.status == 413 else "bad-request"
            await _refuse(state, scope, headers, send, exc.status, str(exc), kind)
            return
        if large:
            await asyncio.sleep(0)  # others' turn between the long steps of a huge request
        exchange, too_long = _exchange(state, headers, raw, body)
        if large:
            await asyncio.sleep(0)
        # From here on the exchange writes the request's row, whatever happens.
        held = HeldEnd(send)
        if too_long is not None:  # as Anthropic answers it (Claude Code then compacts)
            exchange.outcome, exchange.error_class = OUTCOME_ERROR, "prompt-too-long"
            replying = True
            rid = exchange.rid
            await send_json(held, 400, error_body(400, too_long, rid), {"request-id": rid})
            exchange.log()
            await held.release()
            return
        if exchange.call.stream:
            relay = StreamRelay(exchange)
            try:
                await relay(scope, receive, held)  # logs the exchange as it ends
            finally:
                await held.release()
            return
        try:
            status, answer_headers, payload = await answer_once(exchange)
            answer_headers = {
                **answer_headers,
                "request-id": answer_headers.get("request-id", exchange.rid),
            }
            replying = True
            await send_json(held, status, payload, answer_headers)
        finally:
            exchange.log()  # before the answer's last byte goes out
            await held.release()
    except ClientGone:
        return
    except Exception as exc:  # a bug: the client still gets an Anthropic-shaped answer
        log.exception("internal error while answering /v1/messages")
        message = f"hybrid-router internal error: {type(exc).__name__}"
        if exchange is None:
            _log_row(state, headers, message, "internal", OUTCOME_ERROR)
        if not (replying or (relay is not None and relay.response_started)):
            rid = request_id()
            await send_json(send, 500, error_body(500, message, rid), {"request-id": rid})


def _exchange(
    state: ProxyState, headers: dict[str, str], raw: bytes, body: dict[str, Any]
) -> tuple[Exchange, str | None]:
    """Decide the route and the chain of links that can take this request; and, when the
    request fits the window of none of them, the "prompt is too long" message that answers it."""
    signals = signals_from_request(body, headers)
    pin = state.pinned(signals.session_id)
    decision = (
        _pin_decision(state, signals, pin) if pin else decide(signals, state.table, state.intent)
    )
    links = [
        state.with_reported_window(link)
        for link in candidate_links(
            decision, state.config, state.table, state.environ, signals.requested_model
        )
    ]
    has_tools = bool(body.get("tools"))
    client_auth = client_has_auth(headers, state.token)
    reserve = state.config.output_reserve_tokens
    usable, skipped = [], []
    for link in links:
        reason = skip_reason(
            link,
            signals,
            output_reserve=state.config.output_reserve_tokens,
            has_tools=has_tools,
            tool_capable=state.tool_capable(link),
            exhausted=state.exhausted(link),
            client_has_auth=client_auth,
        )
        if reason:
            skipped.append(f"{link.label}: {reason}")
        else:
            usable.append(link)
    needed = signals.estimated_tokens + min(reserve, signals.max_tokens or reserve)
    windows = [link.window for link in links]
    too_long = None
    if not usable and windows and all(w is not None and needed > w for w in windows):
        largest = max(w for w in windows if w is not None)
        too_long = (
            f"prompt is too long: {signals.estimated_tokens} tokens > {largest} maximum "
            "(hybrid-router's estimate, against the largest window it can route this to)"
        )
    call = Call(
        body=body,
        raw=raw,
        headers=headers,
        stream=bool(body.get("stream")),
        estimated_tokens=signals.estimated_tokens,
        proxy_token=state.token,
        requested_model=body["model"],
        answer_room=min(reserve, signals.max_tokens or reserve),
    )
    exchange = Exchange(
        call=call,
        signals=signals,
        decision=decision,
        links=usable,
        config=state.config,
        protocol_for=state.protocol_for,
        client=state.upstream,
        write_row=state.log_writer.submit,
        prompt_id=pin.prompt_id if pin else None,
        skipped=skipped,
        on_failure=state.note_failure,
        on_response=state.note_success,
    )
    return exchange, too_long


def _pin_decision(state: ProxyState, signals: Signals, pin: Pin) -> Decision:
    if pin.tier:
        try:
            target = state.table.tier(pin.tier)
        except KeyError:
            target = Target(pin.provider, pin.model, None, None, ())
    else:
        target = Target(pin.provider, pin.model, None, None, ())
    return decide_with_pin(
        signals,
        state.table,
        target,
        pin.rule,
        f"turn pinned by the prompt hook ({pin.reason or pin.rule})",
    )


async def _refuse(
    state: ProxyState,
    scope: dict[str, Any],
    headers: Mapping[str, str],
    send: Any,
    status: int,
    message: str,
    error_class: str,
) -> None:
    """Answer a request refused before routing, with its row (no body text: the reason is the
    error message). A body not read to its end is not read at all: the connection closes."""
    log_refusal(state, headers, message, error_class, scope)
    rid = request_id()
    close = status != 400  # a 400 read the whole body; the others did not (413: not all of it)
    await send_json(send, status, error_body(status, message, rid), {"request-id": rid}, close)


def log_refusal(
    state: ProxyState,
    headers: Mapping[str, str],
    message: str,
    error_class: str,
    scope: Mapping[str, Any],
) -> None:
    """The row of a request refused before routing. On a token bind, a client that does not
    offer the token gets one row per minute and address (and one more counting the rest of
    that minute's refusals): it cannot grow the log faster than that."""
    if state.token and not authorized(headers, state.token):
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        row = _row(headers, f"{message} (client {address})", error_class, OUTCOME_REJECTED)
        state.log_writer.submit_folded(address, row)
        return
    _log_row(state, headers, message, error_class, OUTCOME_REJECTED)


def _log_row(
    state: ProxyState, headers: Mapping[str, str], message: str, error_class: str, outcome: str
) -> None:
    """The row of a request answered without routing (refused, or a bug before the decision)."""
    state.log_writer.submit(_row(headers, message, error_class, outcome))


def _row(headers: Mapping[str, str], message: str, error_class: str, outcome: str) -> DecisionRow:
    return decision_row(
        None,
        None,
        source=SOURCE_PROXY,
        store_prompts=False,
        outcome=outcome,
        rule="rejected" if outcome == OUTCOME_REJECTED else "internal-error",
        session_id=headers.get("x-claude-code-session-id"),
        error_class=error_class,
        reason=message,
        latency_ms=0.0,
    )
