"""`hybrid-router setup`, `monitor` and `logs`: thin over setup_flow.py, monitor.py and logs.py.

Those modules are imported inside the commands: cli.py registers these on every start.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from .store import SOURCES

_OUTCOMES = ("ok", "fallback", "error", "refused", "truncated", "declined", "routed")
_SINCE_HELP = "Period: 30m, 24h, 7d, 2w, today, all, or an ISO date."


def _since(value: str) -> float | None:
    from .stats import PeriodError, parse_since

    try:
        return parse_since(value)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _open_log() -> sqlite3.Connection:
    from .cli import open_log  # at call time: cli imports this module to register its commands

    return open_log()


# --- setup ---------------------------------------------------------------------------------------


@click.command()
@click.option("--yes", "-y", is_flag=True,
              help="Answer every question with its default (pull the models, install).")
@click.option("--pull/--no-pull", default=None,
              help="Pull the missing recommended Ollama models (default: ask).")
@click.option("--install/--no-install", "install_", default=None,
              help="Install into Claude Code at the end (default: ask).")
@click.option("--scope", type=click.Choice(["user", "project"]), default="user",
              show_default=True, help="Where `install` writes (see `hybrid-router install`).")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.option("--doctor/--no-doctor", default=True, show_default=True,
              help="Check every backend at the end, as `hybrid-router doctor` does.")
@click.option("--no-tools", is_flag=True,
              help="Doctor without the tool-call round trips (faster).")
@click.pass_context
def setup(ctx: click.Context, yes: bool, pull: bool | None, install_: bool | None, scope: str,
          force: bool, doctor: bool, no_tools: bool) -> None:
    """Set everything up: config, .env, Ollama and its models, API keys, doctor, install.

    Nothing is downloaded or installed without consent: questions on a terminal, or the
    flags. Exit 0 when ready, 3 when Ollama is not reachable (install instructions are
    printed), 4 when setup finished but something is not ready (a model missing, a pull
    failed, a tier doctor finds unusable), 1 on an error.
    """
    from .setup_flow import SetupOptions, run_setup

    state = ctx.obj
    config_file: Path | None = getattr(state, "config_file", None)
    opts = SetupOptions(yes=yes, pull=pull, install=install_, scope=scope, force=force,
                        doctor=doctor, no_tools=no_tools, config_file=config_file)
    ctx.exit(run_setup(ctx, opts))


# --- monitor -------------------------------------------------------------------------------------


@click.command()
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one frame and exit (no screen clearing).")
@click.option("--since", default="all", show_default=True, help=_SINCE_HELP)
@click.option("--source", type=click.Choice(SOURCES), help="Only decisions from this surface.")
@click.option("--recent", type=click.IntRange(0, 100), default=10, show_default=True,
              help="How many recent decisions to show.")
@click.option("--frames", type=click.IntRange(1), hidden=True,
              help="Stop after this many frames (for tests).")
@click.pass_context
def monitor(ctx: click.Context, interval: float, once: bool, since: str, source: str | None,
            recent: int, frames: int | None) -> None:
    """Live dashboard: requests, share local, providers, cost, savings, errors, recent decisions.

    Redraws every --interval seconds until Ctrl-C; --once prints a single frame.
    """
    from . import monitor as mon
    from .config import is_local

    since_ts = _since(since)
    local: set[str] = {"ollama"}
    state = ctx.obj
    if hasattr(state, "loaded"):
        config = state.loaded().config
        local = {name for name, provider in config.providers.items() if is_local(provider)}
    with closing(_open_log()) as conn:

        def draw() -> str:
            # A relative period ("30m") slides with the clock; an absolute one stays put.
            start = _since(since) if since_ts is not None else None
            return mon.frame(conn, since=start, source=source, recent=recent,
                             local_providers=local, interval=None if once else interval)

        if once:
            click.echo(draw())
            return

        def write(text: str) -> None:
            click.echo(text, nl=False, color=True)  # the ANSI redraw, even when piped
            sys.stdout.flush()

        mon.run_live(draw, write, interval=interval, frames=frames)


# --- logs ----------------------------------------------------------------------------------------


@click.command()
@click.option("--provider", "providers", multiple=True, help="Only this provider (repeatable).")
@click.option("--rule", "rules", multiple=True, help="Only this route or hard rule (repeatable).")
@click.option("--outcome", "outcomes", multiple=True, type=click.Choice(_OUTCOMES),
              help="Only this outcome (repeatable).")
@click.option("--source", "sources", multiple=True, type=click.Choice(SOURCES),
              help="Only this surface (repeatable).")
@click.option("--session", help="Only this Claude Code session.")
@click.option("--since", default="all", show_default=True, help=_SINCE_HELP)
@click.option("--limit", "-n", type=click.IntRange(0, 1_000_000), default=20, show_default=True,
              help="How many of the newest matching rows to print first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new rows until Ctrl-C.")
@click.option("--show-prompts", is_flag=True,
              help="Include prompt text, for rows that stored it (storePrompts: true).")
@click.option("--poll-interval", type=click.FloatRange(0.01, 60), default=0.5, hidden=True)
@click.option("--follow-seconds", type=click.FloatRange(0), hidden=True,
              help="Stop following after this many seconds (for tests).")
def logs(providers: tuple[str, ...], rules: tuple[str, ...], outcomes: tuple[str, ...],
         sources: tuple[str, ...], session: str | None, since: str, limit: int, as_json: bool,
         follow: bool, show_prompts: bool, poll_interval: float,
         follow_seconds: float | None) -> None:
    """The newest decisions (oldest first, as tail), filtered; --follow for new ones."""
    from . import logs as lg

    flt = lg.LogFilter(providers=providers, rules=rules, outcomes=outcomes, sources=sources,
                       session=session, since=_since(since), show_prompts=show_prompts)
    render = lg.json_line if as_json else lg.text_line

    def emit(row: dict[str, Any]) -> None:
        click.echo(render(row))
        sys.stdout.flush()

    with closing(_open_log()) as conn:
        mark = lg.max_id(conn)
        rows = lg.latest(conn, flt, limit, up_to_id=mark)
        for row in rows:
            emit(row)
        if not follow:
            if not rows and not as_json:
                click.echo("No matching decisions.", err=True)
            return
        try:
            lg.follow(conn, flt, mark, emit, poll_seconds=poll_interval,
                      stop_after=follow_seconds)
        except KeyboardInterrupt:
            pass
