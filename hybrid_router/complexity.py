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

import re

from .keywords import compile_terms

LOW, MEDIUM, HIGH = "low", "medium", "high"

_STEP_MARKERS = compile_terms(
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
_SCOPE = compile_terms(
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
_HARD_TOPICS = compile_terms(
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
_SIMPLE = compile_terms(
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
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
# A file name: a stem of 2+ characters (so "e.g." and "i.e." are not files) and an extension.
_FILE_MENTION = re.compile(r"(?<![\w/])(?:[\w.-]+/)*[\w-]{2,}\.[a-z][a-z0-9]{0,5}\b")
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def complexity_score(text: str) -> int:
    if not text:
        return 0
    lowered = text.lower()
    score = 0
    words = len(lowered.split())
    score += 3 if words >= 250 else 2 if words >= 80 else 1 if words >= 25 else 0
    steps = len(_STEP_MARKERS.hits(lowered)) + len(_LIST_ITEM.findall(text))
    score += 2 if steps >= 3 else 1 if steps >= 1 else 0
    if _SCOPE.hits(lowered):
        score += 1
    score += min(2, len(_HARD_TOPICS.hits(lowered)))
    prose = _FENCE.sub(" ", lowered)
    if len(set(_FILE_MENTION.findall(prose))) >= 3:
        score += 1
    if any(block.count("\n") >= 30 for block in _FENCE.findall(text)):
        score += 1
    if _SIMPLE.hits(lowered) and score > 0:
        score -= 1
    return score


def assess_complexity(text: str) -> str:
    score = complexity_score(text)
    if score >= 4:
        return HIGH
    if score >= 2:
        return MEDIUM
    return LOW
