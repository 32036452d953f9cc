"""`hybrid-router monitor`: the dashboard in the terminal, one frame at a time.

A frame is plain text built from the same numbers as `stats` (compute_stats) and the log's most
recent rows; the live loop clears the screen with ANSI and redraws it every few seconds.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Collection
from contextlib import closing
from datetime import datetime

import click

from ..core.outcomes import SOURCES
from ..log.queries import LogFilter, latest
from ..log.report import money, period_label, recent_text, stats_text
from ..log.stats import Stats, compute_stats
from .state import SINCE_HELP, State, open_log, parse_period

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


def local_requests(stats: Stats, local_providers: set[str]) -> int:
    return sum(p.requests for p in stats.providers if p.provider in local_providers)


def frame(
    conn: sqlite3.Connection,
    *,
    since: float | None,
    source: str | None = None,
    recent: int = 10,
    local_providers: Collection[str] = frozenset(),
    now: float | None = None,
    interval: float | None = None,
) -> str:
    """One frame of the dashboard, as text."""
    now = time.time() if now is None else now
    stats = compute_stats(conn, since=since, until=now, source=source)
    local = set(local_providers)
    stamp = datetime.fromtimestamp(now).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    refresh = f"refresh {interval:g}s, Ctrl-C to quit" if interval else "one frame"
    scope = f", source {source}" if source else ""
    lines = [f"hybrid-router monitor | {period_label(stats)}{scope} | {stamp} | {refresh}", ""]

    local_count = local_requests(stats, local)
    share = 100.0 * local_count / stats.requests if stats.requests else 0.0
    classified = sum(stats.classified.values())
    lines.append(
        f"Requests {stats.requests:,}   Decisions {stats.decisions:,}   "
        f"Classified only {classified:,}"
    )
    lines.append(f"Local {share:.1f}% ({local_count:,} of {stats.requests:,} requests)")
    lines.append(
        f"Cost {money(stats.cost)}   Without router {money(stats.baseline_cost)}   "
        f"Saved {money(stats.savings)} ({stats.savings_percent:.1f}%)"
    )
    lines.append(f"Fallbacks {stats.fallbacks:,}   Errors {stats.errors:,}")
    if stats.outcomes:
        outcomes = ", ".join(
            f"{name} {count:,}"
            for name, count in sorted(stats.outcomes.items(), key=lambda i: -i[1])
        )
        lines.append(f"Outcomes: {outcomes}")
    lines.append("")
    lines.append("Providers")
    if stats.providers:
        table = stats_text(stats).splitlines()
        # The provider table of `stats` (header, rule, one row per provider), without the totals
        # that are already shown above.
        start = next(i for i, line in enumerate(table) if line.startswith("provider"))
        end = start + 2 + len(stats.providers)
        lines.extend(f"  {line}" for line in table[start:end])
    else:
        lines.append("  No requests in this period yet.")
    if recent:
        lines.append("")
        lines.append("Recent decisions")
        flt = LogFilter(sources=(source,) if source else (), since=since)
        rows = list(reversed(latest(conn, flt, recent)))  # newest first, as `stats --recent`
        lines.extend(f"  {line}" for line in recent_text(rows).splitlines())
    return "\n".join(lines)


def run_live(
    draw: Callable[[], str],
    write: Callable[[str], None],
    *,
    interval: float,
    frames: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Clear and redraw every `interval` seconds until Ctrl-C (or `frames` frames); returns the
    number of frames drawn. The cursor is hidden while it runs and always shown again."""
    drawn = 0
    write(HIDE_CURSOR)
    try:
        while frames is None or drawn < frames:
            write(CLEAR + draw() + "\n")
            drawn += 1
            if frames is not None and drawn >= frames:
                break
            sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        write(SHOW_CURSOR)
    return drawn


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Print one frame and exit (no screen clearing).")
@click.option("--since", default="all", show_default=True, help=SINCE_HELP)
@click.option("--source", type=click.Choice(SOURCES), help="Only decisions from this surface.")
@click.option(
    "--recent",
    type=click.IntRange(0, 100),
    default=10,
    show_default=True,
    help="How many recent decisions to show.",
)
@click.option(
    "--frames", type=click.IntRange(1), hidden=True, help="Stop after this many frames (for tests)."
)
@click.pass_context
def monitor(
    ctx: click.Context,
    interval: float,
    once: bool,
    since: str,
    source: str | None,
    recent: int,
    frames: int | None,
) -> None:
    """Live dashboard: requests, share local, providers, cost, savings, errors, recent decisions.

    Redraws every --interval seconds until Ctrl-C; --once prints a single frame.
    """
    from ..config import is_local

    since_ts = parse_period(since)
    config = ctx.ensure_object(State).loaded().config
    local = {name for name, provider in config.providers.items() if is_local(provider)}
    with closing(open_log()) as conn:

        def draw() -> str:
            # A relative period ("30m") slides with the clock; an absolute one stays put.
            start = parse_period(since) if since_ts is not None else None
            return frame(
                conn,
                since=start,
                source=source,
                recent=recent,
                local_providers=local,
                interval=None if once else interval,
            )

        if once:
            click.echo(draw())
            return

        def write(text: str) -> None:
            click.echo(text, nl=False, color=True)  # the ANSI redraw, even when piped
            sys.stdout.flush()

        run_live(draw, write, interval=interval, frames=frames)


def register(cli: click.Group) -> None:
    cli.add_command(monitor)
