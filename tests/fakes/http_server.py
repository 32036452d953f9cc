"""The plumbing the fake servers share: a stdlib `ThreadingHTTPServer` on 127.0.0.1 run in a
background thread, with every request recorded.

- `FakeHTTPServer`: start/stop (a context manager), `url`/`port`, the recorded `requests`,
  `requests_to`, `wait_for`, fault bookkeeping (`_add_fault`, `_take_faults`, `clear_faults`)
  and a `_sleep` that wakes (raising `Dropped`) when the server stops. A subclass sets
  `handler_class` (a `FakeHandler` subclass) and its labels.
- `FakeHandler`: HTTP/1.1 keep-alive, TCP_NODELAY, open connections tracked (so `stop()` can
  wake idle keep-alive threads), quiet logging, and the common read/record/send/chunked-stream
  helpers.
- `RecordedRequest`: one request as a fake received it.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = ["Dropped", "FakeHTTPServer", "FakeHandler", "FakeServer", "RecordedRequest"]


@dataclass
class RecordedRequest:
    """One request as the fake received it (recorded before any fault is applied)."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    body: Any  # parsed JSON, or None
    ts: float

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


R = TypeVar("R", bound=RecordedRequest)
T = TypeVar("T")
Headers = Mapping[str, str] | None


class Dropped(Exception):
    """The stream was cut on purpose (a drop fault), the client went away, or the server stops."""


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restart rebinds the same port right away
    fake: Any  # the FakeHTTPServer that owns it

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is routine here; anything else is a bug in the
        # fake, so let socketserver print its traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer
    server: FakeServer
    tcp_nodelay: ClassVar[bool] = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        if self.tcp_nodelay:
            # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
            # algorithm and delayed ACKs add 40 ms to every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, add=False)

    # -- reading ---------------------------------------------------------------------------

    def read_body(self) -> bytes:
        """The request body, by Content-Length or chunked transfer."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def record(self, method: str | None = None) -> Any:
        """Read the body, record the request with the fake (its `record_class`), return it."""
        raw = self.read_body()
        split = urlsplit(self.path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fake = self.server.fake
        rec = fake.record_class(
            method or self.command,
            split.path,
            parse_qs(split.query),
            {k.lower(): v for k, v in self.headers.items()},
            raw,
            body,
            time.time(),
        )
        fake._add(rec)
        return rec

    # -- writing ---------------------------------------------------------------------------

    def send_headers(self, status: int, *headers: Headers) -> None:
        """The status line and each group of headers, in order."""
        self.send_response(status)
        for group in headers:
            for name, value in (group or {}).items():
                self.send_header(name, value)
        self.end_headers()

    def send_bytes(self, status: int, payload: bytes, content_type: str, *headers: Headers) -> None:
        """A whole body with Content-Type and Content-Length (no body for HEAD)."""
        self.send_headers(
            status, {"Content-Type": content_type, "Content-Length": str(len(payload))}, *headers
        )
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def start_chunked(self, content_type: str, *headers: Headers, no_cache: bool = False) -> None:
        """A 200 with chunked transfer; send the body with `write_chunk`, then `end_chunked`."""
        head = {"Content-Type": content_type}
        if no_cache:
            head["Cache-Control"] = "no-cache"
        head["Transfer-Encoding"] = "chunked"
        self.send_headers(200, head, *headers)
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self, *, shutdown: bool = True) -> None:
        """Close the connection after this request (at once, with `shutdown`)."""
        self.close_connection = True
        if shutdown:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeHTTPServer(Generic[R]):
    """A fake server on 127.0.0.1; a context manager, or `start()` / `stop()`.

    Subclasses set `handler_class`, `record_class`, `name` (thread names) and `label` (error
    messages); `sticky_port` restarts on the port of the first start; `poll_interval` is how
    quickly `stop()` returns.
    """

    handler_class: ClassVar[type[FakeHandler]]
    record_class: ClassVar[type[Any]] = RecordedRequest
    name: ClassVar[str] = "fake-http"
    label: ClassVar[str] = "fake_http"
    sticky_port: ClassVar[bool] = True
    poll_interval: ClassVar[float] = 0.01

    def __init__(self) -> None:
        self.requests: list[R] = []
        self._faults: list[Any] = []  # each with a `times` (None: forever)
        self._cond = threading.Condition()
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on 127.0.0.1 (an OS-assigned port; with `sticky_port`, the same one after)."""
        server = FakeServer(
            ("127.0.0.1", self._port if self.sticky_port else 0), self.handler_class
        )
        server.fake = self
        self._port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            name=f"{self.name}-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection; wait for the handlers."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # interrupts `_sleep`
        server.shutdown()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:  # wake handler threads blocked on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()  # joins the handler threads (ThreadingMixIn.block_on_close)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._cond:
                if not self._conns:
                    break
            time.sleep(0.01)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._port, f"{type(self).__name__} was never started"
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once (raising `Dropped`) when the server stops."""
        if self._stopping.wait(seconds):
            raise Dropped

    # -- faults ----------------------------------------------------------------------------

    def _add_fault(self, fault: T) -> T:
        with self._cond:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    def _take_faults(self, match: Callable[[Any], bool] | None = None) -> list[Any]:
        """The faults that apply (all, or those `match` accepts), using up one of each one's
        `times` (None: forever)."""
        with self._cond:
            taken = [f for f in self._faults if match is None or match(f)]
            for fault in taken:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
            return taken

    # -- recording -------------------------------------------------------------------------

    def _add(self, rec: R) -> None:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._cond:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def requests_to(self, path: str, method: str | None = None) -> list[R]:
        with self._cond:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method)
            ]

    def wait_for(self, predicate: Callable[[list[R]], bool], timeout: float = 10.0) -> list[R]:
        """Block until `predicate(requests)` holds; raise AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.label}: condition not met after {timeout}s; "
                        f"requests: {[(r.method, r.path) for r in self.requests]}"
                    )
                self._cond.wait(remaining)
            return list(self.requests)
