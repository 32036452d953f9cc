"""Connection limits (issue 13, point 9): the proxy's server closes connections that send
nothing, send a request head or body too slowly, or sit idle after an answer; a head over the
size limit is refused; after a 413 the connection is closed — the client still reads its answer —
instead of reading the rest of the body."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from proxy_server import config_data, free_port

from hybrid_router.config.loading import parse_config
from hybrid_router.proxy import server as proxy_server
from hybrid_router.proxy.app import create_app


@contextmanager
def serving(router_home: Path, max_body_bytes: int = 10_000) -> Iterator[int]:
    data = config_data()
    data["proxy"].update(probeOnStart=False, maxBodyBytes=max_body_bytes)
    app = create_app(
        environ={"HYBRID_ROUTER_HOME": str(router_home)},
        config=parse_config(data, "test-config.json"),
    )
    port = free_port()
    server = uvicorn.Server(
        proxy_server.server_config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_server, "HEAD_TIMEOUT_SECONDS", 0.6)
    monkeypatch.setattr(proxy_server, "BODY_IDLE_SECONDS", 0.6)
    monkeypatch.setattr(proxy_server, "BODY_TIMEOUT_SECONDS", 1.5)
    monkeypatch.setattr(proxy_server, "KEEP_ALIVE_SECONDS", 1.0)
    monkeypatch.setattr(proxy_server, "MAX_HEAD_BYTES", 16 * 1024)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _closed_within(sock: socket.socket, seconds: float, drip: bytes = b"") -> float:
    """Seconds until the server closes `sock` (reading and discarding what it sends), while
    sending `drip` every 0.1 s; fails if it is still open after `seconds`."""
    started = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - started < seconds:
        if drip:
            try:
                sock.sendall(drip)
            except OSError:
                return time.monotonic() - started
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    raise AssertionError(f"the connection is still open after {seconds} s")


def _head(path: str = "/v1/messages", length: int | None = None, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", "content-type: application/json"]
    if length is not None:
        lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def test_a_connection_that_sends_nothing_is_closed(router_home: Path, short_limits: None) -> None:
    with serving(router_home) as port:
        sockets = [_connect(port) for _ in range(50)]
        waited = [_closed_within(sock, 5) for sock in sockets]
        assert max(waited) < 3
        for sock in sockets:
            sock.close()


def test_a_head_sent_slowly_is_cut_off(router_home: Path, short_limits: None) -> None:
    with serving(router_home) as port, _connect(port) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        assert _closed_within(sock, 5, drip=b"x-slow: 1\r\n") < 3


def test_a_body_that_stops_or_crawls_is_cut_off(router_home: Path, short_limits: None) -> None:
    with serving(router_home) as port:
        with _connect(port) as sock:  # stops after the head
            sock.sendall(_head(length=100))
            assert _closed_within(sock, 5) < 3
        with _connect(port) as sock:  # a byte every 0.1 s: never idle, but too slow in all
            sock.sendall(_head(length=1000) + b"{")
            assert _closed_within(sock, 6, drip=b" ") < 4


def test_an_idle_keep_alive_connection_is_closed(router_home: Path, short_limits: None) -> None:
    with serving(router_home) as port, _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert b"200 OK" in sock.recv(65536)
        assert _closed_within(sock, 5) < 3


def test_a_head_over_the_limit_is_refused(router_home: Path, short_limits: None) -> None:
    with serving(router_home) as port, _connect(port) as sock:
        sock.sendall(_head(length=2, extra=f"x-big: {'a' * 20_000}\r\n") + b"{}")
        answer = b""
        sock.settimeout(5)
        while chunk := sock.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["type"] == "error"


def test_after_a_413_the_connection_closes_and_the_client_reads_it(router_home: Path) -> None:
    with serving(router_home, max_body_bytes=10_000) as port, _connect(port) as sock:
        sock.sendall(_head(length=50_000_000))  # declared far over the limit
        sock.settimeout(0.2)
        answer = b""
        sent = 0
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 10:
            try:
                sock.sendall(b" " * 65536)  # the client goes on sending its body
                sent += 65536
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                closed = True
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"connection: close" in answer.lower()
        assert sent < 50_000_000  # the rest of the body was never read
        assert closed or time.monotonic() - started < 10
