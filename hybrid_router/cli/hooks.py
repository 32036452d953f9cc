"""`hybrid-router hook EVENT` and `hybrid-router statusline`, for `--help`.

Claude Code runs these as a fresh process on every event, so the console script's entry point
(entry.py) sends them straight to their stdlib-only modules and they normally never reach click.
"""

from __future__ import annotations

import sys

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("event")
def hook(event: str) -> None:
    """Run the Claude Code hook for EVENT (SessionStart, UserPromptSubmit, Stop, SessionEnd).

    Reads the event's JSON on stdin. Never fails Claude Code: any error is one line on stderr
    and exit 0.
    """
    from ..hooks.main import run_hook

    sys.exit(run_hook(event))


@click.command()
def statusline() -> None:
    """Print one status line for Claude Code (reads its status-line JSON on stdin)."""
    from ..hooks.statusline import run_statusline

    sys.exit(run_statusline())


def register(cli: click.Group) -> None:
    cli.add_command(hook)
    cli.add_command(statusline)
