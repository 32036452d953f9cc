"""Errors in Anthropic's shape, which the Anthropic SDKs (and so Claude Code) understand."""

from __future__ import annotations

import json
import secrets

from ..providers.translate.response import ERROR_TYPES


def request_id() -> str:
    return "req_" + secrets.token_hex(12)


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(status: int, message: str, rid: str, error_type: str | None = None) -> bytes:
    return json.dumps(
        {
            "type": "error",
            "error": {"type": error_type or error_type_for(status), "message": message},
            "request_id": rid,
        }
    ).encode()


def error_event(message: str, error_type: str = "api_error") -> bytes:
    """An SSE `error` event: how a stream that already started reports a failure."""
    data = json.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return f"event: error\ndata: {data}\n\n".encode()


PING_EVENT = b'event: ping\ndata: {"type": "ping"}\n\n'
