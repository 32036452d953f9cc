"""The SQLite decision log: one row per routing decision, from every surface.

Writing a row uses the stdlib `sqlite3` only, because hooks write from a fresh process on every
event and cannot afford to import sqlite-utils. Migrations and the stats queries use sqlite-utils,
imported when they run. The database is in WAL mode with a busy timeout, so the proxy, the MCP
server and hooks can write at once.

Migrations are named functions applied in order and recorded in `_migrations`; `PRAGMA
user_version` mirrors their count so the write path can tell in one cheap query that none is due.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 5000

# Outcomes a row can record.
OUTCOME_OK = "ok"  # answered by the routed model
OUTCOME_FALLBACK = "fallback"  # answered, but by a later link of the chain
OUTCOME_ERROR = "error"  # no model answered; the client got an error
OUTCOME_REFUSED = "refused"  # the model refused the task
OUTCOME_TRUNCATED = "truncated"  # the answer was cut off at max_tokens
OUTCOME_ROUTED = "routed"  # a decision only (hooks, `route --log`): nothing was called
OUTCOME_DECLINED = "declined"  # a surface chose not to act (delegate_to_local on premium work)
SOURCES = ("proxy", "hook", "mcp", "cli")


@dataclass(slots=True)
class DecisionRow:
    source: str
    rule: str
    provider: str
    model: str
    outcome: str = OUTCOME_ROUTED
    ts: float = 0.0
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


COLUMNS = tuple(f.name for f in fields(DecisionRow))
_INSERT_SQL = (
    f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def prompt_fields(prompt: str, store_prompts: bool) -> dict[str, Any]:
    """A prompt as the log keeps it: a SHA-256 and a length, and the text only when opted in."""
    return {
        "prompt_hash": hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest(),
        "prompt_chars": len(prompt),
        "prompt_text": prompt if store_prompts else None,
    }


# --- migrations ------------------------------------------------------------------------------


def _m001_create_decisions(db: Any) -> None:
    db["decisions"].create(
        {
            "id": int,
            "ts": float,
            "source": str,
            "session_id": str,
            "prompt_id": str,
            "rule": str,
            "provider": str,
            "model": str,
            "requested_model": str,
            "tier": str,
            "complexity": str,
            "estimated_tokens": int,
            "input_tokens": int,
            "output_tokens": int,
            "cache_read_tokens": int,
            "cache_write_tokens": int,
            "cost": float,
            "baseline_cost": float,
            "latency_ms": float,
            "ttft_ms": float,
            "outcome": str,
            "error_class": str,
            "fallback_from": str,
            "reason": str,
            "prompt_hash": str,
            "prompt_chars": int,
            "prompt_text": str,
        },
        pk="id",
        not_null={"ts", "source", "rule", "provider", "model", "outcome"},
        defaults={
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost": 0.0,
            "baseline_cost": 0.0,
        },
    )


def _m002_index_decisions(db: Any) -> None:
    db["decisions"].create_index(["ts"], index_name="idx_decisions_ts")
    db["decisions"].create_index(["session_id", "ts"], index_name="idx_decisions_session")


SECONDS_PER_DAY = 86400
_TOTALS_KEY = ("day", "provider", "outcome", "source")
_TOTALS_SUMS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost",
    "baseline_cost",
    "fallbacks",
)


def _totals_values(prefix: str) -> list[str]:
    """The rollup key and values one decision row contributes, read from NEW or OLD in a trigger."""
    return [
        f"CAST({prefix}.ts / {SECONDS_PER_DAY} AS INTEGER)",
        f"{prefix}.provider",
        f"{prefix}.outcome",
        f"{prefix}.source",
        "1",
        f"COALESCE({prefix}.input_tokens, 0)",
        f"COALESCE({prefix}.output_tokens, 0)",
        f"COALESCE({prefix}.cache_read_tokens, 0)",
        f"COALESCE({prefix}.cache_write_tokens, 0)",
        f"COALESCE({prefix}.cost, 0)",
        f"COALESCE({prefix}.baseline_cost, 0)",
        f"({prefix}.fallback_from IS NOT NULL)",
    ]


def _totals_add(prefix: str) -> str:
    columns = ", ".join(_TOTALS_KEY + _TOTALS_SUMS)
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in _TOTALS_SUMS)
    return (
        f"INSERT INTO decision_totals ({columns}) VALUES ({', '.join(_totals_values(prefix))}) "
        f"ON CONFLICT({', '.join(_TOTALS_KEY)}) DO UPDATE SET {updates};"
    )


def _totals_subtract(prefix: str) -> str:
    values = _totals_values(prefix)
    key = " AND ".join(f"{c} = {v}" for c, v in zip(_TOTALS_KEY, values[:4], strict=True))
    updates = ", ".join(f"{c} = {c} - {v}" for c, v in zip(_TOTALS_SUMS, values[4:], strict=True))
    return f"UPDATE decision_totals SET {updates} WHERE {key};"


def _m003_daily_totals(db: Any) -> None:
    """Per-day totals kept by triggers, so stats over millions of rows read thousands.

    Each (UTC day, provider, outcome, source) has one row of sums; `stats` adds whole days from
    here and reads only the partial days at the ends of a period from `decisions`.
    """
    sums = ", ".join(
        f"{c} REAL NOT NULL DEFAULT 0"
        if c in ("cost", "baseline_cost")
        else f"{c} INTEGER NOT NULL DEFAULT 0"
        for c in _TOTALS_SUMS
    )
    db.execute(
        "CREATE TABLE decision_totals (day INTEGER NOT NULL, provider TEXT NOT NULL, "
        f"outcome TEXT NOT NULL, source TEXT NOT NULL, {sums}, "
        "PRIMARY KEY (day, provider, outcome, source))"
    )
    db.execute(
        f"CREATE TRIGGER decisions_totals_insert AFTER INSERT ON decisions BEGIN {_totals_add('NEW')} END"
    )
    db.execute(
        f"CREATE TRIGGER decisions_totals_delete AFTER DELETE ON decisions BEGIN {_totals_subtract('OLD')} END"
    )
    db.execute(
        "CREATE TRIGGER decisions_totals_update AFTER UPDATE ON decisions BEGIN "
        f"{_totals_subtract('OLD')} {_totals_add('NEW')} END"
    )
    db.execute(
        f"INSERT INTO decision_totals ({', '.join(_TOTALS_KEY + _TOTALS_SUMS)}) "
        f"SELECT CAST(ts / {SECONDS_PER_DAY} AS INTEGER) AS d, provider, outcome, source, COUNT(*), "
        "TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cache_read_tokens), "
        "TOTAL(cache_write_tokens), TOTAL(cost), TOTAL(baseline_cost), COUNT(fallback_from) "
        "FROM decisions GROUP BY d, provider, outcome, source"
    )


MIGRATIONS: tuple[Callable[[Any], None], ...] = (
    _m001_create_decisions,
    _m002_index_decisions,
    _m003_daily_totals,
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded, in one write transaction; return the names applied.

    The transaction is taken before the check, so processes racing on a fresh database apply
    each migration once: the second waits for the first, then finds nothing to do.
    """
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrations = db["_migrations"]
        if not migrations.exists():
            migrations.create({"name": str, "applied_at": float}, pk="name")
        done = {row["name"] for row in migrations.rows}
        applied: list[str] = []
        for migration in MIGRATIONS:
            name = migration.__name__.lstrip("_")
            if name not in done:
                migration(db)
                migrations.insert({"name": name, "applied_at": time.time()})
                applied.append(name)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return applied


# --- connections and writes ------------------------------------------------------------------


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) the log at `path`, in WAL mode, migrated to the latest schema."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version < len(MIGRATIONS):
        migrate(conn)
    return conn


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


def recent(
    conn: sqlite3.Connection,
    limit: int = 10,
    since: float | None = None,
    session: str | None = None,
) -> list[dict[str, Any]]:
    """The newest decisions first (optionally of one session), without prompt text."""
    shown = [c for c in COLUMNS if c != "prompt_text"]
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if session is not None:
        clauses.append("session_id = ?")
        params.append(session)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    cursor = conn.execute(
        f"SELECT id, {', '.join(shown)} FROM decisions {where} ORDER BY ts DESC, id DESC LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
