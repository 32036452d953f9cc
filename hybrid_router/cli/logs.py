"""`hybrid-router logs`: the decision log, filtered, as lines or JSON Lines, optionally followed.

Prompt text is never read from the database unless the caller asks for it (`--show-prompts`);
rows only hold it when the config opted in (`storePrompts: true`).
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import click

from ..core.outcomes import OUTCOMES, SOURCES
from ..core.text import shown
from ..log.queries import LogFilter, latest, max_id
from ..log.queries import follow as follow_rows
from .state import SINCE_HELP, open_log, parse_period

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
    target = shown(f"{row['provider']}/{row['model']}")
    tokens = f"{row.get('input_tokens') or 0:,}/{row.get('output_tokens') or 0:,} tok"
    parts = [
        when,
        f"#{row['id']}".ljust(6),
        shown(row["source"]).ljust(5),
        shown(row["outcome"]).ljust(9),
        target.ljust(30),
        shown(row["rule"]).ljust(16),
        tokens.rjust(16),
        _money(row.get("cost")),
    ]
    saved = (row.get("baseline_cost") or 0.0) - (row.get("cost") or 0.0)
    if saved:
        parts.append(f"saved {_money(saved)}")
    if row.get("latency_ms") is not None:
        parts.append(f"{row['latency_ms']:,.0f} ms")
    if row.get("fallback_from"):
        parts.append(f"fallback from {shown(row['fallback_from'])}")
    if row.get("error_class"):
        parts.append(f"error {shown(row['error_class'])}")
    if row.get("session_id"):
        parts.append(f"session {shown(row['session_id'])}")
    line = "  ".join(parts)
    if row.get("prompt_text") is not None:
        prompt = shown(" ".join(str(row["prompt_text"]).split()))
        line += f"\n    prompt: {prompt}"
    return line


@click.command()
@click.option("--provider", "providers", multiple=True, help="Only this provider (repeatable).")
@click.option("--rule", "rules", multiple=True, help="Only this route or hard rule (repeatable).")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    type=click.Choice(OUTCOMES),
    help="Only this outcome (repeatable).",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(SOURCES),
    help="Only this surface (repeatable).",
)
@click.option("--session", help="Only this Claude Code session.")
@click.option("--since", default="all", show_default=True, help=SINCE_HELP)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(0, 1_000_000),
    default=20,
    show_default=True,
    help="How many of the newest matching rows to print first.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new rows until Ctrl-C.")
@click.option(
    "--show-prompts",
    is_flag=True,
    help="Include prompt text, for rows that stored it (storePrompts: true).",
)
@click.option("--poll-interval", type=click.FloatRange(0.01, 60), default=0.5, hidden=True)
@click.option(
    "--follow-seconds",
    type=click.FloatRange(0),
    hidden=True,
    help="Stop following after this many seconds (for tests).",
)
def logs(
    providers: tuple[str, ...],
    rules: tuple[str, ...],
    outcomes: tuple[str, ...],
    sources: tuple[str, ...],
    session: str | None,
    since: str,
    limit: int,
    as_json: bool,
    follow: bool,
    show_prompts: bool,
    poll_interval: float,
    follow_seconds: float | None,
) -> None:
    """The newest decisions (oldest first, as tail), filtered; --follow for new ones."""
    flt = LogFilter(
        providers=providers,
        rules=rules,
        outcomes=outcomes,
        sources=sources,
        session=session,
        since=parse_period(since),
        show_prompts=show_prompts,
    )
    line = json_line if as_json else text_line

    def emit(row: dict[str, Any]) -> None:
        click.echo(line(row))
        sys.stdout.flush()

    with closing(open_log()) as conn:
        mark = max_id(conn)
        rows = latest(conn, flt, limit, up_to_id=mark)
        for row in rows:
            emit(row)
        if not follow:
            if not rows and not as_json:
                click.echo("No matching decisions.", err=True)
            return
        try:
            follow_rows(
                conn, flt, mark, emit, poll_seconds=poll_interval, stop_after=follow_seconds
            )
        except KeyboardInterrupt:
            pass


def register(cli: click.Group) -> None:
    cli.add_command(logs)
