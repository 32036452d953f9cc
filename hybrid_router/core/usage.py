"""Tokens a model call used: what pricing, the log and the stats count."""

from __future__ import annotations

from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Anthropic's `usage` keys -> our field names. Anthropic counts cached input apart from
# `input_tokens`: reads from the cache and writes to it are priced differently.
_ANTHROPIC_USAGE_KEYS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("cache_creation_input_tokens", "cache_write_tokens"),
)


class Usage(Record):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def absorb(self, usage: Any) -> None:
        """Take the counts an Anthropic `usage` object carries (later events refine earlier
        ones: a stream's `message_delta` has the final output count)."""
        if not isinstance(usage, dict):
            return
        for source, target in _ANTHROPIC_USAGE_KEYS:
            value = usage.get(source)
            if isinstance(value, int) and value > 0:
                object.__setattr__(self, target, value)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )
