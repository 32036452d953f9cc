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
from .errors import error_body, request_id

IDLE_CHECK_SECONDS = 5.0
# Connection limits. A request's head must arrive whole within HEAD_TIMEOUT_SECONDS of its first
# byte (of the connection, for the first request) and hold at most MAX_HEAD_BYTES; its body may
# not pause for more than BODY_IDLE_SECONDS nor take more than BODY_TIMEOUT_SECONDS in all. An
# idle keep-alive connection closes after KEEP_ALIVE_SECONDS (uvicorn's timer). A connection
# closed while a body is still arriving (after a 413, a 401...) is half-closed: the answer goes
# out, what the client still sends is read and dropped for LINGER_SECONDS at most, then closed
# (closing at once would reset the connection and lose the answer).
HEAD_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 64 * 1024
BODY_IDLE_SECONDS = 15.0
BODY_TIMEOUT_SECONDS = 120.0
KEEP_ALIVE_SECONDS = 5.0
LINGER_SECONDS = 2.0


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


def server_config(app: Any, **options: Any) -> Any:
    """uvicorn's config for the proxy (a `uvicorn.Config`): httptools with the limits above,
    uvloop when installed."""
    import uvicorn

    return uvicorn.Config(
        app,
        http=guarded_protocol(),
        loop="auto",
        timeout_keep_alive=int(KEEP_ALIVE_SECONDS),
        **options,
    )


def guarded_protocol() -> Any:
    """The HTTP/1.1 protocol class, with the connection limits (see above)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, with deadlines on a request's head and body and a
        lingering close (see the limits above)."""

        head_timeout = HEAD_TIMEOUT_SECONDS
        max_head_bytes = MAX_HEAD_BYTES
        body_idle = BODY_IDLE_SECONDS
        body_timeout = BODY_TIMEOUT_SECONDS
        linger = LINGER_SECONDS

        def connection_made(self, transport: Any) -> None:
            self.phase = "head"  # head, body (arriving), app (answering), idle (keep-alive)
            self.phase_started = self.last_data = time.monotonic()
            self.head_bytes = 0
            self.lingering = False
            self.deadline: Any = None
            self.raw_transport = transport
            wrapped: Any = _Transport(transport, self)
            super().connection_made(wrapped)
            self._arm(self.head_timeout)

        def data_received(self, data: bytes) -> None:
            if self.lingering:
                return  # the rest of a body no one will read
            self.last_data = time.monotonic()
            if self.phase == "idle":  # the next request on a keep-alive connection
                self._enter("head", self.head_timeout)
            super().data_received(data)
            if self.phase == "head":  # the head did not end in this chunk
                self.head_bytes += len(data)
                if self.head_bytes > self.max_head_bytes and not self.transport.is_closing():
                    self._refuse_head()

        def on_headers_complete(self) -> None:
            if self.lingering:
                return
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.max_head_bytes:
                self._refuse_head()  # the request goes no further
                return
            self._enter("body", self.body_idle)
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self.lingering:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self.lingering:
                return
            self.phase = "app"
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.phase == "app":
                self.phase = "idle"  # uvicorn's keep-alive timer runs now

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _enter(self, phase: str, limit: float) -> None:
            self.phase = phase
            self.phase_started = time.monotonic()
            self.head_bytes = 0
            self._arm(limit)

        def _arm(self, delay: float) -> None:
            self._disarm()
            self.deadline = self.loop.call_later(delay, self._expire)

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _expire(self) -> None:
            self.deadline = None
            if self.phase not in ("head", "body") or self.transport.is_closing():
                return
            now = time.monotonic()
            if self.phase == "head":
                due = self.phase_started + self.head_timeout
            else:
                due = min(self.last_data + self.body_idle, self.phase_started + self.body_timeout)
            if due > now:
                self._arm(due - now)
                return
            # An incomplete request: no one is answered (the app, if it was reading the body,
            # sees the client gone).
            self.raw_transport.close()

        def _refuse_head(self) -> None:
            limit = f"{self.max_head_bytes:,}"
            body = error_body(431, f"the request head is over {limit} bytes", request_id())
            self.raw_transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: "
                b"application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            self.phase = "body"  # what follows is dropped
            self.transport.close()

        def linger_then_close(self) -> None:
            """Half-close: the answer (already written) goes out with a FIN; what the client
            still sends is dropped until it closes or LINGER_SECONDS pass."""
            raw = self.raw_transport
            self.lingering = True
            self._disarm()
            try:
                raw.write_eof()
                raw.resume_reading()
            except (OSError, RuntimeError):
                raw.close()
                return
            self.deadline = self.loop.call_later(self.linger, raw.close)

    return GuardedHttpTools


class _Transport:
    """The transport as uvicorn's protocol sees it: closing it while a request's body is still
    arriving lingers (see LINGER_SECONDS) instead of resetting the connection."""

    def __init__(self, raw: Any, protocol: Any) -> None:
        self.raw = raw
        self.protocol = protocol
        self.closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def close(self) -> None:
        if self.closing or self.raw.is_closing():
            return
        self.closing = True
        if self.protocol.phase == "body" and self.raw.can_write_eof():
            self.protocol.linger_then_close()
        else:
            self.raw.close()

    def is_closing(self) -> bool:
        return self.closing or bool(self.raw.is_closing())


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
    server = uvicorn.Server(server_config(app, log_level="warning", access_log=False))
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
