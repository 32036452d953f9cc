"""Config `patterns` (regular expressions, Python syntax) matched with a time limit per text.

Python's `re` has no time limit: a pattern that backtracks (`(a|aa)+$`) can take minutes on a
short prompt and hang the proxy or the hook. Patterns are matched by the `regex` package instead
(the same syntax, as `regex.V0`), which stops a match after PATTERN_TIMEOUT_SECONDS. The core
imports only the standard library, so the surface hands the engine in (`use_engine`, with a
function that imports `regex`): it is imported only when a pattern is first evaluated, so a
config without patterns never pays for it.

A pattern that cannot be used — it does not compile, or it ran out of time — is skipped, with
one line on stderr the first time; `config check` refuses both (see `problem`).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType
    from typing import Any

PATTERN_TIMEOUT_SECONDS = 0.05
# What `problem` matches a pattern against: runs of one character, or of two of the pattern's
# own, and a character that ends them: the texts on which a backtracking pattern takes longest.
_PROBE_LENGTH = 40
_PROBE_CHARACTERS = 8
_PROBE_ENDINGS = ("!", "\n", " ")

_engine: Callable[[], ModuleType] | None = None
_compiled: dict[str, Any] = {}  # source -> compiled pattern, or None when it cannot be used
_warned: set[str] = set()


def use_engine(load: Callable[[], ModuleType]) -> None:
    """Match patterns with the module `load()` returns (the `regex` package), loaded on first
    use. Without an engine, patterns are skipped (never matched with a module that can hang)."""
    global _engine
    _engine = load


def compile_pattern(module: ModuleType, source: str) -> Any:
    """`source` compiled as routing matches it: case-insensitive, Python (`re`) syntax."""
    return module.compile(source, module.IGNORECASE | module.V0)


def problem(module: ModuleType, source: str) -> str | None:
    """Why `source` cannot be used as a pattern (for `config check`), or None: it does not
    compile, or it runs out of time on a short text (it backtracks)."""
    try:
        compiled = compile_pattern(module, source)
    except module.error as exc:
        return f"expected a regular expression; {exc}"
    literal = sorted({c.lower() for c in source if c.isalnum()})[:_PROBE_CHARACTERS]
    units = {c for c in [*literal, "a", "0", " ", "x"]}
    units |= {first + second for first in literal for second in literal if first != second}
    for unit in sorted(units):
        for ending in _PROBE_ENDINGS:
            probe = unit * (_PROBE_LENGTH // len(unit)) + ending
            try:
                for _ in compiled.finditer(probe, timeout=PATTERN_TIMEOUT_SECONDS):
                    pass
            except TimeoutError:
                return (
                    f"took more than {PATTERN_TIMEOUT_SECONDS * 1000:g} ms on a "
                    f"{len(probe)}-character text ({probe!r}): it backtracks (a repetition "
                    "inside a repetition, as in (a|aa)+ or (a+)+); rewrite it"
                )
    return None


def matches(source: str, text: str) -> Iterator[tuple[tuple[int, int], str]]:
    """(span, matched text) of each match of the pattern `source` in `text`, left to right;
    nothing for a pattern that cannot be used, or from where it ran out of time."""
    compiled = _compiled.get(source, False)
    if compiled is False:
        compiled = _compiled[source] = _compile(source)
    if compiled is None:
        return
    try:
        for found in compiled.finditer(text, timeout=PATTERN_TIMEOUT_SECONDS):
            yield found.span(), found.group(0)
    except TimeoutError:
        _compiled[source] = None  # skipped from now on
        _warn(
            source,
            f"took more than {PATTERN_TIMEOUT_SECONDS * 1000:g} ms on a prompt of "
            f"{len(text):,} characters; it is skipped from now on (`hybrid-router config "
            "check` says why)",
        )


def _compile(source: str) -> Any:
    if _engine is None:
        _warn(source, "no pattern engine is installed; it is skipped")
        return None
    try:
        module = _engine()
    except ImportError as exc:
        _warn(source, f"the `regex` package cannot be imported ({exc}); it is skipped")
        return None
    try:
        return compile_pattern(module, source)
    except module.error as exc:
        _warn(source, f"is not a regular expression ({exc}); it is skipped")
        return None


def _warn(source: str, what: str) -> None:
    if source in _warned:
        return
    _warned.add(source)
    shown = source if len(source) <= 80 else source[:77] + "..."
    sys.stderr.write(f"hybrid-router: routing pattern {shown!r} {what}\n")
