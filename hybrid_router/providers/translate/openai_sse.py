"""The OpenAI chat-completions stream as server-sent events (llama.cpp, vLLM, LM Studio,
OpenRouter, Ollama's `/v1`): `data:` lines of JSON chunks, ended by `data: [DONE]`."""

from __future__ import annotations

import json

from .dialect import StreamDialect
from .stream import Event


class OpenAIChatStream(StreamDialect):
    """A chat-completions SSE body -> Anthropic events. The answer is whole once a choice has a
    `finish_reason` (the usage chunk may follow) or `[DONE]` came; a `data:` line that is not
    JSON is skipped and noted in `problems`."""

    cut_short = "the stream ended without a finish reason"

    def line(self, line: bytes) -> list[Event]:
        if not line.startswith(b"data:"):
            return []  # event names, comments (": OPENROUTER PROCESSING"), blank lines
        data = line[5:].strip()
        if data == b"[DONE]":
            self.done = self.complete = True
            return []
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            self.problems.append(f"skipped an event that is not JSON: {data[:80]!r}")
            return []
        if not isinstance(chunk, dict):
            return []
        if not self.complete:
            choices = chunk.get("choices")
            if isinstance(choices, list) and any(
                isinstance(c, dict) and c.get("finish_reason") for c in choices
            ):
                self.complete = True
        return self.translator.feed(chunk)
