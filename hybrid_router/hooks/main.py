"""`hybrid-router hook EVENT`: the process Claude Code runs for a hook event.

It reads the event's JSON on stdin, does its work, prints what Claude Code should see, and exits
0 — always. Any failure (a broken config, a locked or corrupt database, bad input) becomes one
line on stderr: a hook must never break or slow down Claude Code.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

EVENTS = ("SessionStart", "UserPromptSubmit", "Stop", "SessionEnd")
# Hooks wait at most this long for a database another process holds (SessionEnd has 1.5 s).
HOOK_BUSY_TIMEOUT_MS = 400


def run_hook(
    event: str,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        output = _handle(event, stdin.read(), dict(os.environ) if environ is None else environ)
        if output:
            stdout.write(output)
            stdout.flush()
    except BaseException as exc:  # noqa: BLE001 - fail open, whatever happened
        message = str(exc).replace("\n", " ")[:300]
        stderr.write(f"hybrid-router hook {event}: {type(exc).__name__}: {message}\n")
    return 0


def _handle(event: str, raw: str, environ: dict[str, str]) -> str | None:
    from .fastjson import dumps, loads

    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r} (expected one of {', '.join(EVENTS)})")
    payload = loads(raw) if raw.strip() else {}
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object on stdin")

    # Imported here, not at the top: a failure to import is then one line on stderr, like any other.
    from ..core import home
    from ..log.database import connect
    from . import events
    from .table_cache import load_settings

    conn = connect(
        os.path.join(home.home_path(environ), home.DATABASE_FILENAME),
        busy_timeout_ms=HOOK_BUSY_TIMEOUT_MS,
    )
    try:
        if event == "UserPromptSubmit":
            hint = events.on_user_prompt(payload, load_settings(environ), conn, environ)
            if hint:
                return dumps(
                    {"hookSpecificOutput": {"hookEventName": event, "additionalContext": hint}}
                )
        elif event == "SessionStart":
            events.on_session_start(payload, load_settings(environ), conn)
        elif event == "Stop":
            note = events.on_stop(payload, conn)
            if note:
                return dumps({"systemMessage": note})
        else:
            events.on_session_end(payload, conn)
    finally:
        conn.close()
    return None
