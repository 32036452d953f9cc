"""The checks a model's answer must pass before a client sees it: their names, and the refusal
wording the proxy and the MCP delegate both recognise.

A failed check's name is the `error_class` of the request's log row, so the proxy that writes it,
the stats and the dashboard that count it and `doctor` that rates each model by it read the
names from here (one list). Stdlib only: the proxy reads them on every checked answer.
"""

from __future__ import annotations

import re

# What the proxy checks in an answer from a link that is not Anthropic, to a request offering
# tools (hybrid_router/proxy/checks.py says how each is decided).
CHECK_EMPTY = "empty"  # no text and no tool call
CHECK_TRUNCATED_TOOL_CALL = "truncated-tool-call"  # cut off at max_tokens inside a tool call
CHECK_UNKNOWN_TOOL = "unknown-tool"  # a tool_use naming a tool the request did not offer
CHECK_INVALID_TOOL_INPUT = "invalid-tool-input"  # input that breaks the tool's input_schema
CHECK_TOOL_LOOP = "tool-loop"  # the same call a third time in a row since the user's prompt
CHECK_REFUSAL = "refusal"  # nothing but a canned "I can't help with that"
CHECKS = (
    CHECK_EMPTY,
    CHECK_TRUNCATED_TOOL_CALL,
    CHECK_UNKNOWN_TOOL,
    CHECK_INVALID_TOOL_INPUT,
    CHECK_TOOL_LOOP,
    CHECK_REFUSAL,
)

# The verbs of a refusal, shared by both rules below.
_CANNOT = (
    r"(?:can(?:no|['\u2019])t|won['\u2019]?t|am unable to|['\u2019]m unable to|am not able to)"
)

# The MCP delegate's rule: a short answer that opens with a refusal. A delegated subtask is
# self-contained work, so an answer that starts by declining it is a refusal even when it goes on
# to say why.
_OPENS_WITH_REFUSAL = re.compile(
    r"^\W*(i['\u2019]?m sorry,? but|i am sorry,? but|sorry,? (but )?i (can(no|['\u2019])t|"
    r"won['\u2019]?t)|i " + _CANNOT + r" (help|assist|comply|do that|provide|fulfil|complete)|"
    r"as an ai( language model)?,? i (can(no|['\u2019])t|am unable))",
    re.IGNORECASE,
)
OPENING_REFUSAL_MAX_CHARS = 600

# The proxy's rule is stricter. In Claude Code's agent loop a reply such as "I can't complete
# this: the file does not exist" is a real answer, so only an answer that says nothing but a
# canned refusal, naming nothing of the task, counts: "I'm sorry, but I can't assist with that."
_CANNED_REFUSAL = re.compile(
    r"^\W*(?:(?:i['\u2019]?m|i am) sorry|sorry|i apologi[sz]e)?[,.!]?\s*(?:but\s+)?"
    r"i\s+" + _CANNOT + r"\s+(?:help|assist)(?:\s+you)?"
    r"(?:\s+with\s+(?:that|this|your request|this request|that request))?\s*[.!]?\s*$",
    re.IGNORECASE,
)
CANNED_REFUSAL_MAX_CHARS = 120


def opens_with_refusal(text: str) -> bool:
    """A short answer (at most OPENING_REFUSAL_MAX_CHARS) that begins by refusing."""
    stripped = text.strip()
    return len(stripped) <= OPENING_REFUSAL_MAX_CHARS and bool(_OPENS_WITH_REFUSAL.search(stripped))


def is_canned_refusal(text: str) -> bool:
    """The whole answer is one canned refusal sentence, and nothing else."""
    stripped = text.strip()
    return len(stripped) <= CANNED_REFUSAL_MAX_CHARS and bool(_CANNED_REFUSAL.match(stripped))
