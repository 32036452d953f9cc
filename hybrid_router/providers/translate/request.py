"""Anthropic Messages request -> OpenAI Chat Completions request (see translate/__init__.py for the
documented choices). Pure and stdlib-only: it runs on every proxied request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import Untranslatable

# Keys of an Anthropic tool definition that OpenAI servers do not know (some reject them).
_ANTHROPIC_TOOL_KEYS = frozenset(
    {"cache_control", "defer_loading", "strict", "input_examples", "eager_input_streaming"}
)
# JSON-Schema keys whose values are maps of *names* (property names), not of keywords: a
# property that happens to be called "format" must survive the stripping of the keyword.
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
SYSTEM_MESSAGE_MODES = ("merge", "keep")


class TranslationError(Untranslatable):
    """The request uses something the OpenAI protocol cannot express (the next backend may be
    Anthropic, which can)."""


def anthropic_to_openai_request(
    body: dict[str, Any],
    model: str,
    *,
    system_messages: str = "merge",
    strip_schema_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """The OpenAI `/chat/completions` body for an Anthropic `/v1/messages` body.

    `system_messages`: "merge" (default) appends the text of `role: "system"` messages found
    inside `messages` to the one leading system message; "keep" leaves them where they are.
    `strip_schema_keys`: JSON-Schema keywords to remove from tool schemas besides `$schema`
    (for providers that reject e.g. `format`).
    """
    if system_messages not in SYSTEM_MESSAGE_MODES:
        raise ValueError(f"system_messages must be one of {SYSTEM_MESSAGE_MODES}")
    system_parts = _system_texts(body.get("system"))
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        if role == "system":
            text = _join_text(message.get("content"))
            if system_messages == "merge":
                system_parts.append(text)
            else:
                messages.append({"role": "system", "content": text})
        elif role == "assistant":
            messages.append(_assistant_message(message.get("content")))
        else:
            messages.extend(_user_messages(message.get("content")))
    system_parts = [part for part in system_parts if part]
    if system_parts:
        messages.insert(0, {"role": "system", "content": "\n\n".join(system_parts)})

    out: dict[str, Any] = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    # Anthropic's temperature range (0-1) lies inside OpenAI's (0-2): pass it through, unscaled.
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    drop = {"$schema", *strip_schema_keys}
    tools = _tools(body.get("tools") or [], drop)
    if tools:
        out["tools"] = tools
        out.update(_tool_choice(body.get("tool_choice")))
    response_format = _response_format(body, drop)
    if response_format:
        out["response_format"] = response_format
    return out


# --- system -------------------------------------------------------------------------------


def _system_texts(system: Any) -> list[str]:
    if isinstance(system, str):
        return [system]
    return [block.get("text", "") for block in system or [] if block.get("type") == "text"]


def _join_text(content: Any, sep: str = "\n\n") -> str:
    if isinstance(content, str):
        return content
    return sep.join(b.get("text", "") for b in content or [] if b.get("type") == "text")


# --- messages -----------------------------------------------------------------------------


def _assistant_message(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                    },
                }
            )
        # thinking / redacted_thinking: their signatures mean nothing to another provider.
        # Server-tool blocks (server_tool_use, web_search_tool_result, ...) cannot be replayed.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""  # a thinking-only turn: keep the user/assistant alternation
    return message


def _user_messages(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn -> `tool` messages first (OpenAI wants them right after the
    assistant's tool_calls), then one user message with the rest (pitfall 7)."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    result_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "tool_result":
            text, images = _tool_result(block)
            tool_messages.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
            result_images.extend(images)
        else:
            part = _user_part(block)
            if part is not None:
                parts.append(part)
    # Images returned by tools (screenshots, image Reads) travel in a user message after the
    # tool messages, since `tool` messages carry text only (pitfall 8).
    parts = result_images + parts
    out = tool_messages
    if parts:
        out.append({"role": "user", "content": _user_content(parts)})
    return out


def _user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # Text-only content as a plain string: the form every chat template accepts.
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _user_part(block: dict[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        return _image_part(block)
    if kind == "document":
        return {"type": "text", "text": _document_text(block)}
    return None  # other block kinds (server-tool results, ...) mean nothing upstream


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "url":
        url = source.get("url", "")  # note: Ollama's /v1 accepts base64 images only
    else:
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document_text(block: dict[str, Any]) -> str:
    source = block.get("source") or {}
    title = block.get("title")
    if source.get("type") == "text":
        head = f"Document: {title}\n" if title else ""
        data: str = source.get("data", "")
        return head + data
    if source.get("type") == "content":
        return _join_text(source.get("content"))
    # A PDF (base64 or URL) cannot be read by a chat-completions model: say so, visibly.
    what = source.get("media_type") or source.get("type") or "document"
    return f"[{what} {title or 'document'} omitted: this model cannot read it]"


def _tool_result(block: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The text of a tool_result (arrays flattened) and any image parts it carries."""
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        texts: list[str] = []
        for item in content:
            kind = item.get("type")
            if kind == "text":
                texts.append(item.get("text", ""))
            elif kind == "image":
                images.append(_image_part(item))
                texts.append(f"[image {len(images)} is attached in the next user message]")
            elif kind == "search_result":
                texts.append(
                    f"{item.get('title', '')} ({item.get('source', '')})\n"
                    + _join_text(item.get("content"))
                )
            elif kind == "document":
                texts.append(_document_text(item))
        text = "\n".join(texts)
    if block.get("is_error"):
        # OpenAI has no error flag on tool messages: say it in the text.
        text = f"Error: {text}" if text else "Error"
    return text, images


# --- tools --------------------------------------------------------------------------------


def _tools(tools: list[dict[str, Any]], drop: set[str]) -> list[dict[str, Any]]:
    server = [f"{t.get('name', '?')} ({t.get('type')})" for t in tools if _is_server_tool(t)]
    if server:
        # Their schema and execution live at Anthropic (web_search, code_execution, bash_...).
        raise TranslationError(
            "Anthropic server tools cannot be sent to a non-Anthropic model: " + ", ".join(server)
        )
    out = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.get("name", "")}
        if tool.get("description"):
            function["description"] = tool["description"]
        schema = tool.get("input_schema") or {"type": "object", "properties": {}}
        function["parameters"] = _clean_schema(schema, drop)
        out.append({"type": "function", "function": function})
    # Anthropic-only keys (_ANTHROPIC_TOOL_KEYS) are simply not copied.
    return out


def _is_server_tool(tool: dict[str, Any]) -> bool:
    """Server tools (web_search_20250305, code_execution_..., ...) have a versioned `type` and
    no input_schema; custom tools have no type or `type: "custom"`."""
    return tool.get("type") not in (None, "custom") and "input_schema" not in tool


def _clean_schema(schema: Any, drop: set[str]) -> Any:
    """A copy of a JSON Schema without the keywords in `drop` (pitfall 9)."""
    if isinstance(schema, list):
        return [_clean_schema(item, drop) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in drop:
            continue
        if key in _NAME_MAPS and isinstance(value, dict):
            out[key] = {name: _clean_schema(sub, drop) for name, sub in value.items()}
        else:
            out[key] = _clean_schema(value, drop)
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not isinstance(choice, dict):
        return {}
    out: dict[str, Any] = {}
    kind = choice.get("type")
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    elif kind in _TOOL_CHOICE:
        out["tool_choice"] = _TOOL_CHOICE[kind]
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _response_format(body: dict[str, Any], drop: set[str]) -> dict[str, Any] | None:
    """Structured output: `output_config.format` (or the older beta `output_format`)."""
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = _clean_schema(fmt.get("schema") or {}, drop)
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
