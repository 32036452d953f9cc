"""A scripted fake of OpenRouter's OpenAI-compatible API on 127.0.0.1, for tests.

Follows shared PROTOCOLS.md section 4 and OpenRouter's docs page `api_reference/limits`:

- `POST /api/v1/chat/completions`: Bearer auth (401 otherwise), OpenAI shape, streaming as SSE
  `data:` chunks preceded by `: OPENROUTER PROCESSING` comment lines, `usage` (with `cost`) in a
  last chunk with empty `choices`, then `data: [DONE]`; or one JSON object. Replies are scripted
  per model (text or tool calls); unknown models get 400.
- `GET /api/v1/key` (auth): `limit`, `limit_remaining`, `limit_reset`, `usage*`, `is_free_tier`,
  `free_model_daily_requests {used, limit, remaining}` and the deprecated `rate_limit`.
- `GET /api/v1/models` (public): id, pricing as decimal strings per token, `supported_parameters`.
- Account rules: requests to `:free` models (and `openrouter/free`) count against a daily
  counter; past `free_daily_limit` they get OpenRouter's 429 `free-models-per-day` (with the
  `X-RateLimit-*` headers and their copy in `error.metadata.headers`); with `free_per_minute`
  set, a sliding minute window answers 429 `free-models-per-min`. Paid models cost credits from
  `balance` and the key's `usage`; an empty balance answers 402 `openrouter_credits`, a spent
  key cap 402 `openrouter_key_limit`, and a negative balance refuses free models too.
- Faults: `rate_limit_minute`, `exhaust_free_daily`, `insufficient_credits`, `fail` (any status,
  e.g. 5xx), `delay` (slow first byte, optionally with processing comments), `break_stream`
  (connection closed mid-stream), `stream_error` (an in-stream error event, status 200) and
  `error_with_200` (a non-streaming answer of HTTP 200 whose body is an error object).

    with FakeOpenRouter(free_daily_limit=3) as fake:
        fake.script("qwen/qwen3-coder:free", Reply(tool_calls=[ToolCall("Read", {"path": "a"})]))
        r = httpx.post(f"{fake.base_url}/chat/completions", headers=fake.auth_headers(),
                       json={"model": "qwen/qwen3-coder:free", "messages": [...]})
        assert fake.free_used == 1
        assert fake.requests_to("/api/v1/chat/completions")[0].header("x-title")

Assumed, not documented [U]: the per-minute 429 message (`free-models-per-min`), the daily 429
body's exact wording is from user reports; successful answers carry no `X-RateLimit-*` headers
(documented), unless `rate_limit_headers_on_success=True`. Tokens are words.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .http_server import Dropped, FakeHandler, FakeHTTPServer, RecordedRequest

__all__ = ["FakeModel", "FakeOpenRouter", "RecordedRequest", "Reply", "ToolCall", "is_free"]

API = "/api/v1"
DEFAULT_KEY = "sk-or-v1-fake0000000000000000000000000000000000000000000000000000000000"
PROCESSING = b": OPENROUTER PROCESSING\n\n"


def is_free(model: str) -> bool:
    return model.endswith(":free") or model == "openrouter/free"


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass
class Reply:
    """A scripted answer: text streamed a word per chunk, then tool calls (arguments in pieces)."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None  # None: "tool_calls" with tool calls, else "stop"
    prompt_tokens: int | None = None


ReplySpec = str | Reply | Callable[[dict[str, Any]], "str | Reply"]


@dataclass
class FakeModel:
    id: str
    prompt_price: str = "0"  # USD per token, as a decimal string (PROTOCOLS 4.6)
    completion_price: str = "0"
    context_length: int = 131072
    supported_parameters: list[str] = field(
        default_factory=lambda: ["max_tokens", "temperature", "tools", "tool_choice", "stop"]
    )
    reply: ReplySpec | None = None

    def entry(self) -> dict[str, Any]:
        vendor, _, slug = self.id.partition("/")
        return {
            "id": self.id,
            "canonical_slug": self.id.split(":")[0],
            "name": f"{vendor.title()}: {slug}",
            "created": 1750000000,
            "description": f"{self.id} (fake)",
            "context_length": self.context_length,
            "architecture": {
                "modality": "text->text",
                "input_modalities": ["text"],
                "output_modalities": ["text"],
                "tokenizer": "Other",
                "instruct_type": None,
            },
            "pricing": {
                "prompt": self.prompt_price,
                "completion": self.completion_price,
                "request": "0",
                "image": "0",
                "web_search": "0",
                "internal_reasoning": "0",
            },
            "top_provider": {
                "context_length": self.context_length,
                "max_completion_tokens": 16384,
                "is_moderated": False,
            },
            "per_request_limits": None,
            "supported_parameters": list(self.supported_parameters),
        }


DEFAULT_MODELS = (
    FakeModel("qwen/qwen3-coder:free"),
    FakeModel("meta-llama/llama-3.3-70b-instruct:free"),
    FakeModel("openai/gpt-4o-mini", "0.00000015", "0.0000006"),
    FakeModel("anthropic/claude-sonnet-4", "0.000003", "0.000015"),
)


@dataclass
class _Fault:
    kind: str  # "status" | "minute" | "delay" | "break" | "stream_error" | "error_200"
    times: int | None
    status: int = 500
    message: str = "injected fault"
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    seconds: float = 0.0
    keepalive: bool = False
    after: int = 0
    retry_after: float | None = None


_Dropped = Dropped


class _Handler(FakeHandler):
    server_version = "fake-openrouter"
    sys_version = ""
    timeout = 30

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        rec = self.record()
        try:
            self.server.fake._handle(self, rec)
        except (_Dropped, BrokenPipeError, ConnectionResetError):
            self.drop_connection()

    # -- writing ---------------------------------------------------------------------------

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def send_error_body(
        self,
        status: int,
        message: str,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        error: dict[str, Any] = {"message": message, "code": status}
        if metadata is not None:
            error["metadata"] = metadata
        self.send_json(status, {"error": error, "user_id": "user_fake"}, headers)

    def start_stream(self, headers: dict[str, str] | None = None) -> None:
        self.start_chunked("text/event-stream", headers, no_cache=True)

    def chunk(self, data: bytes) -> None:
        self.write_chunk(data)

    def end_stream(self) -> None:
        self.end_chunked()


class FakeOpenRouter(FakeHTTPServer[RecordedRequest]):
    """The fake server; a context manager (or `start()` / `stop()`). See the module docstring."""

    handler_class = _Handler
    name = "fake-openrouter"
    label = "fake_openrouter"

    def __init__(
        self,
        models: tuple[FakeModel, ...] | list[FakeModel] = DEFAULT_MODELS,
        *,
        api_key: str = DEFAULT_KEY,
        reply: ReplySpec = "Hello from the fake OpenRouter.",
        free_daily_limit: int = 50,
        free_per_minute: int | None = None,
        is_free_tier: bool = True,
        balance: float = 0.0,
        key_limit: float | None = None,
        key_limit_reset: str | None = None,
        key_usage: float = 0.0,
        rate_limit_headers_on_success: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.models = {m.id: m for m in models}
        self.api_key = api_key
        self.default_reply = reply
        self.free_daily_limit = free_daily_limit
        self.free_per_minute = free_per_minute
        self.is_free_tier = is_free_tier
        self.balance = balance
        self.key_limit = key_limit
        self.key_limit_reset = key_limit_reset
        self.key_usage = key_usage
        self.rate_limit_headers_on_success = rate_limit_headers_on_success
        self.clock = clock
        self.free_used = 0  # free-model requests "today" (the test decides when a day ends)
        self._minute: deque[float] = deque()
        self._scripts: dict[str, ReplySpec] = {}
        self._queue: deque[ReplySpec] = deque()

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"  # (before start: port 0)

    @property
    def base_url(self) -> str:
        """What a provider's `base_url` would be: `<url>/api/v1`."""
        return self.url + API

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    # -- scripting and faults --------------------------------------------------------------

    def script(self, model: str, reply: ReplySpec) -> None:
        with self._cond:
            self._scripts[model] = reply

    def enqueue(self, *replies: ReplySpec) -> None:
        with self._cond:
            self._queue.extend(replies)

    def fail(
        self,
        status: int = 502,
        message: str = "Provider returned error",
        *,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer chat requests with `status` and OpenRouter's error body."""
        self._add_fault(
            _Fault(
                "status",
                times,
                status=status,
                message=message,
                metadata=metadata,
                headers=dict(headers or {}),
            )
        )

    def rate_limit_minute(self, *, retry_after: float | None = None, times: int | None = 1) -> None:
        """The per-minute free-model limit, as if 20 requests had just been made."""
        self._add_fault(_Fault("minute", times, retry_after=retry_after))

    def exhaust_free_daily(self) -> None:
        """Spend today's free-model requests: the next `:free` request gets the daily 429."""
        with self._cond:
            self.free_used = self.free_daily_limit

    def new_day(self) -> None:
        """00:00 UTC: the free-model counter restarts."""
        with self._cond:
            self.free_used = 0
            self._minute.clear()

    def insufficient_credits(
        self, *, limit_source: str = "openrouter_credits", times: int | None = 1
    ) -> None:
        """A 402 for the next chat requests, whatever the model."""
        self.fail(
            402,
            _CREDIT_MESSAGES.get(limit_source, "Insufficient credits"),
            metadata={"limit_source": limit_source, "remedy_hint": "Add credits."},
            times=times,
        )

    def delay(self, seconds: float, *, keepalive: bool = False, times: int | None = 1) -> None:
        """Wait before the first byte; `keepalive` sends 200 and processing comments meanwhile
        (streaming requests only), as OpenRouter does while the upstream is slow."""
        self._add_fault(_Fault("delay", times, seconds=seconds, keepalive=keepalive))

    def break_stream(self, *, after: int, times: int | None = 1) -> None:
        """Close the connection after `after` `data:` chunks, without `[DONE]` or the last chunk."""
        self._add_fault(_Fault("break", times, after=after))

    def stream_error(
        self,
        *,
        after: int,
        status: int = 502,
        message: str = "Provider disconnected",
        times: int | None = 1,
    ) -> None:
        """After `after` chunks, an error event (`finish_reason: "error"`), then `[DONE]`."""
        self._add_fault(_Fault("stream_error", times, after=after, status=status, message=message))

    def error_with_200(
        self, *, status: int = 502, message: str = "Provider returned error", times: int | None = 1
    ) -> None:
        """Non-streaming requests: HTTP 200 with `{"error": {...}}` instead of a completion, as
        OpenRouter answers when the model's provider fails after the request was accepted."""
        self._add_fault(_Fault("error_200", times, status=status, message=message))

    # -- the account -----------------------------------------------------------------------

    def key_info(self) -> dict[str, Any]:
        with self._cond:
            remaining = None if self.key_limit is None else self.key_limit - self.key_usage
            return {
                "data": {
                    "label": f"{self.api_key[:11]}...{self.api_key[-3:]}",
                    "limit": self.key_limit,
                    "limit_remaining": remaining,
                    "limit_reset": self.key_limit_reset,
                    "include_byok_in_limit": False,
                    "usage": self.key_usage,
                    "usage_daily": self.key_usage,
                    "usage_weekly": self.key_usage,
                    "usage_monthly": self.key_usage,
                    "byok_usage": 0,
                    "byok_usage_daily": 0,
                    "byok_usage_weekly": 0,
                    "byok_usage_monthly": 0,
                    "is_free_tier": self.is_free_tier,
                    "is_provisioning_key": False,
                    "is_management_key": False,
                    "free_model_daily_requests": {
                        "used": self.free_used,
                        "limit": self.free_daily_limit,
                        "remaining": max(0, self.free_daily_limit - self.free_used),
                    },
                    "rate_limit": {
                        "requests": -1,
                        "interval": "10s",
                        "note": "This field is deprecated and safe to ignore.",
                    },
                }
            }

    def _daily_headers(self, remaining: int) -> dict[str, str]:
        reset = (int(self.clock() // 86400) + 1) * 86400  # the next 00:00 UTC
        return {
            "X-RateLimit-Limit": str(self.free_daily_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(reset * 1000),
        }

    def _minute_headers(self, now: float) -> dict[str, str]:
        limit = self.free_per_minute or 20
        reset = (self._minute[0] + 60) if self._minute else now + 60
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(reset * 1000)),
        }

    def _admit(self, h: _Handler, model: str, faults: list[_Fault]) -> dict[str, str] | None:
        """Apply the account's limits; answer the refusal and return None, or the headers."""
        now = self.clock()
        minute = next((f for f in faults if f.kind == "minute"), None)
        with self._cond:
            if self.balance < 0 or (not is_free(model) and self.balance <= 0):
                refusal: tuple[int, str, dict[str, Any], dict[str, str]] | None = (
                    402,
                    _CREDIT_MESSAGES["openrouter_credits"],
                    {"limit_source": "openrouter_credits", "remedy_hint": "Add credits."},
                    {},
                )
            elif (
                not is_free(model)
                and self.key_limit is not None
                and self.key_usage >= self.key_limit
            ):
                refusal = (
                    402,
                    _CREDIT_MESSAGES["openrouter_key_limit"],
                    {
                        "limit_source": "openrouter_key_limit",
                        "remedy_hint": "Raise the key's credit limit.",
                    },
                    {},
                )
            elif not is_free(model):
                refusal = None
            elif minute or (
                self.free_per_minute is not None and self._recent(now) >= self.free_per_minute
            ):
                headers = self._minute_headers(now)
                refusal = (
                    429,
                    "Rate limit exceeded: free-models-per-min. ",
                    {"headers": dict(headers), "provider_name": None},
                    headers,
                )
                if minute and minute.retry_after is not None:
                    headers["Retry-After"] = f"{minute.retry_after:g}"
            elif self.free_used >= self.free_daily_limit:
                headers = self._daily_headers(0)
                message = (
                    "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock "
                    "1000 free model requests per day"
                    if self.free_daily_limit < 1000
                    else "Rate limit exceeded: free-models-per-day-high-balance."
                )
                refusal = (429, message, {"headers": dict(headers), "provider_name": None}, headers)
            else:
                refusal = None
                self.free_used += 1
                self._minute.append(now)
            remaining = self.free_daily_limit - self.free_used
        if refusal is not None:
            status, message, metadata, headers = refusal
            h.send_error_body(status, message, metadata, headers)
            return None
        if self.rate_limit_headers_on_success and is_free(model):
            return self._daily_headers(remaining)
        return {}

    def _recent(self, now: float) -> int:
        while self._minute and self._minute[0] <= now - 60:
            self._minute.popleft()
        return len(self._minute)

    def _charge(self, model: FakeModel, prompt: int, completion: int) -> float:
        cost = prompt * float(model.prompt_price) + completion * float(model.completion_price)
        with self._cond:
            self.balance -= cost
            self.key_usage += cost
        return cost

    # -- requests --------------------------------------------------------------------------

    def _handle(self, h: _Handler, rec: RecordedRequest) -> None:
        if rec.method == "GET" and rec.path == f"{API}/models":
            h.send_json(200, {"data": [m.entry() for m in self.models.values()]})
            return
        known = {("GET", f"{API}/key"), ("POST", f"{API}/chat/completions")}
        if (rec.method, rec.path) not in known:
            h.send_error_body(404, "Not Found")
            return
        auth = rec.header("authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            h.send_error_body(401, "No auth credentials found")
            return
        if auth[7:].strip() != self.api_key:
            h.send_error_body(401, "User not found.")
            return
        if rec.path == f"{API}/key":
            h.send_json(200, self.key_info())
            return
        self._chat(h, rec)

    def _chat(self, h: _Handler, rec: RecordedRequest) -> None:
        body = rec.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            h.send_error_body(400, 'Input required: specify "prompt" or "messages"')
            return
        name = str(body.get("model") or "")
        model = self.models.get(name)
        if model is None:
            h.send_error_body(400, f"{name} is not a valid model ID")
            return
        faults = self._take_faults()
        stream = bool(body.get("stream"))
        delay = next((f for f in faults if f.kind == "delay"), None)
        if delay and not (delay.keepalive and stream):
            self._sleep(delay.seconds)
        status = next((f for f in faults if f.kind == "status"), None)
        if status:
            h.send_error_body(status.status, status.message, status.metadata, status.headers)
            return
        headers = self._admit(h, name, faults)
        if headers is None:
            return
        reply = self._reply_for(model, body)
        gen = _Generation.make(name, reply, body)
        cost = self._charge(model, gen.prompt_tokens, gen.completion_tokens)
        usage = gen.usage(cost)
        if not stream:
            error_200 = next((f for f in faults if f.kind == "error_200"), None)
            if error_200:
                error = {"code": error_200.status, "message": error_200.message}
                h.send_json(200, {"error": error, "user_id": "user_fake"}, headers)
                return
            h.send_json(200, gen.response(usage), headers)
            return
        h.start_stream(headers)
        h.chunk(PROCESSING)
        if delay:  # keepalive: OpenRouter's comments while the upstream has not answered
            deadline = time.monotonic() + delay.seconds
            while time.monotonic() < deadline:
                self._sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                h.chunk(PROCESSING)
        broken = next((f for f in faults if f.kind == "break"), None)
        failing = next((f for f in faults if f.kind == "stream_error"), None)
        for sent, chunk in enumerate(gen.chunks()):
            if broken and sent >= broken.after:
                raise _Dropped
            if failing and sent >= failing.after:
                h.chunk(_data(gen.error_chunk(failing.status, failing.message)))
                break
            h.chunk(_data(chunk))
        else:
            if broken:
                raise _Dropped
            h.chunk(_data(gen.usage_chunk(usage)))
        h.chunk(b"data: [DONE]\n\n")
        h.end_stream()

    def _reply_for(self, model: FakeModel, body: dict[str, Any]) -> Reply:
        with self._cond:
            queued = self._queue.popleft() if self._queue else None
            spec = next(
                s
                for s in (queued, self._scripts.get(model.id), model.reply, self.default_reply)
                if s is not None
            )
        if callable(spec):
            spec = spec(body)
        return Reply(text=spec) if isinstance(spec, str) else spec


_CREDIT_MESSAGES = {
    "openrouter_credits": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    "openrouter_key_limit": "Key limit exceeded. Manage it using https://openrouter.ai/settings/keys",
    "openrouter_in_flight_budget": "This request would exceed your available credits given your "
    "current in-flight requests. Retry after in-flight requests "
    "settle, or add credits.",
}


def _data(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


@dataclass
class _Generation:
    model: str
    id: str
    created: int
    words: list[str]
    calls: list[dict[str, Any]]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def make(cls, model: str, reply: Reply, body: dict[str, Any]) -> _Generation:
        words = re.findall(r"\s*\S+", reply.text)  # word pieces whose concatenation is the text
        tail = reply.text[len("".join(words)) :]
        if tail:
            words = [*words[:-1], words[-1] + tail] if words else [tail]
        calls = [
            {
                "id": c.id or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
        max_tokens = body.get("max_tokens")
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            words, calls, finish = words[:max_tokens], [], "length"
        prompt = (
            reply.prompt_tokens
            if reply.prompt_tokens is not None
            else max(1, len(json.dumps(body.get("messages"))) // 4)
        )
        completion = len(words) + sum(max(1, len(c["function"]["arguments"]) // 4) for c in calls)
        return cls(
            model,
            f"gen-{int(time.time())}-{uuid.uuid4().hex[:20]}",
            int(time.time()),
            words,
            calls,
            finish,
            prompt,
            max(1, completion),
        )

    def usage(self, cost: float) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": cost,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {"upstream_inference_cost": None},
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
        }

    def _envelope(self, choices: list[dict[str, Any]], obj: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": "FakeProvider",
            "model": self.model,
            "object": obj,
            "created": self.created,
            "choices": choices,
        }

    def response(self, usage: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.words),
            "refusal": None,
            "reasoning": None,
        }
        if self.calls:
            message["tool_calls"] = self.calls
        choice = {
            "logprobs": None,
            "finish_reason": self.finish_reason,
            "native_finish_reason": self.finish_reason,
            "index": 0,
            "message": message,
        }
        return {**self._envelope([choice], "chat.completion"), "usage": usage}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", **delta},
            "finish_reason": finish,
            "native_finish_reason": finish,
            "logprobs": None,
        }
        return self._envelope([choice], "chat.completion.chunk")

    def chunks(self) -> list[dict[str, Any]]:
        out = [self._chunk({"content": word}) for word in self.words]
        for index, call in enumerate(self.calls):
            args = call["function"]["arguments"]
            out.append(
                self._chunk(
                    {
                        "content": "",
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ],
                    }
                )
            )
            for start in range(0, len(args), 8):
                out.append(
                    self._chunk(
                        {
                            "content": "",
                            "tool_calls": [
                                {"index": index, "function": {"arguments": args[start : start + 8]}}
                            ],
                        }
                    )
                )
        out.append(self._chunk({"content": ""}, self.finish_reason))
        return out

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        return {**self._envelope([], "chat.completion.chunk"), "usage": usage}

    def error_chunk(self, status: int, message: str) -> dict[str, Any]:
        return {
            **self._chunk({"content": ""}, "error"),
            "error": {"code": status, "message": message},
        }
