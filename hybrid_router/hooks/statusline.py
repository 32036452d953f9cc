"""`hybrid-router statusline`: one line for Claude Code's status bar.

Claude Code runs it (as a fresh process) after each assistant message with its status-line JSON
on stdin. The line shows the last turn's route, today's local share, and what routing saved
today. Like a hook it is lean and fails quietly: a broken status line prints a short note.
"""

from __future__ import annotations

import os
import sys
import time

from ..core.outcomes import ANSWERED_CALL_FILTER, CALLING_SOURCES
from ..core.table import LOCAL_PROVIDER_KINDS
from ..core.text import shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from typing import TextIO


def _today_start(now: float) -> float:
    local = time.localtime(now)
    return time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))


def status_line(
    conn: sqlite3.Connection, session_id: str | None, provider_kinds: dict[str, str], now: float
) -> str:
    last = None
    if session_id:
        last = conn.execute(
            "SELECT provider, model, rule, source FROM decisions WHERE session_id = ? "
            "ORDER BY ts DESC, id DESC LIMIT 1",
            (session_id,),
        ).fetchone()
    start = _today_start(now)
    rows = conn.execute(
        "SELECT provider, COUNT(*), TOTAL(baseline_cost - cost) FROM decisions "
        f"WHERE ts >= ? AND {ANSWERED_CALL_FILTER} GROUP BY provider",
        (start,),
    ).fetchall()
    total = sum(count for _, count, _ in rows)
    local = sum(
        count for provider, count, _ in rows if provider_kinds.get(provider) in LOCAL_PROVIDER_KINDS
    )
    saved = sum(amount for _, _, amount in rows)
    parts = []
    if last:
        provider, model, rule, source = last
        # A hook row is a classification: where the rules would send the turn, not who answered.
        verb = "routed" if source not in CALLING_SOURCES else "last"
        parts.append(f"{verb}: {shown(provider)}/{shown(model)} ({shown(rule)})")
    else:
        parts.append("no route yet this session")
    if total:
        parts.append(f"local {100 * local // total}% of {total} calls today")
    parts.append(f"saved ${saved:.2f} today")
    return "hybrid-router | " + " | ".join(parts)


def run_statusline(
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    env = dict(os.environ) if environ is None else environ
    try:
        from ..core import home
        from ..log.database import connect
        from .fastjson import loads
        from .table_cache import load_settings

        raw = stdin.read()
        payload = loads(raw) if raw.strip() else {}
        session_id = payload.get("session_id") if isinstance(payload, dict) else None
        kinds = load_settings(env).table.provider_kinds
        conn = connect(
            os.path.join(home.home_path(env), home.DATABASE_FILENAME), busy_timeout_ms=200
        )
        try:
            line = status_line(conn, session_id, kinds, time.time())
        finally:
            conn.close()
    except BaseException as exc:  # noqa: BLE001 - a status line must not show a traceback
        line = f"hybrid-router | unavailable ({type(exc).__name__})"
    stdout.write(line + "\n")
    stdout.flush()
    return 0
