"""JSON for the proxy's hot path: orjson's speed with the standard library's leniency.

An 80 KB Claude Code request parses about three times faster with orjson than with `json`, and
that parse happens on every proxied request. orjson is stricter than `json` (it refuses NaN,
lone surrogates and integers beyond 64 bits), so anything it refuses is read again by `json`:
what `json` accepted before is still accepted, and `json`'s error message (line, column) is the
one a client sees.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse like `json.loads` (same results, same `JSONDecodeError` / `RecursionError`)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON bytes. NaN and infinities become null (they are not JSON)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        # What orjson will not write: integers beyond 64 bits, lone surrogates (which `json`
        # escapes as \udXXX, so the bytes are still valid UTF-8).
        return json.dumps(value).encode()
