"""Turn pins (the prompt hook's decision for a session's current turn, which the proxy honours)
and the sessions the hooks have seen. Stdlib only: the hooks write these on every event."""

from __future__ import annotations

import time

from ..core.records import Record
from .rows import MAX_REASON_CHARS, capped

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3


class Pin(Record, frozen=True):
    """The route the prompt hook chose for a session's current turn."""

    session_id: str
    prompt_id: str | None
    provider: str
    model: str
    tier: str | None
    rule: str
    reason: str | None = None
    created_at: float = 0.0


def write_pin(conn: sqlite3.Connection, pin: Pin) -> None:
    """Replace the session's pin: a new prompt starts a new turn. Ids and names are stored
    capped as in a decision row (a session id is looked up capped the same way)."""
    conn.execute(
        "INSERT OR REPLACE INTO pins (session_id, prompt_id, provider, model, tier, rule, reason, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            capped(pin.session_id),
            pin.prompt_id and capped(pin.prompt_id),
            capped(pin.provider),
            capped(pin.model),
            pin.tier,
            capped(pin.rule),
            pin.reason and capped(pin.reason, MAX_REASON_CHARS),
            pin.created_at or time.time(),
        ),
    )


def read_pin(
    conn: sqlite3.Connection, session_id: str, max_age_seconds: float | None = None
) -> Pin | None:
    row = conn.execute(
        "SELECT session_id, prompt_id, provider, model, tier, rule, reason, created_at FROM pins "
        "WHERE session_id = ?",
        (capped(session_id),),
    ).fetchone()
    if row is None:
        return None
    pin = Pin(*row)
    if max_age_seconds is not None and time.time() - pin.created_at > max_age_seconds:
        return None
    return pin


def clear_pin(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute("DELETE FROM pins WHERE session_id = ?", (capped(session_id),))


def prune_pins(conn: sqlite3.Connection, older_than: float) -> int:
    return conn.execute("DELETE FROM pins WHERE created_at < ?", (older_than,)).rowcount


def start_session(
    conn: sqlite3.Connection,
    session_id: str,
    source: str | None,
    model: str | None,
    cwd: str | None,
) -> None:
    conn.execute(
        "INSERT INTO sessions (session_id, started_at, source, model, cwd) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(session_id) DO UPDATE SET source = excluded.source, "
        "model = COALESCE(excluded.model, sessions.model), ended_at = NULL, end_reason = NULL",
        (
            capped(session_id),
            time.time(),
            source and capped(source),
            model and capped(model),
            cwd and capped(cwd, MAX_REASON_CHARS),
        ),
    )


def end_session(conn: sqlite3.Connection, session_id: str, reason: str | None) -> None:
    conn.execute(
        "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE session_id = ?",
        (time.time(), reason and capped(reason), capped(session_id)),
    )
