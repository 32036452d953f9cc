"""`hybrid-router proxy`: bind, say how to point Claude Code at it, serve until stopped.

The port is bound before anything is announced, so a busy port is one clear error and never a
banner followed by uvicorn's traceback. A proxy started by the launcher (`hybrid-router claude`)
stops by itself after a stretch without requests (`idle_exit_seconds`), never during one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from ..config.loading import load_config
from ..core import home
from ..install.proxy_env import proxy_env_for
from ..install.templates import load_templates
from .app import create_app

IDLE_CHECK_SECONDS = 5.0


class ProxyStartError(Exception):
    """The proxy cannot start (a busy port, an address that is not this machine's): one line."""


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, for the server to listen on."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ProxyStartError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == 98 else (exc.strerror or str(exc))
        raise ProxyStartError(f"cannot listen on {host}:{port}: {why}") from exc
    return sock


class IdleExit:
    """An ASGI wrapper that asks the server to stop once no HTTP request has been in flight for
    `seconds` (checked every few seconds by a daemon thread)."""

    def __init__(self, app: Any, seconds: float, stop: Any) -> None:
        self.app = app
        self.seconds = seconds
        self.stop = stop
        self.in_flight = 0
        self.last_activity = time.monotonic()
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, name="hybrid-router-idle", daemon=True).start()

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.last_activity = time.monotonic()

    def _watch(self) -> None:
        while True:
            time.sleep(min(IDLE_CHECK_SECONDS, self.seconds))
            with self.lock:
                idle = not self.in_flight and time.monotonic() - self.last_activity >= self.seconds
            if idle:
                self.stop()
                return


def serve(
    config_file: Path | None,
    host: str | None,
    port: int | None,
    mounted: Sequence[BaseRoute] = (),
    idle_exit_seconds: float | None = None,
) -> None:
    """Run the proxy (with `mounted` routes beside its own) until Ctrl-C, or until it has been
    idle for `idle_exit_seconds`."""
    import uvicorn

    environ = home.load_environment()
    config = load_config(config_file, environ).config
    host = host or config.proxy.host
    port = config.proxy.port if port is None else port
    app: Any = create_app(
        config_file, environ=dict(os.environ), host=host, config=config, mounted=mounted
    )
    sock = bind(host, port)
    # uvloop and httptools (when installed, as the package requires) make the server side of
    # every request several times cheaper than asyncio + h11 in pure Python.
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, loop="auto", http="auto")
    )
    if idle_exit_seconds:
        server.config.app = IdleExit(app, idle_exit_seconds, lambda: _stop(server))
    bound_port = sock.getsockname()[1]
    env_block = proxy_env_for(load_templates().proxy_env, config, environ, host, bound_port)
    print(f"hybrid-router proxy on http://{host}:{bound_port}", file=sys.stderr)
    print(
        "Claude Code settings (~/.claude/settings.json or .claude/settings.json; "
        "`hybrid-router install --proxy` writes them, `hybrid-router claude` passes them):",
        file=sys.stderr,
    )
    print(json.dumps({"env": env_block}, indent=2), file=sys.stderr)
    if "ANTHROPIC_AUTH_TOKEN" not in env_block:
        print(
            "ANTHROPIC_API_KEY is not set for the proxy: keep your own key (or login token) in "
            "Claude Code; the proxy forwards it to Anthropic for the premium routes.",
            file=sys.stderr,
        )
    if idle_exit_seconds:
        print(f"(stops after {idle_exit_seconds / 60:g} minutes without requests)", file=sys.stderr)
    server.run(sockets=[sock])


def _stop(server: Any) -> None:
    server.should_exit = True
