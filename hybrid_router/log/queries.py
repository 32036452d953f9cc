"""Reading the decision log: the newest rows, filtered rows (what `logs` prints and follows).

Prompt text is never read unless the caller asks for it (`--show-prompts`); rows only hold it
when the config opted in (`storePrompts: true`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .rows import COLUMNS

_SHOWN = ("id", *(c for c in COLUMNS if c != "prompt_text"))


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


@dataclass
class LogFilter:
    providers: Sequence[str] = ()
    rules: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    sources: Sequence[str] = ()
    session: str | None = None
    since: float | None = None
    show_prompts: bool = False

    def where(self, after_id: int | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("provider", self.providers),
            ("rule", self.rules),
            ("outcome", self.outcomes),
            ("source", self.sources),
        ):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.session is not None:
            clauses.append("session_id = ?")
            params.append(self.session)
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if after_id is not None:
            clauses.append("id > ?")
            params.append(after_id)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def columns(self) -> tuple[str, ...]:
        return (*_SHOWN, "prompt_text") if self.show_prompts else _SHOWN


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def latest(
    conn: sqlite3.Connection, flt: LogFilter, limit: int, up_to_id: int | None = None
) -> list[dict[str, Any]]:
    """The `limit` newest matching rows, oldest first (the newest is printed last, as tail does).

    `up_to_id` leaves out rows written after a mark, so that a follower starting from that mark
    prints each row once.
    """
    if limit <= 0:
        return []
    where, params = flt.where()
    if up_to_id is not None:
        where = f"{where} AND id <= ?" if where else "WHERE id <= ?"
        params.append(up_to_id)
    cursor = conn.execute(
        f"SELECT {', '.join(flt.columns())} FROM decisions {where} "
        "ORDER BY ts DESC, id DESC LIMIT ?",
        [*params, limit],
    )
    return list(reversed(_rows(cursor)))


def max_id(conn: sqlite3.Connection) -> int:
    (value,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM decisions").fetchone()
    return int(value)


def newer(conn: sqlite3.Connection, flt: LogFilter, after_id: int) -> list[dict[str, Any]]:
    """Matching rows written after `after_id`, in the order they were written."""
    where, params = flt.where(after_id)
    cursor = conn.execute(
        f"SELECT {', '.join(flt.columns())} FROM decisions {where} ORDER BY id", params
    )
    return _rows(cursor)


def follow(
    conn: sqlite3.Connection,
    flt: LogFilter,
    after_id: int,
    emit: Callable[[dict[str, Any]], None],
    *,
    poll_seconds: float = 0.5,
    stop_after: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Emit rows as they are written, polling by id, until interrupted (or `stop_after` seconds).

    Returns the last id emitted. Rows are found by id, not time: a row written late with an
    earlier timestamp (the proxy logs a request when its answer ends) still shows up.
    """
    deadline = None if stop_after is None else time.monotonic() + stop_after
    last = after_id
    while True:
        for row in newer(conn, flt, last):
            emit(row)
            last = max(last, int(row["id"]))
        if deadline is not None and time.monotonic() >= deadline:
            return last
        pause = poll_seconds
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        sleep(pause)
