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
SOURCES = ("proxy", "hook", "mcp", "cli")
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
