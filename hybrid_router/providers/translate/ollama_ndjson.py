"""Ollama's native `/api/chat` stream: one JSON object a line, the last with `done: true`,
its `done_reason` and the token counts (`prompt_eval_count`, `eval_count`; absent when 0).

Each line becomes the OpenAI-style chunk it amounts to, for the one translator: content as
`content`, `thinking` as reasoning, tool calls (whole, with their arguments already an object)
under a running index."""

from __future__ import annotations

import json
from typing import Any

from ..errors import BadAnswer
from .dialect import StreamDialect
from .stream import Event


class OllamaChatStream(StreamDialect):
    """An `/api/chat` NDJSON body -> Anthropic events. A line that is not a JSON object is not
    Ollama's protocol: `BadAnswer`. An `error` line becomes an `error` event."""

    cut_short = "the stream ended before Ollama said it was done"
    _calls = 0  # tool calls so far: the index of the next one

    def line(self, line: bytes) -> list[Event]:
        if not line.strip():
            return []
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as exc:
            shown = line[:80].decode("utf-8", "replace")
            raise BadAnswer(f"Ollama sent a line that is not JSON: {shown!r}") from exc
        if not isinstance(item, dict):
            raise BadAnswer(f"Ollama sent a line that is not an object: {type(item).__name__}")
        if "error" in item:
            error = item["error"]
            detail = error if isinstance(error, dict) else {"message": str(error)}
            return self.translator.feed({"error": detail})
        message = item.get("message")
        message = message if isinstance(message, dict) else {}
        delta: dict[str, Any] = {}
        content = message.get("content")
        if isinstance(content, str) and content:
            delta["content"] = content
        thinking = message.get("thinking")
        if isinstance(thinking, str) and thinking:
            delta["reasoning"] = thinking
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            delta["tool_calls"] = [self._call(c) for c in calls if isinstance(c, dict)]
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        chunk: dict[str, Any] = {"choices": [choice]}
        if item.get("done"):
            self.done = self.complete = True
            choice["finish_reason"] = item.get("done_reason") or "stop"
            chunk["usage"] = {
                "prompt_tokens": int(item.get("prompt_eval_count") or 0),
                "completion_tokens": int(item.get("eval_count") or 0),
            }
        return self.translator.feed(chunk)

    def _call(self, call: dict[str, Any]) -> dict[str, Any]:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        index, self._calls = self._calls, self._calls + 1
        return {
            "index": index,
            "id": call.get("id"),
            "function": {
                "name": function.get("name") or "",
                "arguments": function.get("arguments"),
            },
        }
