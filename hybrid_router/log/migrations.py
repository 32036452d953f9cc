"""The decision log's schema, as named migrations applied in order.

Each migration is a function recorded by name in `_migrations` when applied; `PRAGMA
user_version` mirrors their count, so opening the log can tell in one cheap query that none is
due. sqlite-utils is imported only when a migration runs.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence
    from typing import Any


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
        "CREATE TRIGGER decisions_totals_insert AFTER INSERT ON decisions "
        f"BEGIN {_totals_add('NEW')} END"
    )
    db.execute(
        "CREATE TRIGGER decisions_totals_delete AFTER DELETE ON decisions "
        f"BEGIN {_totals_subtract('OLD')} END"
    )
    db.execute(
        "CREATE TRIGGER decisions_totals_update AFTER UPDATE ON decisions BEGIN "
        f"{_totals_subtract('OLD')} {_totals_add('NEW')} END"
    )
    db.execute(
        f"INSERT INTO decision_totals ({', '.join(_TOTALS_KEY + _TOTALS_SUMS)}) "
        f"SELECT CAST(ts / {SECONDS_PER_DAY} AS INTEGER) AS d, provider, outcome, source, "
        "COUNT(*), TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cache_read_tokens), "
        "TOTAL(cache_write_tokens), TOTAL(cost), TOTAL(baseline_cost), COUNT(fallback_from) "
        "FROM decisions GROUP BY d, provider, outcome, source"
    )


def _m004_pins_and_sessions(db: Any) -> None:
    """Turn pins (the hook's decision for a session's current turn, honoured by the proxy) and
    the sessions the hooks have seen."""
    db.execute(
        "CREATE TABLE pins (session_id TEXT PRIMARY KEY, prompt_id TEXT, provider TEXT NOT NULL, "
        "model TEXT NOT NULL, tier TEXT, rule TEXT NOT NULL, reason TEXT, created_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, started_at REAL NOT NULL, "
        "source TEXT, model TEXT, cwd TEXT, ended_at REAL, end_reason TEXT)"
    )


def _m005_index_error_classes(db: Any) -> None:
    """Rows by error class and time, only for the few rows that have one: counting one class
    over a period (say, prompts a local server cut) reads those rows, not the whole log."""
    db.execute(
        "CREATE INDEX idx_decisions_error_class ON decisions (error_class, ts) "
        "WHERE error_class IS NOT NULL"
    )


def _m006_checked_answers(db: Any) -> None:
    """The proxy checks answers from links that are not Anthropic (proxy/checks.py): the row
    says who gave the first answer that failed (its check is the error class) and whether the
    answer the client got was checked. Two partial indexes, each holding what its count reads,
    keep the counts off the table: the failed rows (few) by time, and the checked rows by time
    with their model (a model's failure rate)."""
    db.execute("ALTER TABLE decisions ADD COLUMN failed_provider TEXT")
    db.execute("ALTER TABLE decisions ADD COLUMN failed_model TEXT")
    db.execute("ALTER TABLE decisions ADD COLUMN answer_checked INTEGER")
    db.execute(
        "CREATE INDEX idx_decisions_failed_model ON decisions "
        "(ts, source, failed_provider, failed_model, error_class) WHERE failed_model IS NOT NULL"
    )
    db.execute(
        "CREATE INDEX idx_decisions_answer_checked ON decisions (ts, provider, model) "
        "WHERE answer_checked = 1"
    )


MIGRATIONS: tuple[Callable[[Any], None], ...] = (
    _m001_create_decisions,
    _m002_index_decisions,
    _m003_daily_totals,
    _m004_pins_and_sessions,
    _m005_index_error_classes,
    _m006_checked_answers,
)


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Callable[[Any], None]] = MIGRATIONS
) -> list[str]:
    """Apply the migrations not yet recorded, in one write transaction; return the names applied.
    (`migrations`: the full list, or in tests the list an older version had.)

    The transaction is taken before the check, so processes racing on a fresh database apply
    each migration once: the second waits for the first, then finds nothing to do.
    """
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        recorded = db.table("_migrations")
        if not recorded.exists():
            recorded.create({"name": str, "applied_at": float}, pk="name")
        done = {row["name"] for row in recorded.rows}
        applied: list[str] = []
        for migration in migrations:
            name = migration.__name__.lstrip("_")
            if name not in done:
                migration(db)
                recorded.insert({"name": name, "applied_at": time.time()})
                applied.append(name)
        conn.execute(f"PRAGMA user_version = {len(migrations)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return applied
