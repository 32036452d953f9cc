"""Anthropic Messages <-> Ollama's native `/api/chat`, by way of the OpenAI translation.

Why native: Ollama runs a request with the context window the request sets (`options.num_ctx`)
and otherwise with its server default (`OLLAMA_CONTEXT_LENGTH`, 4096 tokens below 24 GiB of
VRAM), silently dropping the oldest tokens of a longer prompt. Its OpenAI- and Anthropic-style
endpoints (`/v1/...`) cannot set the window; `/api/chat` can. The proxy sends every request with
the tier's window (one fixed value per tier, so Ollama never reloads the model between requests)
and caps the answer to the room the window leaves (`options.num_predict`).

The request is first translated to OpenAI chat completions (request.py: system blocks, tools,
tool calls and results, images, the pitfalls), then reshaped into Ollama's dialect of it:
- content parts become one `content` string plus `images` (base64, no data-URL prefix);
- tool-call arguments become objects (the native API takes objects, not JSON strings);
- tool results carry the called tool's name (`tool_name`), which Ollama's templates read;
- sampling settings, the answer cap and the window go under `options`; `response_format` with a
  JSON schema becomes `format`.
A streamed answer is read by the NDJSON dialect (ollama_ndjson.py); a whole one is reshaped into
a chat completion and read by the OpenAI response translation (response.py), so reasoning
(`thinking`) is dropped the same way: a thinking block without Anthropic's signature would make
Anthropic refuse the conversation when a later turn goes there.
"""

from __future__ import annotations

import json
from typing import Any

# OpenAI request fields that become Ollama `options`.
_OPTION_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop": "stop"}


def openai_to_ollama_chat(
    payload: dict[str, Any], *, num_ctx: int, num_predict: int
) -> dict[str, Any]:
    """An Ollama `/api/chat` body for an OpenAI chat-completions `payload` (see the docstring)."""
    names: dict[str, str] = {}  # tool-call id -> tool name, for the tool results that follow
    messages = [_message(m, names) for m in payload.get("messages", []) if isinstance(m, dict)]
    options: dict[str, Any] = {"num_ctx": num_ctx, "num_predict": num_predict}
    for source, target in _OPTION_FIELDS.items():
        if payload.get(source) is not None:
            options[target] = payload[source]
    body: dict[str, Any] = {
        "model": payload["model"],
        "messages": messages,
        "stream": bool(payload.get("stream")),
        "options": options,
    }
    if payload.get("tools"):
        body["tools"] = payload["tools"]
    response_format = payload.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        body["format"] = schema if isinstance(schema, dict) else "json"
    return body


def _message(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    role = message.get("role")
    out: dict[str, Any] = {"role": role}
    content = message.get("content")
    if isinstance(content, list):
        texts: list[str] = []
        images: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                if isinstance(url, str) and url.startswith("data:") and "," in url:
                    images.append(url.split(",", 1)[1])
        out["content"] = "\n\n".join(texts)
        if images:
            out["images"] = images
    else:
        out["content"] = content if isinstance(content, str) else ""
    calls = message.get("tool_calls")
    if role == "assistant" and isinstance(calls, list) and calls:
        out["tool_calls"] = []
        for call in calls:
            function = call.get("function") or {}
            name = function.get("name") or ""
            if call.get("id"):
                names[call["id"]] = name
            out["tool_calls"].append(
                {"function": {"name": name, "arguments": _arguments(function)}}
            )
    if role == "tool":
        name = names.get(message.get("tool_call_id") or "")
        if name:
            out["tool_name"] = name
    return out


def _arguments(function: dict[str, Any]) -> dict[str, Any]:
    raw = function.get("arguments")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def ollama_to_openai_response(data: dict[str, Any]) -> dict[str, Any]:
    """A whole `/api/chat` answer as the chat completion it amounts to (an error object stays
    an error object, which the response translation raises as `ErrorAnswer`)."""
    if "error" in data:
        error = data["error"]
        return {"error": error if isinstance(error, dict) else {"message": str(error)}}
    found = data.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    calls = [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {
                "name": (call.get("function") or {}).get("name") or "",
                "arguments": (call.get("function") or {}).get("arguments"),
            },
        }
        for call in message.get("tool_calls") or []
        if isinstance(call, dict)
    ]
    completion_message: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("thinking"):
        completion_message["reasoning"] = message["thinking"]
    if calls:
        completion_message["tool_calls"] = calls
    return {
        "choices": [
            {"index": 0, "message": completion_message, "finish_reason": data.get("done_reason")}
        ],
        "usage": {
            "prompt_tokens": int(data.get("prompt_eval_count") or 0),
            "completion_tokens": int(data.get("eval_count") or 0),
        },
    }
