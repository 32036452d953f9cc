"""Calling one upstream for one request, in the protocol it speaks, with the answer always in
Anthropic's shape: a byte-faithful passthrough to Anthropic, Anthropic's Messages API on
Ollama (0.14+) and llama.cpp, or a translation to and from OpenAI chat completions.

A failure is a `BackendError` (providers/errors.py): this module is the one place where the
HTTP/1.1 client's exceptions, the upstream's JSON and the translation's errors are mapped into
that family, keeping the cause. Before the answer starts, a failure lets the relay try the next
link; the stream itself is an async iterator of complete SSE events, in Anthropic's format.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.usage import Usage
from ..install.proxy_env import PLACEHOLDER_TOKEN
from ..providers.chat import request_headers
from ..providers.errors import (
    BackendError,
    BadAnswer,
    BrokeOff,
    ConnectionLost,
    ErrorAnswer,
    ErrorStatus,
    InvalidHeader,
    MalformedRequest,
    TimedOut,
    Unreachable,
)
from ..providers.link import Link
from ..providers.translate import (
    OllamaChatStream,
    OpenAIChatStream,
    StreamDialect,
    anthropic_to_openai_request,
    openai_error_to_anthropic,
    openai_to_anthropic_response,
    sse_bytes,
)
from ..providers.translate.ollama_chat import ollama_to_openai_response, openai_to_ollama_chat
from . import jsonio
from .errors import error_body
from .http1 import (
    BadHeader,
    ConnectFailed,
    HttpClient,
    Response,
    Timeouts,
    TransportError,
    UpstreamTimeout,
)

# Client headers that describe the hop, not the request: never forwarded.
_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "accept-encoding",
        "proxy-authorization",
        "proxy-connection",
    }
)
# Request fields only Anthropic understands: dropped for other Messages-API servers.
_ANTHROPIC_ONLY_FIELDS = (
    "context_management",
    "output_config",
    "metadata",
    "service_tier",
    "container",
    "inference_geo",
    "mcp_servers",
)
ANTHROPIC_VERSION = "2023-06-01"

# Told each Anthropic event `(name, payload)` of a stream as it passes: how the answer checks
# (proxy/checks.py) read a stream they hold. None on the hot path: nothing extra is parsed.
Observer = Callable[[str, Any], None]


@dataclass
class Opened:
    """A started answer: status and headers for the client, and the events (or the body)."""

    status: int
    headers: dict[str, str]
    events: AsyncGenerator[bytes, None] | None = None
    body: bytes | None = None
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None  # as the answer reported it (a stream: once it ended)
    response: Response | None = None
    # A whole answer, parsed (for the checks); tool arguments the translation had to replace
    # (a stream's fill in as it passes).
    message: Any = None
    problems: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        if self.events is not None:
            await self.events.aclose()
        if self.response is not None:
            await self.response.aclose()


@dataclass(frozen=True)
class Call:
    """What every upstream call needs about the incoming request."""

    body: dict[str, Any]
    raw: bytes
    headers: Mapping[str, str]
    stream: bool
    estimated_tokens: int
    proxy_token: str | None
    requested_model: str
    # Room kept for the answer when a window is chosen for the request (the config's
    # outputReserveTokens, or the request's max_tokens when smaller).
    answer_room: int = 4096


def _timeouts(link: Link) -> Timeouts:
    provider = link.provider
    return Timeouts(connect=provider.connect_timeout, read=provider.read_timeout)


def _messages_url(link: Link) -> str:
    base = link.base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


def _ollama_chat_url(link: Link) -> str:
    base = link.base_url.rstrip("/")
    return f"{base.removesuffix('/v1')}/api/chat"


# Without a stated window, Ollama is still never left to its server default: the window is the
# request plus its answer room, rounded up to this step (fewer distinct sizes, fewer reloads).
OLLAMA_WINDOW_STEP = 8192


def ollama_window(link: Link, call: Call, answer_room: int) -> int:
    """The context window an Ollama request runs with: the tier's (one fixed value, so Ollama
    never reloads the model between requests), else enough for this request."""
    if link.window:
        return link.window
    needed = call.estimated_tokens + answer_room
    return -(-needed // OLLAMA_WINDOW_STEP) * OLLAMA_WINDOW_STEP


def _chat_url(link: Link) -> str:
    base = link.base_url.rstrip("/")
    if link.provider.kind == "ollama":
        return f"{base}/v1/chat/completions"
    return f"{base}/chat/completions"


def anthropic_headers(link: Link, call: Call) -> dict[str, str]:
    """The client's headers, as they came, for Anthropic; auth replaced only by a configured
    key."""
    headers: dict[str, str] = {}
    for name, value in call.headers.items():
        lowered = name.lower()
        if lowered in _HOP_HEADERS or lowered.startswith("x-claude-code-"):
            continue
        placeholder = value.removeprefix("Bearer ").strip() == PLACEHOLDER_TOKEN
        replaced = link.api_key or placeholder or (call.proxy_token and call.proxy_token in value)
        if lowered in ("x-api-key", "authorization") and replaced:
            # our key replaces it; the proxy's token and the placeholder are not Anthropic's
            continue
        headers[name] = value
    if link.api_key:
        headers["x-api-key"] = link.api_key
    headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
    headers["content-type"] = "application/json"
    return headers


def _anthropic_body(link: Link, call: Call) -> bytes:
    """Anthropic gets the client's bytes; only `model` may change, when the route says so.

    One documented exception: with thinking on, Anthropic refuses a request whose last assistant
    turn used tools without starting with a thinking block. That happens when a turn moves to
    Anthropic mid-way (a tool-result continuation of a call a local model made, on a fallback
    or the context-window rule). Such a request goes without `thinking` (and without the
    context edits that need it), so it is answered rather than refused."""
    changes: dict[str, Any] = {}
    if call.body.get("model") != link.model:
        changes["model"] = link.model
    if thinking_would_be_refused(call.body):
        changes["thinking"] = None
        edits = (call.body.get("context_management") or {}).get("edits")
        if isinstance(edits, list):
            kept = [e for e in edits if not str(e.get("type", "")).startswith("clear_thinking")]
            changes["context_management"] = {**call.body["context_management"], "edits": kept}
    if not changes:
        return call.raw
    body = {**call.body, **changes}
    for name in [key for key, value in changes.items() if value is None]:
        body.pop(name)
    return jsonio.dumps(body)


def thinking_would_be_refused(body: dict[str, Any]) -> bool:
    """Thinking is on, the request continues a tool round trip, and the assistant turn that
    called the tools does not start with a (signed) thinking block: a model that is not
    Anthropic's made the call. Anthropic answers such a request with a 400."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return False
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    turns = [m for m in messages if m.get("role") in ("user", "assistant")]
    if len(turns) < 2 or turns[-1].get("role") != "user" or turns[-2].get("role") != "assistant":
        return False
    results = turns[-1].get("content")
    if not isinstance(results, list) or not any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in results
    ):
        return False
    content = turns[-2].get("content")
    if not isinstance(content, list) or not content:
        return False
    first = content[0].get("type") if isinstance(content[0], dict) else None
    uses_tools = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
    return uses_tools and first not in ("thinking", "redacted_thinking")


def messages_api_body(link: Link, call: Call) -> dict[str, Any]:
    """A Messages-API body for a server that is not Anthropic (Ollama, llama.cpp).

    Claude Code's `role: "system"` messages move into `system` (only Anthropic accepts them
    mid-conversation); Anthropic-only fields go; `max_tokens` is capped to what the window leaves.
    """
    body = {k: v for k, v in call.body.items() if k not in _ANTHROPIC_ONLY_FIELDS}
    body["model"] = link.model
    system = body.get("system")
    blocks: list[Any] = (
        [{"type": "text", "text": system}] if isinstance(system, str) else list(system or [])
    )
    messages = []
    for message in body.get("messages", []):
        if message.get("role") == "system":
            content = message.get("content")
            if isinstance(content, str):
                blocks.append({"type": "text", "text": content})
            else:
                blocks.extend(b for b in content if isinstance(b, dict) and b.get("type") == "text")
        else:
            messages.append(message)
    body["messages"] = messages
    if blocks:
        body["system"] = blocks
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") != "enabled":
        body.pop("thinking")  # "adaptive" is Anthropic's own; other servers reject or misread it
    if link.window:
        room = max(256, link.window - call.estimated_tokens)
        body["max_tokens"] = min(int(body.get("max_tokens") or room), room)
    return body


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _failure(link: Link, status: int, body: bytes, headers: Mapping[str, str]) -> ErrorStatus:
    retry_after = _retry_after(headers)
    if link.is_anthropic:
        # Anthropic's own error bodies go to the client unchanged: Claude Code reads their wording.
        failure = ErrorStatus(
            f"answered HTTP {status}",
            status,
            headers=headers,
            retry_after=retry_after,
            retriable=status in (408, 429, 500, 502, 503, 504, 529),
        )
        failure.client_error = (status, body)
        return failure
    mapped_status, mapped = openai_error_to_anthropic(status, body)
    message = mapped.get("error", {}).get("message", f"HTTP {status}")
    failure = ErrorStatus(
        f"answered HTTP {status}: {message}",
        status,
        headers=headers,
        retry_after=retry_after,
        upstream_body=body,
    )
    failure.client_error = (mapped_status, json.dumps(mapped).encode())
    return failure


def _mapped(exc: TransportError | BadHeader, *, began: bool = False) -> BackendError:
    """The HTTP/1.1 client's exception as the family's (raise it `from exc`). `began`: the
    answer had started, so whatever went wrong, it broke off."""
    if began:
        return BrokeOff(f"the answer broke off: {exc}")
    if isinstance(exc, ConnectFailed):
        return Unreachable(str(exc))
    if isinstance(exc, UpstreamTimeout):
        return TimedOut(f"no answer within {exc.seconds:g} s", exc.phase)
    if isinstance(exc, BadHeader):  # say, an API key pasted with a line break
        return InvalidHeader(str(exc))
    return ConnectionLost(str(exc))


async def open_link(
    client: HttpClient, link: Link, call: Call, protocol: str, observe: Observer | None = None
) -> Opened:
    """Send the request to `link`; return once the answer has started (status 200 seen).

    `observe`, for a stream, is told every event as it passes. Anything that stops the answer is
    a `BackendError`."""
    if protocol == "anthropic":
        if link.is_anthropic:
            headers = anthropic_headers(link, call)
            content = _anthropic_body(link, call)
        else:
            headers = {
                "content-type": "application/json",
                "anthropic-version": ANTHROPIC_VERSION,
                "x-api-key": link.api_key or "hybrid-router",
            }
            content = jsonio.dumps(messages_api_body(link, call))
        url = _messages_url(link)
    else:
        try:
            payload = anthropic_to_openai_request(call.body, link.model)  # TranslationError
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            # A body the validator let through but the translation cannot read: the
            # client's fault, and no other link would read it better.
            raise MalformedRequest(
                f"the request cannot be translated: {exc}",
                client_error=(400, error_body(400, f"malformed request: {exc}", "req_translation")),
            ) from exc
        if protocol == "ollama":
            # The window is set per request, and the answer capped to the room it leaves: a
            # long answer cannot overrun it either.
            window = ollama_window(link, call, call.answer_room)
            room = max(256, window - call.estimated_tokens)
            cap = min(int(payload.get("max_tokens") or room), room)
            native = openai_to_ollama_chat(payload, num_ctx=window, num_predict=cap)
            url, content = _ollama_chat_url(link), jsonio.dumps(native)
        else:
            if link.window:
                room = max(256, link.window - call.estimated_tokens)
                payload["max_tokens"] = min(int(payload.get("max_tokens") or room), room)
            url, content = _chat_url(link), jsonio.dumps(payload)
        headers = {
            **request_headers(link.provider, link.api_key),
            "content-type": "application/json",
        }
    try:
        response = await client.post(url, content, headers, _timeouts(link))
    except (TransportError, BadHeader) as exc:
        raise _mapped(exc) from exc
    if response.status_code != 200:
        try:
            body = await response.aread()
        except TransportError:
            body = b""
        finally:
            await response.aclose()
        raise _failure(link, response.status_code, body, response.headers)
    opened = Opened(200, _response_headers(response), response=response)
    if protocol == "anthropic":
        if call.stream:
            opened.events = _anthropic_events(response, opened, observe)
        else:
            opened.body = await _read_all(response)
            _absorb_message(opened.body, opened)
    elif call.stream:
        reader = OllamaChatStream if protocol == "ollama" else OpenAIChatStream
        dialect = reader(call.requested_model, input_tokens=call.estimated_tokens)
        opened.usage = dialect.usage
        opened.problems = dialect.problems
        opened.events = _dialect_events(response, dialect, observe)
    else:
        raw = await _read_all(response)
        try:
            data = json.loads(raw)
            if protocol == "ollama":
                data = ollama_to_openai_response(data)
            message = openai_to_anthropic_response(
                data, call.requested_model, problems=opened.problems
            )
        except ErrorAnswer as exc:  # HTTP 200, and an error object instead of a completion
            exc.headers = response.headers
            raise
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise BadAnswer(f"unreadable answer ({exc})") from exc
        opened.body = json.dumps(message).encode()
        opened.headers["content-type"] = "application/json"
        _absorb_message(opened.body, opened)
        opened.message = message
    return opened


def _response_headers(response: Response) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name in ("content-type", "request-id", "anthropic-organization-id"):
        if name in response.headers:
            kept[name] = response.headers[name]
    return kept


async def _read_all(response: Response) -> bytes:
    try:
        return await response.aread()
    except TransportError as exc:
        raise _mapped(exc, began=True) from exc
    finally:
        await response.aclose()


def _absorb_message(body: bytes, answer: Opened) -> None:
    try:
        message = jsonio.loads(body)
    except (ValueError, RecursionError):
        return
    if isinstance(message, dict):
        answer.usage.absorb(message.get("usage"))
        answer.stop_reason = message.get("stop_reason")
        answer.message = message


async def _anthropic_events(
    response: Response, answer: Opened, observe: Observer | None = None
) -> AsyncGenerator[bytes, None]:
    """Complete SSE events from an Anthropic-format stream, noting usage as they pass (and
    telling `observe` each one, parsed, when given).

    Events that arrived together leave together (one write to the client instead of one per
    event); a `ping` or an `error` event always travels alone, so the relay can tell them apart.
    """
    buffer = b""
    try:
        async for chunk in response.aiter_bytes():
            buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
            end = buffer.rfind(b"\n\n")
            if end < 0:
                continue
            complete, buffer = buffer[:end], buffer[end + 2 :]
            batch: list[bytes] = []
            for event in complete.split(b"\n\n"):
                if not event.strip():
                    continue
                _note_usage(event, answer)
                if observe is not None:
                    observe(*_parsed(event))
                if event.startswith((b"event: ping", b"event: error")):
                    if batch:
                        yield b"".join(batch)
                        batch = []
                    yield event + b"\n\n"
                    if event.startswith(b"event: error"):
                        return  # the relay forwards it (or falls back) and ends the answer
                else:
                    batch.append(event + b"\n\n")
            if batch:
                yield b"".join(batch)
    except TransportError as exc:
        raise _mapped(exc, began=True) from exc
    if buffer.strip():
        if observe is not None:
            observe(*_parsed(buffer))
        yield buffer + b"\n\n"
    if answer.stop_reason is None:
        raise BrokeOff("the stream ended before message_stop")


def _fields(event: bytes) -> tuple[bytes, bytes]:
    """An SSE event's name and data."""
    name = b""
    data = b""
    for line in event.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data += line[5:].strip()
    return name, data


def _parsed(event: bytes) -> tuple[str, Any]:
    """An SSE event's name and parsed data (None when it is not JSON)."""
    name, data = _fields(event)
    try:
        payload = jsonio.loads(data) if data else None
    except (ValueError, RecursionError):
        payload = None
    return name.decode("utf-8", "replace"), payload


def _note_usage(event: bytes, answer: Opened) -> None:
    name, data = _fields(event)
    if name not in (b"message_start", b"message_delta"):
        return  # content deltas are not parsed: they are most of the bytes; errors go to the relay
    try:
        payload = jsonio.loads(data)
    except (ValueError, RecursionError):
        return
    if not isinstance(payload, dict):
        return
    if name == b"message_start":
        answer.usage.absorb((payload.get("message") or {}).get("usage"))
    else:
        answer.usage.absorb(payload.get("usage"))
        answer.stop_reason = (payload.get("delta") or {}).get("stop_reason") or answer.stop_reason


async def _dialect_events(
    response: Response, dialect: StreamDialect, observe: Observer | None = None
) -> AsyncGenerator[bytes, None]:
    """Another protocol's stream in, Anthropic SSE events out, through its dialect (the one the
    MCP delegate reads it with too). The events of one network read leave together; a `ping`
    or an `error` event travels alone, as in `_anthropic_events`. The dialect keeps the usage;
    `observe`, when given, sees each event before it is written out."""
    try:
        async for data in response.aiter_bytes():
            batch: list[bytes] = []
            for name, payload in dialect.feed(data):
                if observe is not None:
                    observe(name, payload)
                if name == "ping" or name == "error":
                    if batch:
                        yield b"".join(batch)
                        batch = []
                    yield sse_bytes(name, payload)
                    if name == "error":
                        return  # the relay forwards it (or falls back) and ends the answer
                else:
                    batch.append(sse_bytes(name, payload))
            if batch:
                yield b"".join(batch)
            if dialect.done:
                break
    except TransportError as exc:
        raise _mapped(exc, began=True) from exc
    closing = dialect.finish()  # BrokeOff if the stream never said it was complete
    if observe is not None:
        for name, payload in closing:
            observe(name, payload)
    yield b"".join(sse_bytes(name, payload) for name, payload in closing)
