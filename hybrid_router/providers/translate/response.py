"""OpenAI Chat Completions response / error -> Anthropic Messages response / error, and the
helpers the streaming translator shares (see translate/__init__.py for the documented choices).
Pure and stdlib-only.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from typing import Any

from ..errors import ErrorAnswer

_STOP_REASONS = {
    "stop": "end_turn",
    "eos": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TOOL_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_FENCE = re.compile(r"^\s*```[\w-]*\s*|\s*```\s*$")


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def new_tool_id() -> str:
    return "toolu_" + uuid.uuid4().hex[:24]


def tool_id(raw: Any, seen: set[str]) -> str:
    """An Anthropic-valid tool_use id. Missing ids are generated (pitfall 6: Ollama's
    may be absent), repeated ones replaced, odd characters (`functions.Bash:0`) made safe so
    the turn can later be replayed to Anthropic, which checks `^[A-Za-z0-9_-]+$`. Claude Code
    echoes the id in its tool_result and the request translation passes it back unchanged,
    so the pairing holds without a lookup table."""
    ident = _TOOL_ID_BAD_CHARS.sub("_", raw) if isinstance(raw, str) and raw else ""
    if not ident or ident in seen:
        ident = new_tool_id()
    seen.add(ident)
    return ident


def stop_reason(finish_reason: Any, has_tool_calls: bool) -> str:
    # Some servers say "stop" even though they returned tool calls: the calls decide.
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return _STOP_REASONS.get(finish_reason, "end_turn")


def parse_tool_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments -> (input object, problem or None). Never raises.

    Handles pitfalls 2 (empty/missing -> {}), 3 (already an object, as from Ollama's
    native API) and 4 (invalid JSON from small models: code fences, trailing text, a
    double-encoded string are repaired; anything else becomes {} plus a problem to log)."""
    if isinstance(raw, dict):
        return raw, None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if not isinstance(raw, str):
        return {}, f"tool arguments of type {type(raw).__name__} replaced by {{}}"
    try:
        value = json.loads(raw)
    except ValueError:
        value = _repair_json(raw)
        if value is None:
            return {}, f"invalid JSON tool arguments replaced by {{}}: {raw[:200]!r}"
    if isinstance(value, str):  # double-encoded: "{\"a\": 1}"
        inner, _ = parse_tool_arguments(value)
        if inner or value.strip() in ("{}", ""):
            return inner, None
    if isinstance(value, dict):
        return value, None
    return {}, f"tool arguments that are not an object replaced by {{}}: {raw[:200]!r}"


def _repair_json(raw: str) -> Any:
    """The first JSON object in `raw`, after stripping code fences; None when there is none."""
    text = _FENCE.sub("", raw)
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)  # ignores trailing text
    except ValueError:
        return None
    return value


def usage_counts(usage: Any) -> dict[str, int]:
    """OpenAI usage -> Anthropic counts. OpenAI's prompt_tokens *includes* cached tokens while
    Anthropic's input_tokens excludes them (total = input + cache_read + cache_creation), so
    the cached (and, on OpenRouter, cache-written) tokens are subtracted (pitfall 10)."""
    if not isinstance(usage, dict):
        return {}
    details = usage.get("prompt_tokens_details") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int(details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - cached - written),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    }


def reasoning_text(message: dict[str, Any]) -> str:
    """Reasoning under any of its names: Ollama `reasoning`, others `reasoning_content`."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


# --- tool calls written as text (pitfall 5) -------------------------------------------

_MARKERS = ("<tool_call>", "```", "[TOOL_CALLS]")
_NON_BLANK = re.compile(r"\S")
_CALL_KEYS = frozenset({"name", "arguments", "parameters", "input", "id", "type"})
_MISTRAL_V11 = re.compile(r"\s*([\w.-]+)\[ARGS\]")


class TextToolCallScanner:
    """Finds tool calls that a model wrote into its text (`<tool_call>{...}</tool_call>`,
    a ```json {"name": ...}``` fence, `[TOOL_CALLS][...]`, or a bare JSON call as the whole
    answer) for the tools in `tool_names`. Text is fed piece by piece; `push` returns what is
    safe to show now, holding back only text that may still turn out to be a call.

    Output items: ("text", str) or ("call", (name, input))."""

    def __init__(self, tool_names: Collection[str]) -> None:
        self._names = frozenset(tool_names)
        self._buf = ""
        self._started = False  # anything other than whitespace passed already

    def push(self, text: str) -> list[tuple[str, Any]]:
        self._buf += text
        return self._drain(final=False)

    def flush(self) -> list[tuple[str, Any]]:
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        while self._buf:
            if not self._started and _first_char(self._buf) in ("{", "[", ""):
                if not final:  # a bare JSON call can only be judged whole
                    break
                calls = self._calls(self._buf)
                if calls:
                    out.extend(("call", call) for call in calls)
                    self._buf = ""
                    break
                self._started = True  # not a call: scan it as ordinary text
            found = [(self._buf.find(m), m) for m in _MARKERS if m in self._buf]
            if not found:
                keep = 0 if final else _partial_marker_tail(self._buf)
                self._emit_text(out, self._buf[: len(self._buf) - keep])
                self._buf = self._buf[len(self._buf) - keep :]
                break
            at, marker = min(found)
            self._emit_text(out, self._buf[:at])
            self._buf = self._buf[at:]
            segment = self._segment(marker, final)
            if segment is None:
                break  # wait for more text
            end, maybe_call = segment
            if maybe_call:
                self._take(out, end)
            else:  # an ordinary code fence: pass its opening through as text
                self._emit_text(out, self._buf[:end])
                self._buf = self._buf[end:]
        return out

    def _segment(self, marker: str, final: bool) -> tuple[int, bool] | None:
        """(end, may be a call) of what starts at the head of the buffer; None: wait."""
        buf = self._buf
        if marker == "<tool_call>":
            close = buf.find("</tool_call>")
            if close >= 0:
                return close + len("</tool_call>"), True
            return (len(buf), True) if final else None
        if marker == "[TOOL_CALLS]":  # Mistral's calls run to the end of the answer
            return (len(buf), True) if final else None
        head = re.match(r"```[\w-]*\s*", buf)
        opening = head.end() if head else 3
        rest = buf[opening:]
        if not rest and not final:
            return None
        if rest[:1] not in ("{", "["):
            return opening, False
        close = buf.find("```", opening)
        if close >= 0:
            return close + 3, True
        return (len(buf), True) if final else None

    def _take(self, out: list[tuple[str, Any]], end: int) -> None:
        segment, self._buf = self._buf[:end], self._buf[end:]
        calls = self._calls(segment)
        if calls:
            self._started = True
            out.extend(("call", call) for call in calls)
        else:
            self._emit_text(out, segment)

    def _emit_text(self, out: list[tuple[str, Any]], text: str) -> None:
        if text:
            if text.strip():
                self._started = True
            if out and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + text)
            else:
                out.append(("text", text))

    def _calls(self, segment: str) -> list[tuple[str, dict[str, Any]]]:
        body = segment.strip()
        for prefix, suffix in (("<tool_call>", "</tool_call>"), ("[TOOL_CALLS]", "")):
            if body.startswith(prefix):
                body = body[len(prefix) :]
                if suffix and body.endswith(suffix):
                    body = body[: -len(suffix)]
        body = _FENCE.sub("", body).strip()
        mistral = _MISTRAL_V11.match(body)
        if mistral:  # [TOOL_CALLS]Name[ARGS]{...}
            args, problem = parse_tool_arguments(body[mistral.end() :])
            items: Any = [{"name": mistral.group(1), "arguments": args}] if not problem else []
        else:
            try:
                items = json.loads(body)
            except ValueError:
                return []
        items = items if isinstance(items, list) else [items]
        calls = []
        for item in items:
            call = _call_from_json(item)
            if call is None or call[0] not in self._names:
                return []  # all or nothing: a half-recognized answer stays text
            calls.append(call)
        return calls


def _call_from_json(item: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or not set(item) <= _CALL_KEYS:
        return None  # other keys: ordinary JSON that happens to have a "name"
    raw = next((item[k] for k in ("arguments", "parameters", "input") if k in item), None)
    args, problem = parse_tool_arguments(raw)
    return None if problem else (name, args)


def _first_char(text: str) -> str:
    """The first non-blank character ("" if none), without copying a long buffer."""
    match = _NON_BLANK.search(text)
    return match.group() if match else ""


def _partial_marker_tail(text: str) -> int:
    """How many trailing characters could be the start of a marker (to hold back)."""
    for size in range(min(len(text), max(map(len, _MARKERS)) - 1), 0, -1):
        if any(m.startswith(text[-size:]) for m in _MARKERS):
            return size
    return 0


# --- non-streaming response ---------------------------------------------------------------


def openai_to_anthropic_response(
    data: dict[str, Any],
    requested_model: str,
    *,
    thinking: bool = False,
    tool_names: Collection[str] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """An Anthropic message for an OpenAI chat completion.

    `model` is the model the client asked for. `thinking=True` turns reasoning text into a
    thinking block (with an empty signature); by default it is dropped. `tool_names` turns
    on the fallback parser for tool calls written as text. Repaired or unusable tool
    arguments are described in `problems` (this module does no logging).

    An error object instead of a completion (HTTP 200 all the same) raises `ErrorAnswer`,
    carrying the error in Anthropic's shape as its `client_error`."""
    if data.get("error") and not data.get("choices"):
        raw = json.dumps(data)
        status, body = openai_error_to_anthropic(200, raw)
        raise ErrorAnswer(
            body["error"]["message"],
            client_error=(status, json.dumps(body).encode()),
            upstream_body=raw.encode(),
        )
    choices = data.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = reasoning_text(message)
    if thinking and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = _message_text(message.get("content"))
    calls: list[tuple[Any, str, Any]] = []
    if tool_names and text and not message.get("tool_calls"):
        scanner = TextToolCallScanner(tool_names)
        items = scanner.push(text) + scanner.flush()
        text = "".join(value for kind, value in items if kind == "text").strip()
        calls = [
            (None, name, args) for kind, (name, args) in ((k, v) for k, v in items if k == "call")
        ]
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        calls.append((call.get("id"), function.get("name", ""), function.get("arguments")))
    seen: set[str] = set()
    for ident, name, raw in calls:
        args, problem = parse_tool_arguments(raw)
        if problem and problems is not None:
            problems.append(f"{name}: {problem}")
        content.append(
            {"type": "tool_use", "id": tool_id(ident, seen), "name": name, "input": args}
        )
    usage = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        **usage_counts(data.get("usage")),
    }
    reason = stop_reason(choice.get("finish_reason"), bool(calls))
    stop_sequence = None
    if isinstance(choice.get("stop_reason"), str) and reason == "end_turn":
        reason, stop_sequence = "stop_sequence", choice["stop_reason"]  # vLLM names the match
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def _message_text(content: Any) -> str:
    if isinstance(content, list):  # a few servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


# --- errors -------------------------------------------------------------------------------

# Anthropic's error type for each HTTP status (the proxy's own errors use the same table).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_SECRETS = (
    (re.compile(r"\b(sk-[A-Za-z]*-?)[A-Za-z0-9_\-]{6,}"), r"\1***"),
    (re.compile(r"(Bearer\s+)[^\s\"',;]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+", re.IGNORECASE), r"\1***"),
)
_CONTEXT_TOO_LONG = re.compile(
    r"context (length|size|window)|maximum context|too many tokens|prompt is too long",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def openai_error_to_anthropic(status: int, body: bytes | str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, Anthropic error body) for an upstream error (OpenAI's `{"error": {...}}`,
    Ollama's `{"error": "..."}`, or any text). Keys in the upstream text are masked. A 503 is
    answered as Anthropic's 529 (overloaded, which Claude Code retries); other 4xx become 400,
    other 5xx keep their status as api_error. Context-overflow messages are reworded to start
    with Anthropic's "prompt is too long", which Claude Code's auto-compaction looks for."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    error: Any = None
    try:
        error = json.loads(text)
    except ValueError:
        pass
    if isinstance(error, dict):
        error = error.get("error", error)
    message, detail = _error_message(error, text)
    if status == 200 or status < 400:
        status = _status_from_code(detail) or 500
    if status == 503:
        status = 529
    kind = ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")
    if status >= 400 and status < 500 and status not in ERROR_TYPES:
        status = 400
    if kind == "invalid_request_error" and _CONTEXT_TOO_LONG.search(message):
        message = _too_long(message, detail)
    message = mask_secrets(message or f"upstream returned HTTP {status}")[:2000]
    return status, {"type": "error", "error": {"type": kind, "message": message}}


def _error_message(error: Any, text: str) -> tuple[str, dict[str, Any]]:
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or error.get("error")
        return str(message or json.dumps(error)), error
    if isinstance(error, str):
        return error, {}
    return text.strip()[:2000], {}


def _status_from_code(detail: dict[str, Any]) -> int | None:
    code = detail.get("code")
    return code if isinstance(code, int) and 400 <= code < 600 else None


def _too_long(message: str, detail: dict[str, Any]) -> str:
    if message.lower().startswith("prompt is too long"):
        return message
    tokens, limit = detail.get("n_prompt_tokens"), detail.get("n_ctx")  # llama.cpp's fields
    if isinstance(tokens, int) and isinstance(limit, int):
        return f"prompt is too long: {tokens} tokens > {limit} maximum ({message})"
    return f"prompt is too long: {message}"
