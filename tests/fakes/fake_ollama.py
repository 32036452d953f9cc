"""A scripted fake of the Ollama server on 127.0.0.1 for tests (real Ollama can't be installed).

It follows Ollama's documented protocol (shared PROTOCOLS.md section 3) and, where the docs are
thin, Ollama's own source (`server/routes.go`, `server/images.go`, `openai/openai.go`,
`anthropic/anthropic.go`, `middleware/*.go`), closely enough that the official `ollama` and
`anthropic` Python clients work against it:

- `GET|HEAD /` ("Ollama is running"), `GET|HEAD /api/version`, `GET /api/tags`, `POST /api/show`,
  `GET /api/ps`, `POST /api/pull` (NDJSON progress, resumable), `POST /api/chat` (NDJSON or one
  object), `POST /v1/chat/completions` (OpenAI SSE), `GET /v1/models[/<model>]` and
  `POST /v1/messages` (Anthropic SSE with `event:` lines).
- Replies are scripted per model (text, thinking, tool calls, or a callable of the request body).
- Faults: an HTTP error status, a delay before the first byte, a stream dropped after N chunks,
  an in-stream error, and "down" (the listening socket is closed, so connections are refused).

    with FakeOllama(models=[FakeModel("qwen2.5-coder:7b", capabilities=["completion", "tools"])],
                    registry=[FakeModel("llama3.2:3b")]) as server:
        server.script("qwen2.5-coder:7b", Reply(tool_calls=[ToolCall("Read", {"path": "a.py"})]))
        server.break_stream("/api/pull", after=3)      # the next pull is cut after 3 lines
        with ollama.Client(host=server.url) as client:
            ...
        assert server.requests_to("/api/chat")[0].body["model"] == "qwen2.5-coder:7b"

Known differences from real Ollama (0.33, source read at fb30760): `/v1/messages` streams send a
`ping` after the first content_block_start as Anthropic does (Ollama sends none; pass
`anthropic_ping=False`), and thinking blocks carry `"signature": ""`; in-stream errors on `/v1`
routes are shaped for the API (`data: {"error": {...}}`, `event: error`) where Ollama's
middleware would mangle them; tokens are words, and prompt tokens are estimated from JSON
length; concurrent pulls of one model don't share a download; `removing unused layers` is never
sent (Ollama sends it only when a re-pull orphans old layers).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from .http_server import Dropped, FakeHandler, FakeHTTPServer, RecordedRequest

__all__ = [
    "DEFAULT_VERSION",
    "FakeModel",
    "FakeOllama",
    "Fault",
    "RecordedRequest",
    "Reply",
    "ReplySpec",
    "ToolCall",
    "normalize_name",
]

DEFAULT_VERSION = "0.14.2"  # the first release line with /v1/messages (PROTOCOLS 3.4)
UNKNOWN_MANIFEST = "pull model manifest: file does not exist"  # what the registry 404 becomes
_FIXED_TIME = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)  # deterministic `modified_at`
T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Models and replies
# --------------------------------------------------------------------------------------------


@dataclass
class ToolCall:
    """A scripted tool call. `arguments` is an object, as on Ollama's native API."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None  # None: the server makes one up ("call_xxxxxxxx", like Ollama)


@dataclass
class Reply:
    """What the model "generates" for one request.

    The text is streamed one word (with its leading whitespace) per chunk, and every word counts
    as one output token, so `num_predict` / `max_tokens` cut it at a word boundary.
    """

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str = ""
    done_reason: str | None = None  # override "stop" (e.g. a stop-sequence reason)
    prompt_tokens: int | None = None  # override the estimate (chars / 4, capped at num_ctx)


# A reply as scripted: plain text, a Reply, or a callable of the parsed request body.
ReplySpec = str | Reply | Callable[[dict[str, Any]], "str | Reply"]


def normalize_name(name: str) -> str:
    """Ollama's model names are `name:tag`, and the tag defaults to `latest`."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _sha256(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@dataclass
class FakeModel:
    """A model the fake has installed (or can pull, when given in `registry`)."""

    name: str
    context_length: int = 32768  # the model's maximum, reported by /api/show model_info
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    family: str = "qwen2"
    parameter_size: str = "7.6B"
    quantization_level: str = "Q4_K_M"
    size: int = 4_683_087_332  # bytes on disk, spread over the layers a pull downloads
    reply: ReplySpec | None = None  # None: the server's default reply
    num_ctx: int | None = None  # a Modelfile `PARAMETER num_ctx` (the only way for /v1 routes)
    template: str = (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    )

    def __post_init__(self) -> None:
        self.name = normalize_name(self.name)

    @property
    def digest(self) -> str:
        """The manifest digest, bare hex as /api/tags shows it."""
        return _sha256("manifest", self.name)

    @property
    def layers(self) -> list[tuple[str, int]]:
        """(digest, size) of each blob a pull downloads: weights, template, params."""
        small = [("template", 1_429), ("params", 120)]
        weights = max(self.size - sum(s for _, s in small), 1)
        return [
            (f"sha256:{_sha256(self.name, kind)}", size)
            for kind, size in [("weights", weights), *small]
        ]

    @property
    def parameters(self) -> str:
        lines = ['stop "<|im_end|>"']
        if self.num_ctx:
            lines.append(f"num_ctx {self.num_ctx}")
        return "\n".join(f"{line:<30}" for line in lines)

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def tag_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": _iso(_FIXED_TIME),
            "size": self.size,
            "digest": self.digest,
            "details": self.details(),
        }

    def show(self) -> dict[str, Any]:
        params = "".join(f"PARAMETER {p.strip()}\n" for p in self.parameters.splitlines())
        return {
            "license": "Apache License 2.0",
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {self.name}\n'
            f'TEMPLATE """{self.template}"""\n{params}',
            "parameters": self.parameters,
            "template": self.template,
            "details": self.details(),
            "model_info": {
                "general.architecture": self.family,
                "general.parameter_count": _parameter_count(self.parameter_size),
                f"{self.family}.context_length": self.context_length,
            },
            "capabilities": list(self.capabilities),
            "modified_at": _iso(_FIXED_TIME),
        }


def _parameter_count(size: str) -> int:
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    try:
        return int(float(size[:-1]) * scale[size[-1].upper()])
    except (KeyError, ValueError, IndexError):
        return 0


# --------------------------------------------------------------------------------------------
# Requests and faults
# --------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A fault applied to requests on `path` (None: every path), `times` times (None: always).

    Only the set fields apply: `status` answers with an error instead of the normal response;
    `delay` waits before the first byte; `drop_after` closes the connection after that many
    stream chunks (NDJSON lines or SSE events); `error_after` sends an in-stream error after that
    many chunks and ends the stream.
    """

    path: str | None = None
    status: int | None = None
    error: str = "injected fault"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_after: int | None = None
    error_after: int | None = None
    times: int | None = None

    def matches(self, path: str) -> bool:
        return self.path is None or self.path == path


@dataclass
class _Plan:
    """The faults that apply to one request, merged."""

    status: Fault | None = None
    delay: float = 0.0
    drop_after: int | None = None
    error_after: int | None = None
    error: str = ""


# --------------------------------------------------------------------------------------------
# Generation: one scripted reply, computed once and rendered in three wire formats
# --------------------------------------------------------------------------------------------


def _iso(ts: datetime) -> str:
    """Go's RFC 3339 with nanoseconds, as Ollama writes `created_at`."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def split_words(text: str) -> list[str]:
    """Split text into stream pieces whose concatenation is exactly `text`."""
    if not text:
        return []
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:  # trailing whitespace (or all whitespace) goes with the last piece
        if pieces:
            pieces[-1] += tail
        else:
            pieces = [tail]
    return pieces


def estimate_tokens(*parts: Any) -> int:
    """A deterministic stand-in for tokenizing: 4 characters of JSON per token."""
    chars = sum(len(p if isinstance(p, str) else json.dumps(p)) for p in parts if p)
    return max(1, math.ceil(chars / 4))


@dataclass
class Generation:
    model: str
    text: list[str]
    thinking: list[str]
    tool_calls: list[dict[str, Any]]  # native shape: {id, function: {index, name, arguments}}
    done_reason: str
    prompt_tokens: int
    eval_count: int
    load_duration: int

    @property
    def durations(self) -> dict[str, int]:
        prompt_ns = self.prompt_tokens * 100_000  # pretend 10k tokens/s prefill
        eval_ns = self.eval_count * 10_000_000  # and 100 tokens/s decode
        return {
            "total_duration": self.load_duration + prompt_ns + eval_ns + 250_000,
            "load_duration": self.load_duration,
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": self.eval_count,
            "eval_duration": eval_ns,
        }

    @property
    def full_text(self) -> str:
        return "".join(self.text)

    @property
    def full_thinking(self) -> str:
        return "".join(self.thinking)


def _generate(
    model: str,
    reply: Reply,
    *,
    num_predict: int | None,
    prompt_estimate: int,
    num_ctx: int,
    next_id: Callable[[str], str],
    load_ns: int,
) -> Generation:
    thinking, text = split_words(reply.thinking), split_words(reply.text)
    calls = [
        {
            "id": c.id or next_id("call"),
            "function": {"index": i, "name": c.name, "arguments": c.arguments},
        }
        for i, c in enumerate(reply.tool_calls)
    ]
    done_reason = reply.done_reason or "stop"
    if num_predict is not None and num_predict >= 0 and len(thinking) + len(text) > num_predict:
        # Out of budget: thinking is generated first, then text; tool calls never get written.
        thinking = thinking[:num_predict]
        text = text[: num_predict - len(thinking)]
        calls, done_reason = [], "length"
    eval_count = (
        len(thinking) + len(text) + sum(estimate_tokens(c["function"]["arguments"]) for c in calls)
    )
    # Ollama drops the oldest messages to fit num_ctx (PROTOCOLS 3.5): the count is capped.
    prompt = min(prompt_estimate, num_ctx) if reply.prompt_tokens is None else reply.prompt_tokens
    return Generation(
        model, text, thinking, calls, done_reason, prompt, max(eval_count, 1), load_ns
    )


# -- native /api/chat ------------------------------------------------------------------------


def _native_message(
    content: str = "", thinking: str = "", tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def native_chunks(gen: Generation) -> Iterator[dict[str, Any]]:
    """The NDJSON objects of a streamed /api/chat: thinking, text, tool calls, then done."""

    def chunk(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": gen.model,
            "created_at": _iso(datetime.now(UTC)),
            "message": message,
            "done": False,
        }

    for piece in gen.thinking:
        yield chunk(_native_message(thinking=piece))
    for piece in gen.text:
        yield chunk(_native_message(piece))
    if gen.tool_calls:  # native tool calls arrive whole, in one chunk (PROTOCOLS 2.5)
        yield chunk(_native_message(tool_calls=gen.tool_calls))
    yield {
        **chunk(_native_message()),
        "done": True,
        "done_reason": gen.done_reason,
        **gen.durations,
    }


def native_response(gen: Generation) -> dict[str, Any]:
    return {
        "model": gen.model,
        "created_at": _iso(datetime.now(UTC)),
        "message": _native_message(gen.full_text, gen.full_thinking, gen.tool_calls),
        "done": True,
        "done_reason": gen.done_reason,
        **gen.durations,
    }


# -- OpenAI /v1/chat/completions (Ollama's openai/openai.go) ----------------------------------


def _openai_tool_calls(gen: Generation) -> list[dict[str, Any]]:
    return [
        {
            "id": c["id"],
            "index": c["function"]["index"],
            "type": "function",
            "function": {
                "name": c["function"]["name"],
                "arguments": json.dumps(c["function"]["arguments"]),
            },
        }
        for c in gen.tool_calls
    ]


def _finish_reason(gen: Generation) -> str:
    return "tool_calls" if gen.done_reason == "stop" and gen.tool_calls else gen.done_reason


def _usage(gen: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.eval_count,
        "total_tokens": gen.prompt_tokens + gen.eval_count,
    }


def openai_chunks(
    gen: Generation, completion_id: str, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """SSE payloads: role on the first delta, one per piece, a finish chunk, optional usage."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": gen.model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    deltas: list[dict[str, Any]] = [{"content": "", "reasoning": p} for p in gen.thinking]
    deltas += [{"content": p} for p in gen.text]
    if gen.tool_calls:
        deltas.append({"content": "", "tool_calls": _openai_tool_calls(gen)})
    for i, delta in enumerate(deltas):
        yield chunk({"role": "assistant", **delta} if i == 0 else delta)
    finish = chunk({}, _finish_reason(gen))
    yield finish
    if include_usage:
        yield {**finish, "choices": [], "usage": _usage(gen)}


def openai_response(gen: Generation, completion_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": gen.full_text}
    if gen.full_thinking:
        message["reasoning"] = gen.full_thinking
    if gen.tool_calls:
        message["tool_calls"] = _openai_tool_calls(gen)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": gen.model,
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(gen)}],
        "usage": _usage(gen),
    }


def openai_error(status: int, message: str) -> dict[str, Any]:
    etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": etype, "param": None, "code": None}}


# -- Anthropic /v1/messages (Ollama's anthropic/anthropic.go) ---------------------------------


def _stop_reason(gen: Generation) -> str:
    if gen.tool_calls:
        return "tool_use"
    return {"stop": "end_turn", "length": "max_tokens"}.get(gen.done_reason, "stop_sequence")


def anthropic_events(
    gen: Generation, message_id: str, ping: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs: message_start, the blocks one after another, message_delta/stop."""
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": gen.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": 0},
            },
        },
    )
    index = 0
    pinged = not ping  # Anthropic sends its ping right after the first content_block_start

    def block(
        start: dict[str, Any], deltas: Iterable[dict[str, Any]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        nonlocal pinged
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        if not pinged:
            pinged = True
            yield "ping", {"type": "ping"}
        for delta in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}

    if gen.thinking:
        yield from block(
            {"type": "thinking", "thinking": "", "signature": ""},
            ({"type": "thinking_delta", "thinking": p} for p in gen.thinking),
        )
        index += 1
    if gen.text:
        yield from block(
            {"type": "text", "text": ""}, ({"type": "text_delta", "text": p} for p in gen.text)
        )
        index += 1
    for call in gen.tool_calls:
        fn = call["function"]
        yield from block(
            {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": {}},
            [{"type": "input_json_delta", "partial_json": json.dumps(fn["arguments"])}],
        )
        index += 1
    if not pinged:
        yield "ping", {"type": "ping"}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(gen), "stop_sequence": None},
            "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.eval_count},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def anthropic_response(gen: Generation, message_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if gen.thinking:
        content.append({"type": "thinking", "thinking": gen.full_thinking, "signature": ""})
    if gen.text:
        content.append({"type": "text", "text": gen.full_text})
    content += [
        {
            "type": "tool_use",
            "id": c["id"],
            "name": c["function"]["name"],
            "input": c["function"]["arguments"],
        }
        for c in gen.tool_calls
    ]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": gen.model,
        "content": content,
        "stop_reason": _stop_reason(gen),
        "stop_sequence": None,
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.eval_count},
    }


def anthropic_error(status: int, message: str, request_id: str) -> dict[str, Any]:
    etype = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        503: "overloaded_error",
        529: "overloaded_error",
    }.get(status, "api_error")
    return {"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id}


# --------------------------------------------------------------------------------------------
# Pull: blobs survive an interrupted pull, so the next one resumes (server/download.go)
# --------------------------------------------------------------------------------------------


class BlobStore:
    """Which layer bytes the fake "has": whole blobs, and partial downloads by digest."""

    def __init__(self) -> None:
        self.complete: set[str] = set()
        self.partial: dict[str, int] = {}
        self.lock = threading.Lock()

    def progress(self, digest: str) -> int:
        with self.lock:
            return self.partial.get(digest, 0)

    def advance(self, digest: str, completed: int, total: int) -> None:
        with self.lock:
            if completed >= total:
                self.partial.pop(digest, None)
                self.complete.add(digest)
            else:
                self.partial[digest] = completed


def pull_progress(
    model: FakeModel, blobs: BlobStore, steps: int, install: Callable[[FakeModel], None]
) -> Iterator[dict[str, Any]]:
    """Ollama's pull progress, lazily: state is saved before each line is handed out, so a
    pull cut after any line leaves exactly the bytes that line reported."""
    for digest, total in model.layers:
        status = f"pulling {digest[7:19]}"
        if digest in blobs.complete:  # a cache hit: one line, total == completed
            yield {"status": status, "digest": digest, "total": total, "completed": total}
            continue
        completed = blobs.progress(digest)
        # `completed` is omitempty in Ollama: absent on a layer's first line until bytes arrive.
        first = {"status": status, "digest": digest, "total": total}
        yield {**first, "completed": completed} if completed else first
        step = max(1, math.ceil(total / steps))
        while completed < total:
            completed = min(total, completed + step)
            blobs.advance(digest, completed, total)
            yield {"status": status, "digest": digest, "total": total, "completed": completed}
    yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    install(model)
    yield {"status": "success"}


# --------------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------------


_Dropped = Dropped  # the stream was cut on purpose (a drop fault) or the client went away


class _Handler(FakeHandler):
    server_version = "fake-ollama"  # HTTP/1.1 keep-alive and chunked, as Ollama (Go net/http)
    sys_version = ""
    plan: _Plan  # the faults for the request being handled
    timeout = 30  # an idle keep-alive connection doesn't pin a thread forever

    @property
    def fake(self) -> FakeOllama:
        return self.server.fake

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        rec = self.record(method)
        self.fake._busy(+1)
        try:
            self.plan = self.fake._plan_for(rec.path)
            if self.plan.delay:
                self.fake._sleep(self.plan.delay)
            if self.plan.status is not None:
                self._send_fault(rec.path, self.plan.status)
                return
            route = self.fake._route(method, rec.path)
            if route is None:  # gin's answer for an unknown route
                self.send_bytes(404, b"404 page not found", "text/plain")
            else:
                route(self, rec)
        except (_Dropped, BrokenPipeError, ConnectionResetError):
            self.drop_connection(shutdown=False)
        finally:
            self.fake._busy(-1)

    # -- plain responses -------------------------------------------------------------------

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(
            status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers
        )

    def send_text(self, text: str) -> None:
        self.send_bytes(200, text.encode(), "text/plain; charset=utf-8")

    def send_error_for(
        self, path: str, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """An error body in the shape of the route's API: Ollama's middleware rewraps
        `{"error": ...}` for the OpenAI and Anthropic compatibility routes."""
        if path.startswith("/v1/messages"):
            payload = anthropic_error(status, message, self.fake._next_id("req"))
        elif path.startswith("/v1/"):
            payload = openai_error(status, message)
        else:
            payload = {"error": message}
        self.send_json(status, payload, headers)

    def _send_fault(self, path: str, fault: Fault) -> None:
        assert fault.status is not None
        self.send_error_for(path, fault.status, fault.error, fault.headers)

    # -- streams ---------------------------------------------------------------------------

    def stream(
        self, units: Iterable[bytes], content_type: str, error_unit: Callable[[str], bytes]
    ) -> None:
        """Send `units` with chunked transfer, one chunk each, flushed, honouring the plan's
        line delay, drop and in-stream error faults."""
        self.start_chunked(content_type)
        plan = self.plan
        units = iter(units)
        sent = 0
        while True:
            # Faults are checked before the next unit is produced, so a lazy producer (the
            # pull) has advanced exactly as far as the client saw.
            if plan.drop_after is not None and sent >= plan.drop_after:
                raise _Dropped  # close without the final 0-chunk: an incomplete body
            if plan.error_after is not None and sent >= plan.error_after:
                self.write_chunk(error_unit(plan.error))
                break
            unit = next(units, None)
            if unit is None:
                if plan.drop_after is not None:  # shorter than N: drop at its end
                    raise _Dropped
                if plan.error_after is not None:
                    self.write_chunk(error_unit(plan.error))
                break
            if sent and self.fake.line_delay:
                self.fake._sleep(self.fake.line_delay)
            self.write_chunk(unit)
            sent += 1
        self.end_chunked()

    def stream_ndjson(self, objects: Iterable[dict[str, Any]]) -> None:
        self.stream(
            (json.dumps(o).encode() + b"\n" for o in objects),
            "application/x-ndjson",
            lambda msg: json.dumps({"error": msg}).encode() + b"\n",
        )

    def stream_sse(
        self,
        events: Iterable[tuple[str | None, Any]],
        error_event: Callable[[str], tuple[str | None, Any]],
    ) -> None:
        self.stream(
            (_sse(name, data) for name, data in events),
            "text/event-stream",
            lambda msg: _sse(*error_event(msg)),
        )


def _sse(event: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


# --------------------------------------------------------------------------------------------
# Route handlers (one function per endpoint; `h` is the request handler)
# --------------------------------------------------------------------------------------------


def _root(h: _Handler, rec: RecordedRequest) -> None:
    h.send_text("Ollama is running")


def _version(h: _Handler, rec: RecordedRequest) -> None:
    h.send_json(200, {"version": h.fake.version})


def _tags(h: _Handler, rec: RecordedRequest) -> None:
    h.send_json(200, {"models": [m.tag_entry() for m in h.fake.installed()]})


def _ps(h: _Handler, rec: RecordedRequest) -> None:
    h.send_json(200, {"models": h.fake.running()})


def _model_name(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    return str(body.get("model") or body.get("name") or "")


def _show(h: _Handler, rec: RecordedRequest) -> None:
    name = _model_name(rec.body)
    model = h.fake.model(name)
    if model is None:
        h.send_json(404, {"error": f"model '{name}' not found"})
    else:
        h.send_json(200, model.show())


def _pull(h: _Handler, rec: RecordedRequest) -> None:
    body = rec.body if isinstance(rec.body, dict) else {}
    name = _model_name(body)
    stream = body.get("stream", True) is not False
    model = h.fake.pullable(name)
    if model is None:
        # The registry's 404 surfaces after "pulling manifest": an NDJSON error line (status 200)
        # when streaming, a 500 when not (server/routes.go waitForStream).
        if stream:
            h.stream_ndjson([{"status": "pulling manifest"}, {"error": UNKNOWN_MANIFEST}])
        else:
            h.send_json(500, {"error": UNKNOWN_MANIFEST})
        return
    lines = [{"status": "pulling manifest"}]
    progress = pull_progress(model, h.fake.blobs, h.fake.pull_steps, h.fake._install)
    if stream:
        h.stream_ndjson(_chain(lines, progress))
    else:
        for _ in progress:  # run the whole pull, answer with its last line
            pass
        h.send_json(200, {"status": "success"})


def _chain(*parts: Iterable[T]) -> Iterator[T]:
    for part in parts:
        yield from part


def _chat_setup(h: _Handler, rec: RecordedRequest) -> tuple[FakeModel, dict[str, Any]] | None:
    """Look the model up, or answer 404 in the route's error shape."""
    body = rec.body if isinstance(rec.body, dict) else {}
    name = _model_name(body)
    model = h.fake.model(name)
    if model is None:
        h.send_error_for(rec.path, 404, f"model '{name}' not found")
        return None
    return model, body


def _chat(h: _Handler, rec: RecordedRequest) -> None:
    found = _chat_setup(h, rec)
    if found is None:
        return
    model, body = found
    options = body.get("options") or {}
    messages = body.get("messages") or []
    num_ctx = int(options.get("num_ctx") or model.num_ctx or h.fake.default_num_ctx)
    if not messages:  # load / unload request (api.md): no generation
        unload = body.get("keep_alive") in (0, "0", "0s")
        load_ns = h.fake._load(model, num_ctx, unload=unload)
        h.send_json(
            200,
            {
                "model": model.name,
                "created_at": _iso(datetime.now(UTC)),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "unload" if unload else "load",
                **({} if unload else {"load_duration": load_ns}),
            },
        )
        return
    gen = h.fake._generation(
        model,
        body,
        num_predict=options.get("num_predict"),
        prompt=(messages, body.get("tools")),
        num_ctx=num_ctx,
    )
    if body.get("stream", True) is False:
        h.send_json(200, native_response(gen))
    else:
        h.stream_ndjson(native_chunks(gen))


def _openai_chat(h: _Handler, rec: RecordedRequest) -> None:
    found = _chat_setup(h, rec)
    if found is None:
        return
    model, body = found
    num_ctx = model.num_ctx or h.fake.default_num_ctx
    num_predict = body.get("max_tokens", body.get("max_completion_tokens"))
    gen = h.fake._generation(
        model,
        body,
        num_predict=num_predict,
        prompt=(body.get("messages"), body.get("tools")),
        num_ctx=num_ctx,
    )
    completion_id = h.fake._next_id("chatcmpl")
    if not body.get("stream"):  # OpenAI's default is not to stream
        h.send_json(200, openai_response(gen, completion_id))
        return
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = _chain(
        ((None, c) for c in openai_chunks(gen, completion_id, include_usage)), [(None, "[DONE]")]
    )
    h.stream_sse(events, lambda msg: (None, openai_error(500, msg)))


def _anthropic_messages(h: _Handler, rec: RecordedRequest) -> None:
    found = _chat_setup(h, rec)
    if found is None:
        return
    model, body = found
    num_ctx = model.num_ctx or h.fake.default_num_ctx
    gen = h.fake._generation(
        model,
        body,
        num_predict=body.get("max_tokens"),
        prompt=(body.get("system"), body.get("messages"), body.get("tools")),
        num_ctx=num_ctx,
    )
    message_id = h.fake._next_id("msg")
    if not body.get("stream"):
        h.send_json(200, anthropic_response(gen, message_id))
        return
    h.stream_sse(
        anthropic_events(gen, message_id, h.fake.anthropic_ping),
        lambda msg: ("error", {"type": "error", "error": {"type": "api_error", "message": msg}}),
    )


def _openai_models(h: _Handler, rec: RecordedRequest) -> None:
    h.send_json(200, {"object": "list", "data": [_openai_model(m) for m in h.fake.installed()]})


def _openai_model_one(h: _Handler, rec: RecordedRequest) -> None:
    name = rec.path.removeprefix("/v1/models/")
    model = h.fake.model(name)
    if model is None:
        h.send_error_for(rec.path, 404, f"model '{name}' not found")
    else:
        h.send_json(200, _openai_model(model))


def _openai_model(m: FakeModel) -> dict[str, Any]:
    owner = m.name.split("/")[0] if "/" in m.name else "library"
    return {
        "id": m.name,
        "object": "model",
        "created": int(_FIXED_TIME.timestamp()),
        "owned_by": owner,
    }


def _delete(h: _Handler, rec: RecordedRequest) -> None:
    name = _model_name(rec.body)
    if not h.fake._uninstall(name):
        h.send_json(404, {"error": f"model '{name}' not found"})
    else:
        h.send_bytes(200, b"", "text/plain")


Route = Callable[[_Handler, RecordedRequest], None]

_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/"): _root,
    ("HEAD", "/"): _root,
    ("GET", "/api/version"): _version,
    ("HEAD", "/api/version"): _version,
    ("GET", "/api/tags"): _tags,
    ("GET", "/api/ps"): _ps,
    ("POST", "/api/show"): _show,
    ("POST", "/api/pull"): _pull,
    ("POST", "/api/chat"): _chat,
    ("DELETE", "/api/delete"): _delete,
    ("POST", "/v1/chat/completions"): _openai_chat,
    ("GET", "/v1/models"): _openai_models,
    ("POST", "/v1/messages"): _anthropic_messages,
}


# --------------------------------------------------------------------------------------------
# The public object
# --------------------------------------------------------------------------------------------


class FakeOllama(FakeHTTPServer[RecordedRequest]):
    """The fake server. Use as a context manager, or call `start()` / `stop()`.

    `models`: installed at start. `registry`: extra models `/api/pull` can fetch (installed
    models are pullable too). `reply`: the default answer for models with no script.
    `line_delay`: seconds between streamed chunks (so pull progress is observable).
    `pull_steps`: progress lines per layer download. `default_num_ctx`: the context window when
    neither the request (native `options.num_ctx`) nor the model (`num_ctx`) sets one.
    """

    handler_class = _Handler
    name = "fake-ollama"
    label = "fake_ollama"

    def __init__(
        self,
        models: Iterable[FakeModel] = (),
        *,
        registry: Iterable[FakeModel] = (),
        reply: ReplySpec = "Hello from the fake Ollama.",
        version: str = DEFAULT_VERSION,
        line_delay: float = 0.0,
        pull_steps: int = 4,
        default_num_ctx: int = 4096,
        anthropic_ping: bool = True,
    ) -> None:
        super().__init__()
        self.version = version
        self.default_reply = reply
        self.line_delay = line_delay
        self.pull_steps = max(1, pull_steps)
        self.default_num_ctx = default_num_ctx
        self.anthropic_ping = anthropic_ping
        self.blobs = BlobStore()
        self._models: dict[str, FakeModel] = {}
        self._registry: dict[str, FakeModel] = {m.name: m for m in registry}
        self._loaded: dict[str, tuple[FakeModel, int]] = {}  # name -> (model, num_ctx)
        self._scripts: dict[str, ReplySpec] = {}
        self._queue: deque[ReplySpec] = deque()
        self._ids = 0
        self._active = 0
        for model in models:
            self._install(model)

    # -- lifecycle -------------------------------------------------------------------------

    def down(self) -> None:
        """Simulate Ollama not running: connections to `url` are refused until `up()`."""
        self.stop()

    def up(self) -> None:
        """Start again on the same port, with the same models, blobs and scripts."""
        if self._server is None:
            self.start()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # -- models ----------------------------------------------------------------------------

    def add_model(self, model: FakeModel) -> FakeModel:
        """Install a model (as if it had been pulled before)."""
        self._install(model)
        return model

    def add_to_registry(self, model: FakeModel) -> FakeModel:
        """Make a model pullable without installing it."""
        with self._cond:
            self._registry[model.name] = model
        return model

    def installed(self) -> list[FakeModel]:
        with self._cond:
            return list(self._models.values())

    def model(self, name: str) -> FakeModel | None:
        """An installed model by name (`:latest` is implied), or None."""
        with self._cond:
            return self._models.get(normalize_name(name)) if name else None

    def pullable(self, name: str) -> FakeModel | None:
        if not name:
            return None
        key = normalize_name(name)
        with self._cond:
            return self._registry.get(key) or self._models.get(key)

    def running(self) -> list[dict[str, Any]]:
        """/api/ps entries: models loaded by a chat, expiring 5 minutes from now."""
        expires = _iso(datetime.now(UTC) + timedelta(minutes=5))
        with self._cond:
            loaded = list(self._loaded.values())
        return [
            {
                "name": m.name,
                "model": m.name,
                "size": m.size,
                "digest": m.digest,
                "details": m.details(),
                "expires_at": expires,
                "size_vram": m.size,
                "context_length": ctx,
            }
            for m, ctx in loaded
        ]

    def _install(self, model: FakeModel) -> None:
        with self._cond:
            self._models[model.name] = model
        with self.blobs.lock:  # an installed model's blobs are on disk: re-pulls are cache hits
            self.blobs.complete.update(d for d, _ in model.layers)

    def _uninstall(self, name: str) -> bool:
        with self._cond:
            self._loaded.pop(normalize_name(name), None)
            return self._models.pop(normalize_name(name), None) is not None

    def _load(self, model: FakeModel, num_ctx: int, *, unload: bool = False) -> int:
        """Mark a model loaded (or unloaded); the load duration is paid on first load only."""
        with self._cond:
            if unload:
                self._loaded.pop(model.name, None)
                return 0
            fresh = model.name not in self._loaded or self._loaded[model.name][1] != num_ctx
            self._loaded[model.name] = (model, num_ctx)
        return 500_000_000 if fresh else 2_000_000

    # -- scripting -------------------------------------------------------------------------

    def script(self, model: str, reply: ReplySpec) -> None:
        """Answer every request for `model` with `reply` (text, Reply, or callable of the body)."""
        with self._cond:
            self._scripts[normalize_name(model)] = reply

    def enqueue(self, *replies: ReplySpec) -> None:
        """Answer the next chat requests (any model, any API) with these, in order."""
        with self._cond:
            self._queue.extend(replies)

    def _reply_for(self, model: FakeModel, body: dict[str, Any]) -> Reply:
        with self._cond:
            candidates = [
                self._queue.popleft() if self._queue else None,
                self._scripts.get(model.name),
                model.reply,
                self.default_reply,
            ]
        spec = next(c for c in candidates if c is not None)
        if callable(spec):
            spec = spec(body)
        return Reply(text=spec) if isinstance(spec, str) else spec

    def _generation(
        self,
        model: FakeModel,
        body: dict[str, Any],
        *,
        num_predict: Any,
        prompt: tuple[Any, ...],
        num_ctx: int,
    ) -> Generation:
        load_ns = self._load(model, num_ctx)
        return _generate(
            model.name,
            self._reply_for(model, body),
            num_predict=int(num_predict) if num_predict is not None else None,
            prompt_estimate=estimate_tokens(*prompt),
            num_ctx=num_ctx,
            next_id=self._next_id,
            load_ns=load_ns,
        )

    def _next_id(self, prefix: str) -> str:
        """Deterministic ids in Ollama's formats (a counter, hashed)."""
        with self._cond:
            self._ids += 1
            n = self._ids
        digest = _sha256(prefix, n)
        if prefix == "call":  # server/routes.go toolCallId: 8 lowercase alphanumerics
            return f"call_{digest[:8]}"
        if prefix == "chatcmpl":  # middleware/openai.go: chatcmpl-<rand.Intn(999)>
            return f"chatcmpl-{n % 999}"
        return f"{prefix}_{digest[:24]}"  # anthropic.go generateID: 12 random bytes in hex

    # -- faults ----------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        return self._add_fault(fault)

    def fail(
        self,
        status: int = 500,
        error: str = "injected fault",
        *,
        path: str | None = None,
        times: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer with `status` and Ollama's error body (`{"error": ...}`, rewrapped on /v1)."""
        return self.add_fault(
            Fault(path=path, status=status, error=error, headers=dict(headers or {}), times=times)
        )

    def delay(self, seconds: float, *, path: str | None = None, times: int | None = None) -> Fault:
        """Wait `seconds` before the first byte of the response."""
        return self.add_fault(Fault(path=path, delay=seconds, times=times))

    def break_stream(self, path: str | None = None, *, after: int, times: int | None = 1) -> Fault:
        """Close the connection after `after` stream chunks (no clean end of the body)."""
        return self.add_fault(Fault(path=path, drop_after=after, times=times))

    def stream_error(
        self,
        path: str | None = None,
        *,
        after: int,
        error: str = "injected fault",
        times: int | None = 1,
    ) -> Fault:
        """Send an in-stream error after `after` chunks (status stays 200), then end the stream."""
        return self.add_fault(Fault(path=path, error_after=after, error=error, times=times))

    def _plan_for(self, path: str) -> _Plan:
        """Merge the faults matching `path`, using up one of each one's `times`."""
        plan = _Plan()
        for fault in self._take_faults(lambda f: f.matches(path)):
            plan.delay += fault.delay
            if fault.status is not None and plan.status is None:
                plan.status = fault
            if fault.drop_after is not None:
                plan.drop_after = fault.drop_after
            if fault.error_after is not None:
                plan.error_after, plan.error = fault.error_after, fault.error
        return plan

    # -- recording -------------------------------------------------------------------------

    def _busy(self, delta: int) -> None:
        with self._cond:
            self._active += delta
            self._cond.notify_all()

    def _route(self, method: str, path: str) -> Route | None:
        if method == "GET" and path.startswith("/v1/models/"):
            return _openai_model_one
        return _ROUTES.get((method, path))

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until no request is being handled (e.g. an abandoned pull has noticed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"fake_ollama: still busy after {timeout}s")
                self._cond.wait(remaining)

    def clear(self) -> None:
        """Forget recorded requests, queued replies and faults (models and blobs stay)."""
        with self._cond:
            self.requests.clear()
            self._queue.clear()
            self._faults.clear()
