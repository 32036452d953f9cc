"""A decision row: its columns, the one function that builds it, and writing it.

Stdlib only and cheap to import: the prompt hook writes a row from a fresh process per prompt.
A prompt is kept as a SHA-256 and a length; its text only when the user opted in.
"""

from __future__ import annotations

import sys
import time

from ..core.outcomes import OUTCOME_ROUTED
from ..core.records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable
    from hashlib import sha256

    from ..core.routing import Decision
    from ..core.signals import Signals
    from ..core.usage import Usage
else:
    # hashlib loads OpenSSL (a few ms); CPython's builtin SHA-256 gives the same digest. It is
    # `_sha2` from Python 3.12, `_sha256` before (these private modules have no type stubs).
    # Chosen by version: a failed import searches the whole sys.path.
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256
        else:
            from _sha256 import sha256
    except ImportError:  # pragma: no cover - builds without the builtin hashes
        from hashlib import sha256


class DecisionRow(Record):
    """One row of the `decisions` table (see the README for what each column means)."""

    source: str  # core.outcomes.SOURCES
    rule: str
    provider: str
    model: str
    outcome: str = OUTCOME_ROUTED  # core.outcomes.OUTCOMES
    ts: float = 0.0  # 0: stamped when written
    session_id: str | None = None
    prompt_id: str | None = None
    requested_model: str | None = None
    tier: str | None = None
    complexity: str | None = None
    estimated_tokens: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float = 0.0
    baseline_cost: float = 0.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error_class: str | None = None
    fallback_from: str | None = None
    reason: str | None = None
    prompt_hash: str | None = None
    prompt_chars: int | None = None
    prompt_text: str | None = None
    # The first answer that failed a check (proxy/checks.py): who gave it. Its check is the
    # error_class. `answer_checked`: 1 when the answer the client got was checked and passed.
    failed_provider: str | None = None
    failed_model: str | None = None
    answer_checked: int | None = None


COLUMNS = DecisionRow._fields
# What a client sends (session ids, model names) and what reasons quote is stored capped, so a
# row has a bounded size whatever the request; the prompt's text (only with storePrompts) too.
MAX_FIELD_CHARS = 200
MAX_REASON_CHARS = 1000
MAX_PROMPT_TEXT_CHARS = 100_000
# Past this size a prompt is hashed by hashlib (OpenSSL, several times faster, and without
# holding the GIL); below it, importing hashlib would cost the hook more than the hash.
_HASHLIB_FROM_CHARS = 1 << 20


def capped(value: str, limit: int = MAX_FIELD_CHARS) -> str:
    """`value` cut to at most `limit` characters (the last one an ellipsis when cut). Whatever is
    not a string (a hook payload may hold anything) is left as it is."""
    if not isinstance(value, str) or len(value) <= limit:
        return value
    return value[: limit - 1] + "\u2026"


_INSERT_SQL = (
    f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def decision_row(
    decision: Decision | None,
    signals: Signals | None,
    *,
    source: str,
    store_prompts: bool,
    outcome: str = OUTCOME_ROUTED,
    rule: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    usage: Usage | None = None,
    cost: float = 0.0,
    baseline_cost: float = 0.0,
    session_id: str | None = None,
    prompt_id: str | None = None,
    prompt: str | None = None,
    latency_ms: float | None = None,
    ttft_ms: float | None = None,
    error_class: str | None = None,
    fallback_from: str | None = None,
    reason: str | None = None,
    failed_provider: str | None = None,
    failed_model: str | None = None,
    answer_checked: bool = False,
) -> DecisionRow:
    """The log row of one decision, from every surface: the one place a row is built.

    `decision` and `signals` give the route and the request (None for what was refused before
    routing, or a tool call with no route); `provider`, `model`, `rule` and `reason` override
    theirs (who actually answered, a fallback, a refusal). `prompt` is what the row hashes
    (default: the signals' text); its text is kept only with `store_prompts`.
    """
    text = prompt if prompt is not None else (signals.text if signals is not None else "")
    session = session_id or (signals.session_id if signals is not None else None)
    requested = signals.requested_model if signals is not None else None
    if reason is None and decision is not None:
        reason = decision.reason
    row = DecisionRow(
        source=source,
        rule=capped(rule or (decision.rule if decision is not None else "none")),
        provider=capped(provider or (decision.provider if decision is not None else "none")),
        model=capped(model or (decision.model if decision is not None else "none")),
        outcome=outcome,
        session_id=session and capped(session),
        prompt_id=prompt_id and capped(prompt_id),
        requested_model=requested and capped(requested),
        tier=decision.tier if decision is not None else None,
        complexity=decision.complexity if decision is not None else None,
        estimated_tokens=(
            decision.estimated_tokens
            if decision is not None
            else signals.estimated_tokens
            if signals is not None
            else None
        ),
        cost=cost,
        baseline_cost=baseline_cost,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        error_class=error_class and capped(error_class),
        fallback_from=fallback_from and capped(fallback_from),
        reason=reason and capped(reason, MAX_REASON_CHARS),
    )
    if failed_model is not None:
        row.failed_provider, row.failed_model = failed_provider, failed_model
    if answer_checked:
        row.answer_checked = 1
    if usage is not None:
        row.input_tokens = usage.input_tokens
        row.output_tokens = usage.output_tokens
        row.cache_read_tokens = usage.cache_read_tokens
        row.cache_write_tokens = usage.cache_write_tokens
    if text:
        row.prompt_hash = _digest(text)
        row.prompt_chars = len(text)
        row.prompt_text = capped(text, MAX_PROMPT_TEXT_CHARS) if store_prompts else None
    return row


def _digest(text: str) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) < _HASHLIB_FROM_CHARS:
        return sha256(data).hexdigest()
    import hashlib

    return hashlib.sha256(data).hexdigest()


def record(conn: sqlite3.Connection, row: DecisionRow) -> int:
    """Insert one decision row (timestamped now unless it has a time); return its id."""
    if not row.ts:
        row.ts = time.time()
    values = tuple(getattr(row, name) for name in COLUMNS)
    cursor = conn.execute(_INSERT_SQL, values)
    return int(cursor.lastrowid or 0)


def record_many(conn: sqlite3.Connection, rows: Iterable[DecisionRow]) -> None:
    """Insert rows in one transaction (seeding, imports, benchmarks)."""
    now = time.time()
    conn.execute("BEGIN")
    try:
        conn.executemany(
            _INSERT_SQL,
            (tuple(getattr(r, n) if n != "ts" or r.ts else now for n in COLUMNS) for r in rows),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
