"""`hybrid-router dashboard`: the web dashboard on its own, without the proxy."""

from __future__ import annotations

import threading
import webbrowser

import click

from ..core import home
from ..core.access import TOKEN_ENV
from .state import State, pass_state

DEFAULT_PORT = 3001


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (anything but loopback needs HYBRID_ROUTER_TOKEN).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help="Port."
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=False,
    show_default=True,
    help="Open the page in the default web browser once the server is up.",
)
@pass_state
def dashboard(state: State, host: str, port: int, open_browser: bool) -> None:
    """Serve the web dashboard of the decision log (read-only) at http://HOST:PORT/dashboard.

    Charts of savings over time, provider mix, rule hits, fallbacks and errors, and latency
    percentiles; the page refreshes itself. The proxy serves the same page at /dashboard.
    Listening beyond loopback needs HYBRID_ROUTER_TOKEN, which the page then needs too: open
    /dashboard?token=TOKEN (API clients may send x-api-key or Authorization: Bearer).
    """
    import uvicorn

    from ..core.access import is_loopback
    from ..dashboard.app import create_dashboard_app
    from ..install.proxy_env import client_host
    from ..proxy.server import ProxyStartError, bind

    environ = home.load_environment()
    token = environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        raise click.ClickException(
            f"listening on {host} needs {TOKEN_ENV}: anyone who can reach the port could read "
            "your decision log"
        )
    database = str(home.database_path(environ))
    allowed = state.loaded().config.proxy  # the same allowed origins and hosts as the proxy
    app = create_dashboard_app(
        database,
        token=token if not is_loopback(host) else None,
        allowed_origins=allowed.allowed_origins,
        allowed_hosts=allowed.allowed_hosts,
    )
    try:
        sock = bind(host, port)  # before anything is announced: a busy port is one line
    except ProxyStartError as exc:
        raise click.ClickException(str(exc)) from None
    port = sock.getsockname()[1]
    url = f"http://{client_host(host)}:{port}/dashboard"
    click.echo(f"hybrid-router dashboard on {url}  (log: {database})", err=True)
    if not is_loopback(host):
        click.echo(f"open {url}?token=<your {TOKEN_ENV}>", err=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


def register(cli: click.Group) -> None:
    cli.add_command(dashboard)
