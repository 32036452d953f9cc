"""Reading a Messages request body: every malformed or hostile body is a clear 400, never a 5xx."""

from __future__ import annotations

import gc
import json
from typing import Any

import orjson

ROLES = ("user", "assistant", "system")
# How deep a body may nest. orjson reads 1,024 levels but writes only 254, and the standard
# library's reader and writer recurse (about 1,000 levels, fewer inside a handler): a body
# deeper than what the proxy can write back out is refused before anything reads it.
MAX_DEPTH = 254
TOO_DEEP = f"the request body is nested more than {MAX_DEPTH} levels deep"
# Bodies past this size are checked for depth by a walk of at most WALK_BUDGET values (about
# 6 ms), rather than written out again (about 1 ms a megabyte), and parsed without the cyclic
# collector past LARGE_BYTES.
WALK_FROM_BYTES = 8 << 20
WALK_BUDGET = 20_000
LARGE_BYTES = 1 << 20


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_json(raw: bytes) -> Any:
    """The body as JSON, nested at most MAX_DEPTH levels; BadRequest for anything else."""
    try:
        body = _loads(raw)  # the common case, several times faster than `json`
    except orjson.JSONDecodeError:
        body = _parse_with_json(raw)
        if _deeper_than(body, MAX_DEPTH):
            raise BadRequest(TOO_DEEP) from None
        return body
    if isinstance(body, (dict, list)):
        # orjson's writer costs per byte (and writes at most 254 levels): a few microseconds
        # for a Claude Code body, but 20 ms for a 20 MB prompt, which a walk (per container:
        # a few dozen) checks at once.
        deep = _deeper_than(body, MAX_DEPTH, WALK_BUDGET) if len(raw) > WALK_FROM_BYTES else None
        if deep is None:
            try:
                orjson.dumps(body)
            except TypeError:  # orjson.JSONEncodeError: what orjson read it writes, but for depth
                deep = True
        if deep:
            raise BadRequest(TOO_DEEP)
    return body


def _loads(raw: bytes) -> Any:
    """orjson's parse; for a large body, without the cyclic collector, which would otherwise
    run again and again while the containers it creates pile up (three times the parse, for
    a body of millions of tiny arrays). Nothing a parse creates is a cycle."""
    if len(raw) < LARGE_BYTES or not gc.isenabled():
        return orjson.loads(raw)
    gc.disable()
    try:
        return orjson.loads(raw)
    finally:
        gc.enable()


def parse_messages_body(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    check_messages_body(body)
    return body


def _parse_with_json(raw: bytes) -> Any:
    """What orjson refused: `json` accepts a little more (NaN, lone surrogates, integers beyond
    64 bits) and words its errors with line and column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None
    except ValueError:  # an integer beyond sys.get_int_max_str_digits() (4,300 digits)
        raise BadRequest("the request body holds a number too long to read") from None
    return body


def _deeper_than(value: Any, limit: int, budget: int | None = None) -> bool | None:
    """Whether `value` nests more than `limit` containers deep (without recursing); None when
    it holds more than `budget` values in containers (the walk stops there)."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    visited = 0
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        visited += len(children)
        if budget is not None and visited > budget:
            return None
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _check_block(block: Any, where: str) -> None:
    """The shape of one content block, deep enough that no upstream translation trips on it."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise BadRequest(f"{where}: a block with a string `type` is required")
    kind = block["type"]
    if kind == "text" and not isinstance(block.get("text"), str):
        raise BadRequest(f"{where}.text: a string is required")
    if kind in ("image", "document"):
        source = block.get("source")
        if not isinstance(source, dict):
            raise BadRequest(f"{where}.source: an object is required")
        if "data" in source and not isinstance(source["data"], str):
            raise BadRequest(f"{where}.source.data: a string is required")
    if kind == "tool_use" and (
        not isinstance(block.get("name"), str) or not isinstance(block.get("input", {}), dict)
    ):
        raise BadRequest(f"{where}: a tool_use block needs a string `name` and an object `input`")
    if kind == "tool_result":
        content = block.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise BadRequest(f"{where}.content: a string or an array of blocks is required")
        if isinstance(content, list):
            for inner, item in enumerate(content):
                _check_block(item, f"{where}.content.{inner}")


def check_messages_body(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("model: a non-empty string is required")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("max_tokens: a positive integer is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: a non-empty array is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages.{index}: an object is required")
        if message.get("role") not in ROLES:
            raise BadRequest(f"messages.{index}.role: expected one of user, assistant, system")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise BadRequest(
                f"messages.{index}.content: a string or an array of blocks is required"
            )
        if isinstance(content, list):
            for block_index, block in enumerate(content):
                _check_block(block, f"messages.{index}.content.{block_index}")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise BadRequest("system: a string or an array of text blocks is required")
    if isinstance(system, list):
        for index, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                raise BadRequest(f"system.{index}: a text block with a string `text` is required")
    for key in ("output_config", "thinking", "metadata", "tool_choice"):
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            raise BadRequest(f"{key}: an object is required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("stream: a boolean is required")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadRequest("tools: an array is required")
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise BadRequest(f"tools.{index}: an object with a string `name` is required")
            if "type" in tool and not isinstance(tool["type"], str):
                raise BadRequest(f"tools.{index}.type: a string is required")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise BadRequest("stop_sequences: an array of strings is required")
    metadata = body.get("metadata")
    if (
        isinstance(metadata, dict)
        and metadata.get("user_id") is not None
        and not isinstance(metadata["user_id"], str)
    ):
        raise BadRequest("metadata.user_id: a string is required")
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BadRequest(f"{key}: a number is required")
