"""Checking a local model's answer before Claude sees it.

Small models fail in recognisable ways: nothing at all, an answer cut off at the token limit, a
refusal, or code that does not parse. Each is caught here and named, so the tool can retry,
move down the chain, or tell Claude exactly what went wrong.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from ..core.checks import CHECK_EMPTY, CHECK_REFUSAL, opens_with_refusal

# The proxy's checks use the same names for the same failures (core/checks.py).
EMPTY = CHECK_EMPTY
TRUNCATED = "truncated"
REFUSAL = CHECK_REFUSAL
BAD_CODE = "unparsable-code"

_FENCE = re.compile(r"^```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = {"python", "py", "python3"}
_JSON_TAGS = {"json"}


@dataclass(frozen=True, slots=True)
class AnswerProblem:
    kind: str
    detail: str


def check_answer(text: str, *, truncated: bool, max_tokens: int) -> AnswerProblem | None:
    """The first problem with an answer, or None when it can be returned as it is."""
    if not text.strip():
        return AnswerProblem(EMPTY, "the model returned an empty answer")
    if truncated:
        return AnswerProblem(
            TRUNCATED, f"the answer was cut off at max_tokens={max_tokens} before it finished"
        )
    if opens_with_refusal(text):  # the wording the proxy's checks share (core/checks.py)
        first_line = text.strip().splitlines()[0][:120]
        return AnswerProblem(REFUSAL, f"the model refused: {first_line!r}")
    return code_problem(text)


def code_problem(text: str) -> AnswerProblem | None:
    """A fenced Python or JSON block that does not parse, with where and why."""
    for number, match in enumerate(_FENCE.finditer(text), start=1):
        language, code = match.group(1).lower(), match.group(2)
        if language in _PYTHON_TAGS:
            try:
                ast.parse(code)
            except SyntaxError as exc:
                return AnswerProblem(
                    BAD_CODE,
                    f"code block {number} (python) does not parse: {exc.msg} at line {exc.lineno}",
                )
        elif language in _JSON_TAGS:
            try:
                json.loads(code)
            except ValueError as exc:
                return AnswerProblem(BAD_CODE, f"code block {number} (json) does not parse: {exc}")
    return None


def corrective_note(problem: AnswerProblem) -> str:
    """What to tell the model when it gets one more try after `problem`."""
    if problem.kind == BAD_CODE:
        return (
            f"Your previous answer had a problem: {problem.detail}. "
            "Reply again with code that parses."
        )
    if problem.kind == TRUNCATED:
        return "Your previous answer was too long and was cut off. Reply again, more concisely."
    if problem.kind == REFUSAL:
        return "This is an ordinary programming task. Please do it."
    return "Your previous answer was empty. Please answer the task."
