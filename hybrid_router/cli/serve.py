"""`hybrid-router mcp` and `hybrid-router proxy`: the long-running surfaces.

This is also the one seam where two surfaces meet: the proxy serves the web dashboard beside the
Messages API (`/dashboard`), so the CLI builds the dashboard's routes and hands them to the proxy
as mounted routes; neither surface imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping

import click
from starlette.routing import BaseRoute

from ..core import home
from ..core.access import TOKEN_ENV
from .state import State, pass_state


def dashboard_mount(environ: Mapping[str, str]) -> list[BaseRoute]:
    """The dashboard's routes as the proxy serves them: the same log, the same token."""
    from ..dashboard import dashboard_routes

    token = environ.get(TOKEN_ENV) or None
    return dashboard_routes(str(home.database_path(environ)), token)


@click.command()
@pass_state
def mcp(state: State) -> None:
    """Run the MCP server on stdio (`claude mcp add hybrid-router -- hybrid-router mcp` runs it)."""
    from ..mcp_server.server import run_stdio  # the MCP SDK is heavy: only this command pays for it

    run_stdio(state.config_file)


@click.command()
@click.option(
    "--host", help="Address to listen on (default 127.0.0.1; others need HYBRID_ROUTER_TOKEN)."
)
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 3000).")
@click.option(
    "--idle-exit",
    "idle_minutes",
    type=click.FloatRange(min=0.1),
    help="Stop after this many minutes without requests (never during one).",
)
@pass_state
def proxy(state: State, host: str | None, port: int | None, idle_minutes: float | None) -> None:
    """Run the Anthropic-compatible proxy: point Claude Code's ANTHROPIC_BASE_URL at it."""
    from ..proxy.server import ProxyStartError, serve

    state.loaded()  # a broken config is one line here, before the server starts
    mounted = dashboard_mount(home.load_environment())
    idle = idle_minutes * 60 if idle_minutes else None
    try:
        serve(state.config_file, host, port, mounted, idle_exit_seconds=idle)
    except (ValueError, ProxyStartError) as exc:
        raise click.ClickException(str(exc)) from None


def register(cli: click.Group) -> None:
    cli.add_command(mcp)
    cli.add_command(proxy)
