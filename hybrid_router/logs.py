"""`hybrid-router logs`: the decision log, filtered, as lines or JSON Lines, optionally followed.

Prompt text is never read from the database unless the caller asks for it (`--show-prompts`);
rows only hold it when the config opted in (`storePrompts: true`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .store import COLUMNS

OUTCOMES = ("ok", "fallback", "error", "refused", "truncated", "declined", "routed")
_SHOWN = ("id", *(c for c in COLUMNS if c != "prompt_text"))


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


# --- rendering -----------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def json_line(row: dict[str, Any]) -> str:
    """One JSON object (JSON Lines): every column, plus `time` (ISO 8601, UTC).

    `prompt_text` appears only when it was selected (`--show-prompts`) and the row holds text.
    """
    data = {"id": row["id"], "time": _iso(row.get("ts"))}
    data.update((k, v) for k, v in row.items() if k not in ("id", "prompt_text"))
    if row.get("prompt_text") is not None:
        data["prompt_text"] = row["prompt_text"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _money(value: float | None) -> str:
    return f"${value or 0.0:.4f}"


def text_line(row: dict[str, Any]) -> str:
    """One readable line per row; the prompt (when selected and stored) on an indented line."""
    when = datetime.fromtimestamp(row["ts"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    target = f"{row['provider']}/{row['model']}"
    tokens = f"{row.get('input_tokens') or 0:,}/{row.get('output_tokens') or 0:,} tok"
    parts = [
        when,
        f"#{row['id']}".ljust(6),
        str(row["source"]).ljust(5),
        str(row["outcome"]).ljust(9),
        target.ljust(30),
        str(row["rule"]).ljust(16),
        tokens.rjust(16),
        _money(row.get("cost")),
    ]
    saved = (row.get("baseline_cost") or 0.0) - (row.get("cost") or 0.0)
    if saved:
        parts.append(f"saved {_money(saved)}")
    if row.get("latency_ms") is not None:
        parts.append(f"{row['latency_ms']:,.0f} ms")
    if row.get("fallback_from"):
        parts.append(f"fallback from {row['fallback_from']}")
    if row.get("error_class"):
        parts.append(f"error {row['error_class']}")
    if row.get("session_id"):
        parts.append(f"session {row['session_id']}")
    line = "  ".join(parts)
    if row.get("prompt_text") is not None:
        prompt = " ".join(str(row["prompt_text"]).split())
        line += f"\n    prompt: {prompt}"
    return line
