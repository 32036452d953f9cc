"""The SQLite decision log: one row per routing decision, from every surface.

Writing a row needs only the sqlite C module, because hooks write from a fresh process on every
event and cannot afford more (not sqlite-utils, not even `sqlite3`'s datetime adapters or
`hashlib`'s OpenSSL binding). Migrations use sqlite-utils, imported when they run. The database is in WAL mode with a busy timeout, so the proxy, the MCP
server and hooks can write at once.

Migrations are named functions applied in order and recorded in `_migrations`; `PRAGMA
user_version` mirrors their count so the write path can tell in one cheap query that none is due.
"""

from __future__ import annotations

import os
import time

try:  # the C module alone; `sqlite3` is a thin wrapper that also imports datetime and collections
    import _sqlite3 as sqlite
except ImportError:  # pragma: no cover - interpreters without the private module
    import sqlite3 as sqlite
try:  # hashlib loads OpenSSL (a few ms); the builtin SHA-256 gives the same digest
    from _sha256 import sha256
except ImportError:  # pragma: no cover
    from hashlib import sha256

from .plain import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable
    from pathlib import Path
    from typing import Any, ClassVar

BUSY_TIMEOUT_MS = 5000

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


class DecisionRow(Record):
    """One row of the `decisions` table (see the README for what each column means)."""

    _fields = (
        "source", "rule", "provider", "model", "outcome", "ts", "session_id", "prompt_id",
        "requested_model", "tier", "complexity", "estimated_tokens", "input_tokens",
        "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost", "baseline_cost",
        "latency_ms", "ttft_ms", "error_class", "fallback_from", "reason", "prompt_hash",
        "prompt_chars", "prompt_text",
    )
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {
        "outcome": OUTCOME_ROUTED, "ts": 0.0, "session_id": None, "prompt_id": None,
        "requested_model": None, "tier": None, "complexity": None, "estimated_tokens": None,
        "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cost": 0.0, "baseline_cost": 0.0, "latency_ms": None, "ttft_ms": None,
        "error_class": None, "fallback_from": None, "reason": None, "prompt_hash": None,
        "prompt_chars": None, "prompt_text": None,
    }


COLUMNS = DecisionRow._fields
_INSERT_SQL = (
    f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def prompt_fields(prompt: str, store_prompts: bool) -> dict[str, Any]:
    """A prompt as the log keeps it: a SHA-256 and a length, and the text only when opted in."""
    return {
        "prompt_hash": sha256(prompt.encode("utf-8", "replace")).hexdigest(),
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


MIGRATIONS: tuple[Callable[[Any], None], ...] = (
    _m001_create_decisions,
    _m002_index_decisions,
    _m003_daily_totals,
    _m004_pins_and_sessions,
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


def connect(path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open (creating if needed) the log at `path`, in WAL mode, migrated to the latest schema.

    Hooks pass a short busy timeout: a hook that waits long on a locked log delays the user.
    """
    if str(path) != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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
    source: str | None = None,
) -> list[dict[str, Any]]:
    """The newest decisions first (optionally of one session or surface), without prompt text."""
    shown = [c for c in COLUMNS if c != "prompt_text"]
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if session is not None:
        clauses.append("session_id = ?")
        params.append(session)
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    cursor = conn.execute(
        f"SELECT id, {', '.join(shown)} FROM decisions {where} ORDER BY ts DESC, id DESC LIMIT ?",
        [*params, limit],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


# --- turn pins and sessions --------------------------------------------------------------------


class Pin(Record):
    """The route the prompt hook chose for a session's current turn."""

    _fields = ("session_id", "prompt_id", "provider", "model", "tier", "rule", "reason", "created_at")
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {"prompt_id": None, "tier": None, "reason": None, "created_at": 0.0}
    _frozen = True


def write_pin(conn: sqlite3.Connection, pin: Pin) -> None:
    """Replace the session's pin: a new prompt starts a new turn."""
    conn.execute(
        "INSERT OR REPLACE INTO pins (session_id, prompt_id, provider, model, tier, rule, reason, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (pin.session_id, pin.prompt_id, pin.provider, pin.model, pin.tier, pin.rule, pin.reason,
         pin.created_at or time.time()),
    )


def read_pin(conn: sqlite3.Connection, session_id: str, max_age_seconds: float | None = None) -> Pin | None:
    row = conn.execute(
        "SELECT session_id, prompt_id, provider, model, tier, rule, reason, created_at FROM pins "
        "WHERE session_id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return None
    pin = Pin(*row)
    if max_age_seconds is not None and time.time() - pin.created_at > max_age_seconds:
        return None
    return pin


def clear_pin(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute("DELETE FROM pins WHERE session_id = ?", (session_id,))


def prune_pins(conn: sqlite3.Connection, older_than: float) -> int:
    return conn.execute("DELETE FROM pins WHERE created_at < ?", (older_than,)).rowcount


def start_session(
    conn: sqlite3.Connection, session_id: str, source: str | None, model: str | None, cwd: str | None
) -> None:
    conn.execute(
        "INSERT INTO sessions (session_id, started_at, source, model, cwd) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(session_id) DO UPDATE SET source = excluded.source, "
        "model = COALESCE(excluded.model, sessions.model), ended_at = NULL, end_reason = NULL",
        (session_id, time.time(), source, model, cwd),
    )


def end_session(conn: sqlite3.Connection, session_id: str, reason: str | None) -> None:
    conn.execute(
        "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE session_id = ?",
        (time.time(), reason, session_id),
    )
