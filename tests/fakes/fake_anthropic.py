"""A scripted fake of the Anthropic Messages API on 127.0.0.1, for tests.

Faithful enough for the official `anthropic` Python SDK and the real Claude Code CLI (see shared
OBSERVED.md): `HEAD /`, `POST /v1/messages` (the `?beta=true` query is ignored) streaming with the
exact SSE event sequence (every event has its `event:` line) or non-streaming JSON,
`POST /v1/messages/count_tokens`, and Anthropic-shaped errors with a `request-id` header.

Scripting: replies are taken from a queue (`enqueue`) or decided by a callable (`handler`) from
the recorded request; when neither gives one, `default` answers. Claude Code's side requests
(session-title generation) are answered automatically with a valid `{"title": ...}` JSON text and
never consume the script. Every request is recorded for assertions.

    with FakeAnthropic() as fake:
        fake.enqueue(tool_use("Bash", {"command": "echo hello"}), text("done"))
        ... run the client against fake.url ...
        follow_up = fake.main_requests()[-1]
        assert tool_results(follow_up.body)[0]["content"] == "hello"
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import http_server
from .http_server import Dropped, FakeHandler, FakeHTTPServer

__all__ = [
    "ERROR_TYPES",
    "FakeAnthropic",
    "RecordedRequest",
    "Reply",
    "error",
    "is_main_request",
    "is_title_request",
    "last_user_text",
    "text",
    "thinking_then_text",
    "tool_results",
    "tool_use",
]

# HTTP status -> Anthropic `error.type` (PROTOCOLS.md 1.6).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_DEFAULT_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request (injected by the fake)",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of requests has exceeded your rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What the fake answers to one `/v1/messages` request.

    `content` holds Anthropic content blocks (`text`, `tool_use`, `thinking`). Faults:
    `status` (>= 400 gives an error body), `delay` (seconds before the first byte),
    `event_delay` (seconds between SSE events), `break_after` (close the connection after that
    many SSE events, or after half the JSON body when not streaming), `stream_error` (an
    `event: error` of that `error.type` after the first content block starts).
    """

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    model: str | None = None  # None: echo the request's model
    input_tokens: int | None = None  # None: estimated from the request body
    output_tokens: int | None = None  # None: estimated from the content
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    event_delay: float = 0.0
    break_after: int | None = None
    stream_error: str | None = None
    chunk_size: int = 12  # characters per text/partial_json delta


def text(value: str, **kw: Any) -> Reply:
    """A plain text answer."""
    return Reply(content=[{"type": "text", "text": value}], **kw)


def tool_use(
    name: str,
    tool_input: dict[str, Any] | None = None,
    *,
    id: str | None = None,
    preamble: str | None = None,
    **kw: Any,
) -> Reply:
    """An answer calling one tool (optionally after a short text block); stop_reason tool_use."""
    blocks: list[dict[str, Any]] = []
    if preamble:
        blocks.append({"type": "text", "text": preamble})
    blocks.append(
        {
            "type": "tool_use",
            "id": id or f"toolu_fake_{uuid.uuid4().hex[:20]}",
            "name": name,
            "input": dict(tool_input or {}),
        }
    )
    kw.setdefault("stop_reason", "tool_use")
    return Reply(content=blocks, **kw)


def thinking_then_text(thought: str, value: str, **kw: Any) -> Reply:
    """A thinking block (with a fake signature) followed by a text block."""
    return Reply(
        content=[
            {"type": "thinking", "thinking": thought, "signature": "fake-signature"},
            {"type": "text", "text": value},
        ],
        **kw,
    )


def error(
    status: int,
    error_type: str | None = None,
    message: str | None = None,
    *,
    retry_after: str | None = None,
    **kw: Any,
) -> Reply:
    """An Anthropic-shaped error response (`error_type` defaults from the status)."""
    if status == 429 and retry_after is None:
        retry_after = "0"
    return Reply(
        status=status,
        error_type=error_type,
        error_message=message,
        retry_after=retry_after,
        **kw,
    )


# --------------------------------------------------------------------------------------------
# Request helpers (work on a recorded body or on any Messages API body)
# --------------------------------------------------------------------------------------------


def is_title_request(body: Any) -> bool:
    """Claude Code's session-title request: structured output asking for `{title}`."""
    if not isinstance(body, dict):
        return False
    fmt = (body.get("output_config") or {}).get("format") or {}
    if fmt.get("type") != "json_schema":
        return False
    props = (fmt.get("schema") or {}).get("properties") or {}
    return "title" in props


def is_main_request(body: Any) -> bool:
    """True for a conversation turn, False for Claude Code's side requests (title generation)."""
    return isinstance(body, dict) and "messages" in body and not is_title_request(body)


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message in a request body."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        return []
    return []


def last_user_text(body: dict[str, Any]) -> str:
    """The text blocks of the last user message, joined by newlines."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(
            b.get("text", "")
            for b in content or []
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


@dataclass
class RecordedRequest(http_server.RecordedRequest):
    reply: Reply | None = None  # what the fake answered (messages requests)

    @property
    def is_main(self) -> bool:
        return self.path.endswith("/v1/messages") and is_main_request(self.body)

    @property
    def is_title(self) -> bool:
        return self.path.endswith("/v1/messages") and is_title_request(self.body)

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        return tool_results(self.body) if isinstance(self.body, dict) else []

    def tool_result_texts(self) -> list[str]:
        return [_result_text(b) for b in self.tool_results]

    @property
    def tool_names(self) -> list[str]:
        if not isinstance(self.body, dict):
            return []
        return [t.get("name", "") for t in self.body.get("tools") or []]


Handler = Callable[[RecordedRequest], "Reply | str | None"]


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


_BrokenStream = Dropped


class _RequestHandler(FakeHandler):
    tcp_nodelay = False

    # -- plumbing ------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(
            status,
            json.dumps(payload).encode(),
            "application/json",
            {"request-id": _request_id()},
            headers,
        )

    def _send_error(
        self,
        status: int,
        error_type: str | None,
        message: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        etype = (
            error_type
            or ERROR_TYPES.get(status)
            or ("api_error" if status >= 500 else "invalid_request_error")
        )
        rid = _request_id()
        payload = {
            "type": "error",
            "error": {"type": etype, "message": message or _DEFAULT_MESSAGES.get(etype, etype)},
            "request_id": rid,
        }
        ours = {"request-id": rid}
        if status == 529 or status == 429:
            ours["x-should-retry"] = "true"
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", ours, headers)

    # -- verbs ---------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.record()
        self.send_headers(200, {"Content-Length": "0"})

    def do_GET(self) -> None:
        rec = self.record()
        if rec.path.endswith("/v1/models"):
            models = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                for m in self.server.fake.models
            ]
            self._send_json(
                200,
                {
                    "data": models,
                    "has_more": False,
                    "first_id": models[0]["id"] if models else None,
                    "last_id": models[-1]["id"] if models else None,
                },
            )
        elif rec.path in ("", "/"):
            self._send_json(200, {"ok": True})
        else:
            self._send_error(404, None, f"Not found: {rec.path}")

    def do_POST(self) -> None:
        rec = self.record()
        fake = self.server.fake
        if rec.path.endswith("/v1/messages/count_tokens"):
            if not isinstance(rec.body, dict) or "messages" not in rec.body:
                self._send_error(400, None, "messages: Field required")
                return
            self._send_json(200, {"input_tokens": _estimate_input_tokens(rec.body)})
            return
        if not rec.path.endswith("/v1/messages"):
            self._send_error(404, None, f"Not found: {rec.path}")
            return
        body = rec.body
        if not isinstance(body, dict) or "messages" not in body or "max_tokens" not in body:
            self._send_error(400, None, "messages and max_tokens are required")
            return
        reply = fake._choose_reply(rec)
        rec.reply = reply
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status >= 400:
            headers = dict(reply.headers)
            if reply.retry_after is not None:
                headers["retry-after"] = reply.retry_after
            self._send_error(reply.status, reply.error_type, reply.error_message, headers)
            return
        message = _build_message(reply, body)
        try:
            if body.get("stream"):
                self._stream(reply, message)
            else:
                self._non_stream(reply, message)
        except (_BrokenStream, BrokenPipeError, ConnectionResetError):
            self.drop_connection()

    def _non_stream(self, reply: Reply, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        self.send_headers(
            reply.status,
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(data)),
                "request-id": _request_id(),
            },
            reply.headers,
        )
        if reply.break_after is not None:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            raise _BrokenStream
        self.wfile.write(data)

    def _stream(self, reply: Reply, message: dict[str, Any]) -> None:
        self.start_chunked(
            "text/event-stream; charset=utf-8",
            {"request-id": _request_id()},
            reply.headers,
            no_cache=True,
        )
        for sent, event in enumerate(_sse_events(reply, message)):
            if reply.break_after is not None and sent >= reply.break_after:
                self.wfile.flush()
                raise _BrokenStream
            if sent and reply.event_delay:
                time.sleep(reply.event_delay)
            self.write_chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        self.end_chunked()


def _request_id() -> str:
    return f"req_fake_{uuid.uuid4().hex[:24]}"


def _estimate_input_tokens(body: dict[str, Any]) -> int:
    size = sum(
        len(json.dumps(body.get(k), ensure_ascii=False))
        for k in ("system", "messages", "tools")
        if body.get(k) is not None
    )
    return max(1, size // 4)


def _build_message(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    out_chars = sum(
        len(b.get("text") or b.get("thinking") or json.dumps(b.get("input") or {}))
        for b in reply.content
    )
    usage = {
        "input_tokens": reply.input_tokens
        if reply.input_tokens is not None
        else _estimate_input_tokens(body),
        "output_tokens": reply.output_tokens
        if reply.output_tokens is not None
        else max(1, out_chars // 4),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }
    return {
        "id": f"msg_fake_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": reply.model or body.get("model") or "claude-fake",
        "content": [dict(b) for b in reply.content],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _chunks(value: str, size: int) -> Iterable[str]:
    size = max(1, size)
    if not value:
        yield ""
        return
    for i in range(0, len(value), size):
        yield value[i : i + size]


def _sse_events(reply: Reply, message: dict[str, Any]) -> Iterable[dict[str, Any]]:
    usage = message["usage"]
    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = dict(usage, output_tokens=1)
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    for index, block in enumerate(message["content"]):
        kind = block.get("type")
        if kind == "text":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            if reply.stream_error:
                yield _stream_error_event(reply)
                return
            for piece in _chunks(block.get("text", ""), reply.chunk_size):
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                }
        elif kind == "tool_use":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": block["id"],
                    "name": block["name"],
                    "input": {},
                },
            }
            if reply.stream_error:
                yield _stream_error_event(reply)
                return
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            }
            for piece in _chunks(json.dumps(block.get("input") or {}), reply.chunk_size):
                if piece:
                    yield {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    }
        elif kind == "thinking":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            }
            for piece in _chunks(block.get("thinking", ""), reply.chunk_size):
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": piece},
                }
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "signature_delta", "signature": block.get("signature", "")},
            }
        else:
            raise ValueError(f"fake_anthropic cannot stream a {kind!r} block")
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]},
    }
    yield {"type": "message_stop"}


def _stream_error_event(reply: Reply) -> dict[str, Any]:
    etype = reply.stream_error or "overloaded_error"
    return {
        "type": "error",
        "error": {"type": etype, "message": _DEFAULT_MESSAGES.get(etype, etype)},
    }


class FakeAnthropic(FakeHTTPServer[RecordedRequest]):
    """The fake server. Use as a context manager, or call `start()` / `stop()`.

    `default`: the reply when the script has nothing (a Reply, a string for plain text, or None
    for a 500 "script exhausted" error). `handler`: called with each main `RecordedRequest`
    before the queue; return a Reply (or a string) to answer, None to fall through to the queue.
    `auto_title`: answer title-generation requests with `{"title": title}` without using the
    script.
    """

    handler_class = _RequestHandler
    record_class = RecordedRequest
    name = "fake-anthropic"
    label = "fake_anthropic"
    sticky_port = False  # a new OS-assigned port on every start
    poll_interval = 0.05

    def __init__(
        self,
        *,
        default: Reply | str | None = "Hello from the fake Anthropic API.",
        handler: Handler | None = None,
        auto_title: bool = True,
        title: str = "Fake session title",
        models: Iterable[str] = ("claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001"),
    ) -> None:
        super().__init__()
        self.default = default
        self.handler = handler
        self.auto_title = auto_title
        self.title = title
        self.models = list(models)
        self._queue: deque[Reply | str] = deque()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeAnthropic is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, as for ANTHROPIC_BASE_URL or `anthropic.Anthropic(base_url=...)`."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> FakeAnthropic:
        """Queue replies for the next main `/v1/messages` requests, in order."""
        with self._cond:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _choose_reply(self, rec: RecordedRequest) -> Reply:
        if self.auto_title and is_title_request(rec.body):
            return text(json.dumps({"title": self.title}))
        choice: Reply | str | None = None
        if self.handler is not None:
            choice = self.handler(rec)
        if choice is None:
            with self._cond:
                choice = self._queue.popleft() if self._queue else None
        if choice is None:
            choice = self.default
        if choice is None:
            return error(500, "api_error", "fake_anthropic: the script has no reply left")
        return text(choice) if isinstance(choice, str) else choice

    # -- recording -------------------------------------------------------------------------

    def messages_requests(self) -> list[RecordedRequest]:
        """Every `/v1/messages` request (main and side)."""
        with self._cond:
            return [r for r in self.requests if r.path.endswith("/v1/messages")]

    def main_requests(self) -> list[RecordedRequest]:
        """The `/v1/messages` conversation turns, without Claude Code's side requests."""
        with self._cond:
            return [r for r in self.requests if r.is_main]

    def clear(self) -> None:
        with self._cond:
            self.requests.clear()
            self._queue.clear()
