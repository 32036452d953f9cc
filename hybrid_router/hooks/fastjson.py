"""JSON in and out without importing `json`.

`json` imports `re` (and `re` imports `enum`), about 10 ms for a hook on these machines. The C
accelerator `_json`, which `json` itself uses, parses and quotes strings on its own; `json` is
imported only on the error path (its exception class) or where `_json` is missing.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - interpreters without the accelerator
    _json = None

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _ScannerContext:
    """The attributes `_json.make_scanner` reads, with `json.loads`' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(
        {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__
    )


_scan = _json.make_scanner(_ScannerContext()) if _json is not None else None


def loads(text: str) -> Any:
    """Parse one JSON document (surrounding whitespace allowed), like `json.loads`."""
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        import json

        return json.loads(text)  # raises the usual JSONDecodeError, with position
    if text[end:].strip():
        import json

        return json.loads(text)
    return value


def dumps(value: Any) -> str:
    """Serialize dicts, lists, strings, numbers, booleans and None (all a hook ever prints)."""
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value) if _json is not None else _slow_dumps(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _slow_dumps(value: str) -> str:  # pragma: no cover
    import json

    return json.dumps(value)
