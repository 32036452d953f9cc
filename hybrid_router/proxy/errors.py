"""Errors in Anthropic's shape, which the Anthropic SDKs (and so Claude Code) understand."""

from __future__ import annotations

import json
import secrets

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
    504: "api_error",
    529: "overloaded_error",
}


def request_id() -> str:
    return "req_" + secrets.token_hex(12)


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(status: int, message: str, rid: str, error_type: str | None = None) -> bytes:
    return json.dumps({
        "type": "error",
        "error": {"type": error_type or error_type_for(status), "message": message},
        "request_id": rid,
    }).encode()


def error_event(message: str, error_type: str = "api_error") -> bytes:
    """An SSE `error` event: how a stream that already started reports a failure."""
    data = json.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return f"event: error\ndata: {data}\n\n".encode()


PING_EVENT = b'event: ping\ndata: {"type": "ping"}\n\n'
