"""OpenAI Chat Completions stream chunks -> Anthropic SSE events (see the package docstring for
the documented choices). A small state machine, fed one parsed `data:` chunk at a time; the
dialects (`dialect.py`) feed it from a backend's bytes.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from ...core.usage import Usage
from .response import (
    TextToolCallScanner,
    message_id,
    openai_error_to_anthropic,
    parse_tool_arguments,
    reasoning_text,
    stop_reason,
    tool_id,
    usage_counts,
)

Event = tuple[str, dict[str, Any]]

# While tool arguments or dropped reasoning are buffered nothing reaches the client, and
# Claude Code aborts a stream that stays silent for 300 s: send a ping every so many chunks.
PING_EVERY = 32


def sse_bytes(event: str, data: dict[str, Any]) -> bytes:
    """One Anthropic SSE event. The `event:` line matters: the SDKs dispatch on it."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


class OpenAIStreamToAnthropic:
    """Feed it every chunk of one OpenAI stream, then call `finish()` (at `[DONE]` or when the
    stream ends); each call returns the Anthropic events to send, in order.

    Text streams live. Tool calls are buffered by `index` and sent whole, each as one
    tool_use block, when `finish_reason` arrives: fragments may interleave (pitfall 1)
    and arguments may need repair (pitfall 4), neither of which can be undone once sent.
    `input_tokens` is the prompt size if the caller knows it (message_start must go out
    before the upstream reports usage). `thinking=True` maps reasoning to thinking blocks
    (empty signature); by default reasoning is dropped. `tool_names` enables the fallback
    parser for tool calls written as text (pitfall 5).

    `usage` and `stop_reason` are what the events sent so far reported (final after
    `finish()`), so that no caller has to read them back out of the events."""

    def __init__(
        self,
        requested_model: str,
        *,
        input_tokens: int | None = None,
        thinking: bool = False,
        tool_names: Collection[str] | None = None,
    ) -> None:
        self.model = requested_model
        self.id = message_id()
        self.problems: list[str] = []  # repaired tool arguments etc., for the caller to log
        self.usage = Usage()
        self.stop_reason: str | None = None
        self._input_tokens = input_tokens or 0
        self._thinking = thinking
        self._scanner = TextToolCallScanner(tool_names) if tool_names else None
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: str | None = None  # "text" | "thinking" while such a block is open
        self._tools: dict[Any, dict[str, Any]] = {}  # upstream index -> id, name, fragments
        self._text_calls: list[tuple[str, dict[str, Any]]] = []
        self._tool_blocks = 0
        self._ids: set[str] = set()
        self._finish_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage: dict[str, int] = {}
        self._chars = 0
        self._silent = 0

    # --- public ---------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if self._done:
            return []
        events = self._start(chunk)
        if chunk.get("error"):  # OpenRouter: an error mid-stream, with HTTP 200
            return events + self._error(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_counts(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events + self._keep_alive(bool(events))

    def finish(self) -> list[Event]:
        """The closing events: any open block, buffered tool calls, message_delta, message_stop."""
        if self._done:
            return []
        events = self._start({}) + self._close_all()
        self._done = True
        reason = stop_reason(self._finish_reason, self._tool_blocks > 0)
        stop_sequence = None
        if self._stop_sequence is not None and reason == "end_turn":
            reason, stop_sequence = "stop_sequence", self._stop_sequence
        usage: dict[str, int] = dict(self._usage)
        if not usage.get("output_tokens"):
            # No usage from upstream: estimate (about 3.5 characters a token).
            usage["output_tokens"] = max(1, self._chars * 2 // 7) if self._chars else 0
        self.usage.absorb(usage)
        self.stop_reason = reason
        delta = {"stop_reason": reason, "stop_sequence": stop_sequence}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    # --- chunks ---------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any]) -> list[Event]:
        if self._started:
            return []
        self._started = True
        usage = {
            "input_tokens": self._input_tokens,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        if isinstance(chunk.get("usage"), dict):  # vLLM's continuous usage stats, say
            usage.update(usage_counts(chunk["usage"]), output_tokens=0)
        self.usage.absorb(usage)
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _choice(self, choice: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        delta = choice.get("delta") or {}
        reasoning = reasoning_text(delta)
        if reasoning:
            self._chars += len(reasoning)
            if self._thinking:
                events += self._open_block("thinking")
                events.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._chars += len(content)
            if self._scanner is None:
                events += self._text(content)
            else:
                events += self._scanned(self._scanner.push(content))
        for position, call in enumerate(delta.get("tool_calls") or []):
            self._tool_fragment(call, position)
        if isinstance(delta.get("function_call"), dict):  # the legacy single-call form
            self._tool_fragment({"index": "function_call", "function": delta["function_call"]}, 0)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
            if isinstance(choice.get("stop_reason"), str):  # vLLM names the stop string
                self._stop_sequence = choice["stop_reason"]
            events += self._close_all()
        return events

    def _tool_fragment(self, call: dict[str, Any], position: int) -> None:
        key = call.get("index", position)
        entry = self._tools.get(key)
        ident = call.get("id")
        if entry is not None and ident and entry["id"] and ident != entry["id"]:
            # A new id on a used index: a server that sends each call whole without an index.
            key = (key, len(self._tools))
            entry = None
        if entry is None:
            entry = self._tools[key] = {"id": None, "name": "", "args": []}
        function = call.get("function") or {}
        if ident and not entry["id"]:
            entry["id"] = ident
        if function.get("name") and not entry["name"]:
            entry["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # already parsed (pitfall 3)
            entry["args"] = arguments
        elif isinstance(arguments, str) and arguments:
            self._chars += len(arguments)
            if isinstance(entry["args"], list):
                entry["args"].append(arguments)

    def _scanned(self, items: list[tuple[str, Any]]) -> list[Event]:
        events: list[Event] = []
        for kind, value in items:
            if kind == "text":
                events += self._text(value)
            else:
                self._text_calls.append(value)
        return events

    def _error(self, chunk: dict[str, Any]) -> list[Event]:
        self._done = True
        status = chunk["error"].get("code") if isinstance(chunk["error"], dict) else None
        status = status if isinstance(status, int) else 200
        _, body = openai_error_to_anthropic(status, json.dumps(chunk))
        return self._close_open() + [("error", body)]

    def _keep_alive(self, sent_something: bool) -> list[Event]:
        self._silent = 0 if sent_something else self._silent + 1
        if self._silent < PING_EVERY:
            return []
        self._silent = 0
        return [("ping", {"type": "ping"})]

    # --- blocks ---------------------------------------------------------------------------

    def _text(self, text: str) -> list[Event]:
        return self._open_block("text") + [self._delta({"type": "text_delta", "text": text})]

    def _open_block(self, kind: str) -> list[Event]:
        if self._open == kind:
            return []
        events = self._close_open()
        block = {"type": "text", "text": ""}
        if kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
        events.append(self._block_start(block))
        self._open = kind
        return events

    def _close_open(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        self._next_index += 1
        index = self._next_index - 1
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _close_all(self) -> list[Event]:
        events: list[Event] = []
        if self._scanner is not None:
            events += self._scanned(self._scanner.flush())
        events += self._close_open()
        calls = [(e["id"], e["name"], e["args"]) for e in self._tools.values()]
        calls += [(None, name, args) for name, args in self._text_calls]
        self._tools.clear()
        self._text_calls.clear()
        for ident, name, raw in calls:
            events += self._tool_block(ident, name, raw)
        return events

    def _tool_block(self, ident: Any, name: str, raw: Any) -> list[Event]:
        args, problem = parse_tool_arguments("".join(raw) if isinstance(raw, list) else raw)
        if problem:
            self.problems.append(f"{name}: {problem}")
        block = {"type": "tool_use", "id": tool_id(ident, self._ids), "name": name, "input": {}}
        index = self._next_index
        self._next_index += 1
        self._tool_blocks += 1
        partial = json.dumps(args, ensure_ascii=False)
        return [
            self._block_start(block, index),
            self._delta({"type": "input_json_delta", "partial_json": partial}, index),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]

    def _block_start(self, block: dict[str, Any], index: int | None = None) -> Event:
        index = self._next_index if index is None else index
        data = {"type": "content_block_start", "index": index, "content_block": block}
        return ("content_block_start", data)

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> Event:
        index = self._next_index if index is None else index
        return (
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": delta},
        )
