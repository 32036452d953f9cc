"""Keyword and phrase matching on words, not substrings.

Syntax of a keyword (case-insensitive):
- a word or a phrase: `read`, `where is`, `sql injection` — whole words only, so `read` does not
  hit "already" or "thread"; the words of a phrase may be separated by any whitespace;
- a trailing `*` on the last word matches any ending: `refactor*` hits "refactoring" and
  "refactored", `vulnerab*` hits "vulnerable" and "vulnerability".

Exclusions use the same syntax. A keyword occurrence that lies inside an occurrence of an
exclusion does not count: with the exclusion `open source`, "open the file" is a hit for `open`
and "an open source library" is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


def _term_regex(term: str) -> str:
    term = term.strip().lower()
    prefix = term.endswith("*")
    if prefix:
        term = term[:-1].rstrip()
    words = [re.escape(word) for word in term.split()]
    body = r"\s+".join(words)
    # Lookarounds instead of \b so that terms starting or ending in punctuation (".env", "c++")
    # still need a clean edge.
    return r"(?<!\w)" + body + (r"[\w-]*" if prefix else r"(?!\w)")


@dataclass(frozen=True)
class TermMatcher:
    """A compiled set of keywords plus exclusions; `hits(text)` lists the keywords found."""

    keywords: tuple[str, ...]
    exclusions: tuple[str, ...]
    _pattern: re.Pattern[str] | None
    _exclusion_pattern: re.Pattern[str] | None

    def excluded_spans(self, lowered_text: str) -> list[tuple[int, int]]:
        if self._exclusion_pattern is None:
            return []
        return [match.span() for match in self._exclusion_pattern.finditer(lowered_text)]

    def hits(self, lowered_text: str, excluded: list[tuple[int, int]] | None = None) -> list[str]:
        """Distinct matched phrases, in order of first appearance. Expects lower-cased text."""
        if self._pattern is None:
            return []
        if excluded is None:
            excluded = self.excluded_spans(lowered_text)
        found: list[str] = []
        for match in self._pattern.finditer(lowered_text):
            if overlaps(match.span(), excluded):
                continue
            phrase = " ".join(match.group(0).split())
            if phrase not in found:
                found.append(phrase)
        return found


def overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    start, end = span
    return any(start < other_end and other_start < end for other_start, other_end in spans)


def _alternation(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    if not terms:
        return None
    # Longest first so that a phrase wins over a word it starts with ("where is" over "where").
    ordered = sorted(terms, key=lambda term: len(term), reverse=True)
    return re.compile("|".join(_term_regex(term) for term in ordered))


@lru_cache(maxsize=256)
def compile_terms(keywords: tuple[str, ...], exclusions: tuple[str, ...] = ()) -> TermMatcher:
    return TermMatcher(keywords, exclusions, _alternation(keywords), _alternation(exclusions))


@lru_cache(maxsize=256)
def compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)
