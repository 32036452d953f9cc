"""How demanding a prompt looks: low, medium or high, from cheap textual evidence.

The heuristic adds points (documented in the README, tested on examples):
- length: 25+ words 1 point, 80+ words 2, 250+ words 3;
- steps: each distinct sequencing marker ("then", "after that", "also", "finally", "next") and
  each list item line ("- ", "* ", "1.") counts; 1-2 markers 1 point, 3+ markers 2;
- scope: the whole codebase or many parts of it ("entire codebase", "across the project",
  "all files", "every module", "end-to-end") 1 point;
- hard topics: concurrency, distributed systems, migrations, performance, algorithms, security,
  design and architecture terms — 1 point each, at most 2;
- files: 3 or more file paths or file names mentioned, 1 point;
- code: a fenced code block of 30+ lines, 1 point;
- simplicity markers ("just", "quick", "simple", "small", "tiny", "one-line", "typo"): minus 1.

0-1 points is low, 2-3 medium, 4 or more high. A prompt with no text (a tool-result turn) is low.
"""

from __future__ import annotations

from .matching import Matcher, tokenize

LOW, MEDIUM, HIGH = "low", "medium", "high"

_STEP_MARKERS = Matcher.build(
    (
        "then",
        "after that",
        "afterwards",
        "also",
        "finally",
        "next",
        "and then",
        "step*",
        "as well as",
    )
)
_SCOPE = Matcher.build(
    (
        "entire codebase",
        "whole codebase",
        "entire project",
        "whole project",
        "entire repo",
        "whole repo",
        "across the codebase",
        "across the project",
        "across the repo",
        "across all",
        "all files",
        "every file",
        "every module",
        "all modules",
        "all services",
        "end-to-end",
        "end to end",
        "system-wide",
        "codebase-wide",
        "everywhere",
    )
)
_HARD_TOPICS = Matcher.build(
    (
        "concurren*",
        "race condition*",
        "deadlock*",
        "thread-safe",
        "thread safety",
        "async*",
        "distributed",
        "consensus",
        "replication",
        "migrat*",
        "schema change*",
        "performance",
        "optimi*",
        "latency",
        "throughput",
        "scalab*",
        "algorithm*",
        "complexity",
        "security",
        "vulnerab*",
        "architecture",
        "architectural",
        "design",
        "redesign",
        "trade-off*",
        "tradeoff*",
        "transaction*",
        "consistency",
        "cache invalidation",
        "memory leak*",
        "protocol",
        "backward compatib*",
        "refactor*",
    )
)
_SIMPLE = Matcher.build(
    (
        "just",
        "quick",
        "quickly",
        "simple",
        "small",
        "tiny",
        "one-line",
        "one line",
        "typo*",
        "trivial",
    )
)
_FENCE = "```"
_LIST_MARKS = ("-", "*", "•")


def _split_fences(text: str) -> tuple[str, list[str]]:
    """The prose outside fenced code blocks, and the blocks' bodies (an unclosed fence is prose)."""
    prose: list[str] = []
    blocks: list[str] = []
    rest = text
    while True:
        start = rest.find(_FENCE)
        if start < 0:
            break
        body_start = rest.find("\n", start)
        end = rest.find(_FENCE, body_start + 1) if body_start >= 0 else -1
        if end < 0:
            break
        prose.append(rest[:start])
        blocks.append(rest[body_start + 1 : end])
        rest = rest[end + len(_FENCE) :]
    prose.append(rest)
    return " ".join(prose), blocks


def _list_items(text: str) -> int:
    """Lines that start (after indentation) with -, *, • or "1." / "1)" and a space."""
    count = 0
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped:
            continue
        head, space, _ = stripped.replace("\t", " ").partition(" ")
        if not space:
            continue
        if head in _LIST_MARKS or (len(head) > 1 and head[:-1].isdigit() and head[-1] in ".)"):
            count += 1
    return count


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _file_name(chunk: str) -> str | None:
    """`chunk` (one whitespace-free piece of prose) as a file name or path, or None.

    A file name is a stem of 2+ word characters or dashes (so "e.g." and "i.e." are not files)
    and an extension of 1-6 letters and digits starting with a letter.
    """
    dot = chunk.rfind(".")
    while dot > 0:
        ext_end = dot + 1
        while ext_end < len(chunk) and chunk[ext_end].isalnum() and chunk[ext_end].isascii():
            ext_end += 1
        extension = chunk[dot + 1 : ext_end]
        stem_start = dot
        while stem_start > 0 and (
            _word_char(chunk[stem_start - 1]) or chunk[stem_start - 1] == "-"
        ):
            stem_start -= 1
        stem = chunk[stem_start:dot]
        after_ok = ext_end == len(chunk) or not _word_char(chunk[ext_end])
        if 1 <= len(extension) <= 6 and extension[0].isalpha() and len(stem) >= 2 and after_ok:
            start = stem_start
            while start > 0 and (_word_char(chunk[start - 1]) or chunk[start - 1] in "./-"):
                start -= 1
            return chunk[start:ext_end]
        dot = chunk.rfind(".", 0, dot)
    return None


def _file_mentions(prose: str) -> set[str]:
    found = set()
    for chunk in prose.split():
        name = _file_name(chunk)
        if name:
            found.add(name)
    return found


def complexity_score(text: str, tokens: list[str] | None = None) -> int:
    """`tokens`: the text's tokens when the caller has them already (`tokenize(text)`)."""
    if not text:
        return 0
    lowered = text.lower()
    if tokens is None:
        tokens = tokenize(lowered)
    score = 0
    words = len(lowered.split())
    score += 3 if words >= 250 else 2 if words >= 80 else 1 if words >= 25 else 0
    steps = len(_STEP_MARKERS.hits(tokens)) + _list_items(text)
    score += 2 if steps >= 3 else 1 if steps >= 1 else 0
    if _SCOPE.hits(tokens):
        score += 1
    score += min(2, len(_HARD_TOPICS.hits(tokens)))
    prose, blocks = _split_fences(lowered)
    if len(_file_mentions(prose)) >= 3:
        score += 1
    if any(block.count("\n") >= 30 for block in blocks):
        score += 1
    if _SIMPLE.hits(tokens) and score > 0:
        score -= 1
    return score


def assess_complexity(text: str, tokens: list[str] | None = None) -> str:
    score = complexity_score(text, tokens)
    if score >= 4:
        return HIGH
    if score >= 2:
        return MEDIUM
    return LOW
