"""Values from the log (or from a server) as a terminal may show them.

Model names (the Anthropic route keeps the client's), session ids, reasons and the names a
backend reports come from outside: printed raw, an escape sequence in one could retitle the
terminal, clear the screen or hide text. Every human-readable view prints them through `shown`,
which writes control characters as visible escapes; JSON output stays exact.
"""

from __future__ import annotations

# C0 controls, DEL and the C1 controls (a terminal takes 0x9b as CSI), each as a visible escape.
_ESCAPES = {code: ("\\x%02x" % code) for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def shown(value: object) -> str:
    """`value` as text with every control character escaped (`\\x1b`), on one line."""
    text = value if isinstance(value, str) else str(value)
    return text.translate(_ESCAPES)
