"""The `hybrid-router` command line: thin over the services (parse, call, print).

The group lives here; each command group lives in a module of its own that registers itself on
the group it is handed (`register(cli)`), so no command module imports the CLI back. Heavy
imports (the MCP SDK, the proxy, probes) happen inside the commands that need them.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click

from .. import __version__
from . import (
    configure,
    dashboard,
    doctor,
    hooks,
    install,
    launch,
    logs,
    monitor,
    profiles,
    route,
    serve,
    setup,
    stats,
)
from .state import State


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hybrid-router")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HYBRID_ROUTER_CONFIG",
    help="Routing config to use instead of <home>/router-config.json.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Route Claude Code work to free local and cloud models; keep Anthropic for what needs it.

    Everything the tool writes lives in ~/.hybrid-router, or in $HYBRID_ROUTER_HOME when set.
    """
    ctx.obj = State(config_file)


for _module in (
    route,
    configure,
    profiles,
    stats,
    serve,
    dashboard,
    hooks,
    install,
    launch,
    doctor,
    setup,
    monitor,
    logs,
):
    _module.register(cli)


def main() -> None:
    try:
        cli(prog_name="hybrid-router")
    except (OSError, sqlite3.Error) as exc:
        # The home or the log is unwritable, locked or damaged: say so in one line, no traceback.
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
