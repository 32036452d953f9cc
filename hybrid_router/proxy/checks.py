"""Checking an answer from a link that is not Anthropic before the client sees it.

Claude Code's agent loop runs on the tool calls a model makes, and small local models break
them in a few recognisable ways. An answer to a request that offers tools fails when:

- `empty`: it has no text (beyond whitespace) and no tool call;
- `truncated-tool-call`: it stopped at max_tokens with a tool call in it (or the opening of
  one written as text): the call's input cannot be trusted to be whole;
- `unknown-tool`: a tool_use names a tool the request did not offer;
- `invalid-tool-input`: a tool_use's input is not a JSON object, was not valid JSON (the
  translation replaced it with `{}`), or breaks the tool's `input_schema` (JSON Schema: required
  properties, types, enums, `additionalProperties: false`...);
- `tool-loop`: a tool_use repeats the same tool with the same input (canonical JSON) for the
  third time in a row since the user's last typed prompt (the history is in the request);
- `refusal`: the whole answer is one canned refusal sentence (core/checks.py says why only that).

A failed check is a `FailedCheck`, one more `BackendError`: the relay moves down the chain as
for any other failure, and the row names the check and the model that failed it.

JSON Schema is applied with `jsonschema` (maintained, and already installed with the MCP SDK):
unlike code-generating validators it never turns a client's schema into code, and with an empty
registry it never fetches a `$ref` from the network. Each distinct schema is compiled once and
kept; a schema that cannot be applied (invalid, or a `$ref` that does not resolve) is not the
model's fault and checks nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..core.checks import (
    CHECK_EMPTY,
    CHECK_INVALID_TOOL_INPUT,
    CHECK_REFUSAL,
    CHECK_TOOL_LOOP,
    CHECK_TRUNCATED_TOOL_CALL,
    CHECK_UNKNOWN_TOOL,
    is_canned_refusal,
)
from ..providers.errors import BackendError
from ..providers.link import Link

# A tool call a model wrote as text instead of a tool call: its opening, in the formats of the
# common local chat templates (Qwen/Hermes, Mistral, Llama 3.1, Qwen3-Coder's XML...).
_TEXT_CALL_OPENINGS = ("<tool_call>", "[TOOL_CALLS]", "<|tool_call", "<|python_tag|>", "<function=")
_TEXT_TAIL_CHARS = 4000  # where a cut-off textual call would be: the end of the answer
_DETAIL_CHARS = 200  # a validator's message quotes the model's input: kept short
_SAME_CALLS_FOR_A_LOOP = 3
MAX_CACHED_SCHEMAS = 256


class FailedCheck(BackendError):
    """HTTP 200 and a whole answer, which the client must not see: it failed a check.

    `error_class` is the check's name (core/checks.py); `provider` and `model` the link that
    gave the answer, for the row."""

    def __init__(self, check: str, detail: str, link: Link) -> None:
        super().__init__(f"its answer failed the {check} check: {detail}")
        self.error_class = check
        self.provider = link.provider_name
        self.model = link.model


@dataclass(slots=True)
class ToolUse:
    name: Any
    input: Any
    readable: bool = True  # False: its streamed input was not valid JSON


@dataclass(slots=True)
class Answer:
    """What the checks read of an answer (Anthropic's shape, streamed or whole)."""

    text: str = ""
    calls: list[ToolUse] = field(default_factory=list)
    stop_reason: str | None = None
    problems: list[str] = field(default_factory=list)  # tool arguments the translation replaced


def answer_of_message(message: Any, problems: list[str] | None = None) -> Answer:
    """The Answer in a whole (non-streamed) Messages response."""
    answer = Answer(problems=list(problems or ()))
    if not isinstance(message, dict):
        return answer
    reason = message.get("stop_reason")
    answer.stop_reason = reason if isinstance(reason, str) else None
    texts: list[str] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            answer.calls.append(ToolUse(block.get("name"), block.get("input")))
    answer.text = "".join(texts)
    return answer


class AnswerCollector:
    """Builds the Answer of a stream from its Anthropic events, fed one `(name, payload)` at a
    time as they pass (`upstream.open_link(observe=...)`); `answer()` once it ended."""

    __slots__ = ("_texts", "_calls", "_inputs", "stop_reason")

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._calls: dict[Any, ToolUse] = {}  # block index -> its tool call
        self._inputs: dict[Any, list[str]] = {}  # block index -> its input_json_delta parts
        self.stop_reason: str | None = None

    def __call__(self, name: str, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        if name == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                return
            kind = delta.get("type")
            if kind == "text_delta" and isinstance(delta.get("text"), str):
                self._texts.append(delta["text"])
            elif kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                self._inputs.setdefault(payload.get("index"), []).append(delta["partial_json"])
        elif name == "content_block_start":
            block = payload.get("content_block")
            if not isinstance(block, dict):
                return
            if block.get("type") == "tool_use":
                self._calls[payload.get("index")] = ToolUse(block.get("name"), block.get("input"))
            elif block.get("type") == "text" and isinstance(block.get("text"), str):
                self._texts.append(block["text"])
        elif name == "message_delta":
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(reason, str):
                self.stop_reason = reason

    def answer(self, problems: list[str] | None = None) -> Answer:
        calls = []
        for index, call in self._calls.items():
            parts = self._inputs.get(index)
            if parts is not None:  # streamed input replaces the start's (empty) object
                text = "".join(parts)
                try:
                    call.input = json.loads(text) if text.strip() else {}
                except ValueError:
                    call.input, call.readable = text, False
            calls.append(call)
        return Answer("".join(self._texts), calls, self.stop_reason, list(problems or ()))


def canonical(value: Any) -> bytes:
    """One spelling of a JSON value (keys sorted, no spaces): equal inputs compare equal."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# -- JSON Schema ---------------------------------------------------------------------------------

_UNUSABLE = object()  # a schema that cannot be applied: cached, so it is not compiled again
_validators_by_schema: dict[bytes, Any] = {}


def schema_validator(schema: Any) -> Any | None:
    """The compiled validator of `schema` (once per distinct schema), or None when it cannot be
    applied (not an object, invalid)."""
    if not isinstance(schema, dict):
        return None
    key = canonical(schema)
    found = _validators_by_schema.get(key)
    if found is None:
        found = _compile(schema)
        if len(_validators_by_schema) >= MAX_CACHED_SCHEMAS:  # a bound, against endless variety
            del _validators_by_schema[next(iter(_validators_by_schema))]
        _validators_by_schema[key] = found
    return None if found is _UNUSABLE else found


def _compile(schema: dict[str, Any]) -> Any:
    # Imported with the first schema (about 50 ms), not with the proxy: its start-up, and
    # every request that offers no tools, do not pay for it. jsonschema has no type information
    # (its stubs are a separate package): it is used as `Any`.
    from jsonschema import validators  # type: ignore[import-untyped]
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
    from referencing import Registry

    # The draft its `$schema` names (Claude Code's tools say 2020-12), else 2020-12. Formats are
    # not asserted (JSON Schema's default): a regex's idea of a URI must not fail a real call.
    validator_class = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except (SchemaError, RecursionError):
        return _UNUSABLE
    # An empty registry: a `$ref` resolves within the schema or not at all. Without one,
    # jsonschema fetches a remote `$ref` over the network — a request could make the proxy do so.
    return validator_class(schema, registry=Registry())


def schema_problem(schema: Any, value: Any) -> str | None:
    """What is wrong with `value` under `schema`, or None (also when the schema cannot say)."""
    validator = schema_validator(schema)
    if validator is None:
        return None
    from jsonschema.exceptions import best_match  # loaded with the validator: no cost here

    try:
        error = best_match(validator.iter_errors(value))
    except Exception:  # noqa: BLE001 - an unresolvable $ref, a bad pattern: not the model's fault
        return None
    if error is None:
        return None
    where = error.json_path if error.json_path != "$" else "the input"
    return f"{where}: {error.message}"[:_DETAIL_CHARS]


# -- the request's side ---------------------------------------------------------------------------


def _typed_prompt(content: Any) -> bool:
    """A user turn the user typed, as opposed to one that carries tool results back."""
    if not isinstance(content, list):
        return True
    return not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def recent_calls(messages: Any, wanted: int = _SAME_CALLS_FOR_A_LOOP - 1) -> list[ToolUse]:
    """The last `wanted` tool calls the assistant made since the user's last typed prompt,
    oldest first. Read from the end: a long agent turn costs no more than a short one."""
    calls: list[ToolUse] = []
    history: list[Any] = messages if isinstance(messages, list) else []
    for message in reversed(history):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "user" and _typed_prompt(message.get("content")):
            break
        content = message.get("content")
        if role != "assistant" or not isinstance(content, list):
            continue
        for block in reversed(content):
            if isinstance(block, dict) and block.get("type") == "tool_use":
                calls.append(ToolUse(block.get("name"), block.get("input")))
                if len(calls) == wanted:
                    return calls[::-1]
    return calls[::-1]


class RequestChecks:
    """The checks for one request's answers: the tools it offered and its recent calls, read
    once from the request (whichever links answer it)."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.offered: dict[str, Any] = {}
        for tool in body.get("tools") or ():
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                self.offered[tool["name"]] = tool.get("input_schema")
        self._recent: list[ToolUse] | None = None

    def verdict(self, answer: Answer, link: Link) -> FailedCheck | None:
        """The first check `answer` fails, or None when the client may see it."""
        problem = self.problem(answer)
        return None if problem is None else FailedCheck(problem[0], problem[1], link)

    def problem(self, answer: Answer) -> tuple[str, str] | None:
        calls = answer.calls
        if not calls and not answer.text.strip():
            return CHECK_EMPTY, "the answer has no text and no tool call"
        if answer.stop_reason == "max_tokens":
            if calls:
                names = ", ".join(str(c.name) for c in calls)
                return CHECK_TRUNCATED_TOOL_CALL, f"cut off at max_tokens in a call to {names}"
            tail = answer.text[-_TEXT_TAIL_CHARS:]
            opening = next((o for o in _TEXT_CALL_OPENINGS if o in tail), None)
            if opening is not None:
                return (
                    CHECK_TRUNCATED_TOOL_CALL,
                    f"cut off at max_tokens in a tool call written as text ({opening})",
                )
        for call in calls:
            found = self._call_problem(call)
            if found is not None:
                return found
        if answer.problems:
            return CHECK_INVALID_TOOL_INPUT, "; ".join(answer.problems)[:_DETAIL_CHARS]
        if calls:
            loop = self._loop(calls)
            if loop is not None:
                return CHECK_TOOL_LOOP, loop
        elif is_canned_refusal(answer.text):
            return CHECK_REFUSAL, f"the answer is only {answer.text.strip()!r}"
        return None

    def _call_problem(self, call: ToolUse) -> tuple[str, str] | None:
        if not isinstance(call.name, str) or call.name not in self.offered:
            offered = len(self.offered)
            return (
                CHECK_UNKNOWN_TOOL,
                f"called {str(call.name)[:80]!r}, which is not among the {offered} tools offered",
            )
        if not call.readable:
            return CHECK_INVALID_TOOL_INPUT, f"{call.name}: its input is not valid JSON"
        if not isinstance(call.input, dict):
            kind = type(call.input).__name__
            return CHECK_INVALID_TOOL_INPUT, f"{call.name}: its input is a {kind}, not an object"
        wrong = schema_problem(self.offered[call.name], call.input)
        if wrong is not None:
            return CHECK_INVALID_TOOL_INPUT, f"{call.name}: {wrong}"
        return None

    def _loop(self, calls: list[ToolUse]) -> str | None:
        if self._recent is None:
            self._recent = recent_calls(self.body.get("messages"))
        run = [*self._recent, *calls]
        history = len(self._recent)
        for index in range(max(history, _SAME_CALLS_FOR_A_LOOP - 1), len(run)):
            last, before = run[index], run[index - _SAME_CALLS_FOR_A_LOOP + 1 : index]
            if all(c.name == last.name for c in before):
                spelled = canonical(last.input)
                if all(canonical(c.input) == spelled for c in before):
                    return (
                        f"{last.name} called with the same input {_SAME_CALLS_FOR_A_LOOP} times "
                        "in a row since the user's last prompt"
                    )
        return None
