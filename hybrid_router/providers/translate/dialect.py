"""A backend's streamed answer, turned into Anthropic events as its bytes arrive: the one place
each streaming format is read, whoever reads it (the proxy relays the events as SSE, the MCP
delegate collects their text).

A dialect is fed the body as it comes, split anywhere (half a line, many lines), and returns the
Anthropic events `(name, payload)` those bytes complete; `finish()`, at the end of the body,
returns the closing ones, or raises `BrokeOff` when the stream never said the answer was whole.
Meanwhile `done` turns true once the stream has said all it will (the caller may stop reading),
and `usage`, `stop_reason` and `problems` hold what the events reported and what was repaired.

Both formats in use are line-based, so the base class does the framing and a dialect reads one
line at a time: `openai_sse.py` (chat completions as server-sent events: llama.cpp, vLLM, LM
Studio, OpenRouter, Ollama's `/v1`) and `ollama_ndjson.py` (Ollama's native `/api/chat`). Each
turns its lines into OpenAI-style chunks for the one translator (`stream.py`), so blocks, tool
calls and their repair come out the same whatever the wire format. Another format is one more
module: a subclass with its own `line()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection

from ...core.usage import Usage
from ..errors import BrokeOff
from .stream import Event, OpenAIStreamToAnthropic


class StreamDialect(ABC):
    """Line framing, the translator and the end-of-stream rule; subclasses read the lines.

    The translator's options (`input_tokens`, `thinking`, `tool_names`) are passed through: see
    `OpenAIStreamToAnthropic`."""

    cut_short = "the stream ended before the answer was complete"

    def __init__(
        self,
        requested_model: str,
        *,
        input_tokens: int | None = None,
        thinking: bool = False,
        tool_names: Collection[str] | None = None,
    ) -> None:
        self.translator = OpenAIStreamToAnthropic(
            requested_model, input_tokens=input_tokens, thinking=thinking, tool_names=tool_names
        )
        self.done = False  # the stream said all it will: stop reading
        self.complete = False  # the stream said the answer is whole
        self._pending = b""

    @property
    def usage(self) -> Usage:
        return self.translator.usage

    @property
    def stop_reason(self) -> str | None:
        return self.translator.stop_reason

    @property
    def problems(self) -> list[str]:
        return self.translator.problems

    def feed(self, data: bytes) -> list[Event]:
        """The events the lines completed by `data` make (none for a partial line)."""
        if self._pending:
            data = self._pending + data
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = data
            return []
        self._pending = data[end + 1 :]
        events: list[Event] = []
        for line in data[:end].split(b"\n"):
            if self.done:
                break
            events += self.line(line)
        return events

    def finish(self) -> list[Event]:
        """The closing events, once the body has ended. `BrokeOff` if it ended too soon."""
        pending, self._pending = self._pending, b""
        events = self.line(pending) if pending and not self.done else []
        if not self.complete:
            raise BrokeOff(self.cut_short)
        return events + self.translator.finish()

    @abstractmethod
    def line(self, line: bytes) -> list[Event]:
        """The events one line of the body makes (`line` may end with a CR)."""
