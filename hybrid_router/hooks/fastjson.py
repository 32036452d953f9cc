"""JSON in and out without importing `json`.

`json` imports `re` (and `re` imports `enum`), about 10 ms for a hook on these machines. The C
accelerator `_json`, which `json` itself uses, parses and quotes strings on its own; `json` is
imported only on the error path (to raise its exception, with its message and position) or
where `_json` is missing.

Both functions behave as `json.loads` / `json.dumps` with their defaults (tests/test_fastjson.py
checks them against `json`), with two differences:

- `dumps` writes NaN and the infinities as `null`, as the proxy's JSON writer does: `json`
  writes `NaN` / `Infinity`, which are not JSON. (`loads` still reads those, as `json` does.)
- a container that contains itself is a `RecursionError` here (`json`: ValueError), as is
  nesting deeper than the recursion limit in both (about 1000 levels).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# JSON's whitespace. `str.strip()` with no argument would also take \f, \v, NBSP and others,
# which `json` refuses around a document.
_WHITESPACE = " \t\n\r"
_INFINITY = float("inf")


class _ScannerContext:
    """The attributes `_json.make_scanner` reads, with `json.loads`' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(
        {"NaN": float("nan"), "Infinity": _INFINITY, "-Infinity": -_INFINITY}.__getitem__
    )


_scan: Callable[[str, int], tuple[Any, int]] | None
_quote: Callable[[str], str]
try:
    import _json
except ImportError:  # pragma: no cover - interpreters without the accelerator
    _scan = None

    def _quote(text: str) -> str:
        import json

        return json.dumps(text)

else:
    # typeshed types the context as `make_scanner` itself; the scanner only reads the attributes.
    _scan = _json.make_scanner(_ScannerContext())  # type: ignore[arg-type]
    _quote = _json.encode_basestring_ascii


def loads(text: str | bytes | bytearray) -> Any:
    """Parse one JSON document (surrounding JSON whitespace allowed), like `json.loads`.

    Raises what `json.loads` raises: `json.JSONDecodeError` (a ValueError) for invalid text,
    ValueError for an integer beyond `sys.get_int_max_str_digits()`, RecursionError for nesting
    deeper than the recursion limit, TypeError for what is not text.
    """
    if _scan is None or not isinstance(text, str):  # bytes are decoded (or refused) by json
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        end = -1  # no value at `start`
    if end < 0 or (end < len(text) and text[end:].strip(_WHITESPACE)):
        import json

        return json.loads(text)  # raises the usual JSONDecodeError, with its position
    return value


def dumps(value: Any) -> str:
    """Serialize like `json.dumps(value)` with its defaults (ASCII, `", "` and `": "`), except
    that NaN and the infinities become `null`."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, parts: list[str]) -> None:
    # One Python frame per level of nesting (json's C encoder uses about one, too).
    if isinstance(value, str):
        parts.append(_quote(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))  # a subclass's own repr is not JSON (IntEnum)
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, dict):
        parts.append("{")
        first = True
        for key, item in value.items():
            if not first:
                parts.append(", ")
            first = False
            parts.append(_quote(_key(key)))
            parts.append(": ")
            _write(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        first = True
        for item in value:
            if not first:
                parts.append(", ")
            first = False
            _write(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _float(value: float) -> str:
    if value != value or value == _INFINITY or value == -_INFINITY:
        return "null"  # NaN and the infinities are not JSON
    return float.__repr__(value)


def _key(key: Any) -> str:
    """An object key as `json.dumps` writes it: a string, or a scalar converted to one."""
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        # As `json` does: a key is a string, so "NaN" / "Infinity" are valid JSON here.
        if key != key:
            return "NaN"
        if key == _INFINITY:
            return "Infinity"
        if key == -_INFINITY:
            return "-Infinity"
        return float.__repr__(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
