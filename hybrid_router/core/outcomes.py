"""What a decision row can say happened (its outcome) and which surface wrote it (its source).

The one list of each: the CLI's choices (`logs --outcome`, `stats --source`), the stats and the
writers all read them from here.
"""

from __future__ import annotations

# Outcomes a row can record.
OUTCOME_OK = "ok"  # answered by the routed model
OUTCOME_FALLBACK = "fallback"  # answered, but by a later link of the chain
OUTCOME_ERROR = "error"  # no model answered; the client got an error
OUTCOME_REFUSED = "refused"  # the model refused the task
OUTCOME_TRUNCATED = "truncated"  # the answer was cut off at max_tokens
OUTCOME_ROUTED = "routed"  # a decision only (hooks, `route --log`): nothing was called
OUTCOME_DECLINED = "declined"  # a surface chose not to act (delegate_to_local on premium work)
OUTCOME_CANCELLED = "cancelled"  # the client went away before the answer ended
OUTCOME_REJECTED = "rejected"  # refused before routing: malformed body, too large, no token
# An error class stats count apart: a local server read fewer than half the prompt tokens the
# router counted, so it ran with a smaller window than the request and dropped the oldest part.
ERROR_CONTEXT_TRUNCATED = "context-truncated"

# Sources: which surface wrote a row.
SOURCE_PROXY = "proxy"  # a request the proxy answered (or refused)
SOURCE_HOOK = "hook"  # a prompt the UserPromptSubmit hook classified
SOURCE_MCP = "mcp"  # a tool call of the MCP server (delegate_to_local, pull_model)
SOURCE_CLI = "cli"  # `route --log`, `demo`
SOURCES = (SOURCE_PROXY, SOURCE_HOOK, SOURCE_MCP, SOURCE_CLI)
# The surfaces whose rows are model calls (the hook and the CLI only classify).
CALLING_SOURCES = (SOURCE_PROXY, SOURCE_MCP)
# A model call that was answered (by the first link or a fallback), as a filter over the
# decisions table: what the status line and the Stop hook's session line count.
ANSWERED_CALL_FILTER = (
    f"source IN ({', '.join(repr(source) for source in CALLING_SOURCES)})"
    f" AND outcome IN ({OUTCOME_OK!r}, {OUTCOME_FALLBACK!r})"
)
OUTCOMES = (
    OUTCOME_OK,
    OUTCOME_FALLBACK,
    OUTCOME_ERROR,
    OUTCOME_REFUSED,
    OUTCOME_TRUNCATED,
    OUTCOME_ROUTED,
    OUTCOME_DECLINED,
    OUTCOME_CANCELLED,
    OUTCOME_REJECTED,
)
