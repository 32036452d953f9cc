"""A small HTTP/1.1 client for the proxy's upstream calls: keep-alive pools, TLS, timeouts.

Every proxied request makes one upstream call, and with httpx that call cost more CPU than
everything else the proxy does (request and response objects, an h11 state machine in pure
Python, anyio streams). This client does only what an upstream call needs — one POST with a
body in memory, a response read as it arrives — on asyncio protocols with the httptools parser
(a C library). Probes, version checks and the other occasional calls keep using httpx.

Errors are `TransportError`s that say which phase failed (connect, write, read), so the caller
can tell "never reached" from "broke off"; the proxy maps them into the `BackendError` family at
one boundary (upstream.py). Header values are never part of an error message: they carry API
keys.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import enum
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools

# A connection's unread body is capped: past it, the socket stops being read until the
# consumer takes what is buffered (a slow client must not make the proxy buffer a whole answer).
_HIGH_WATER = 1 << 20
_CLOSE_DELIMITED = -1  # a body with neither length nor chunking ends when the server closes


class TransportError(Exception):
    """An upstream call failed at the transport level."""


class ConnectFailed(TransportError):
    """No connection (refused, unresolvable, TLS handshake failed)."""


class UpstreamTimeout(TransportError):
    """No progress within the phase's timeout. `phase`: connect, write or read."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"no {phase} progress within {seconds:g} s")
        self.phase = phase
        self.seconds = seconds


class ConnectionBroken(TransportError):
    """The connection closed or sent something that is not HTTP/1.1 mid-exchange."""


class ClosedBeforeAnswer(ConnectionBroken):
    """The connection closed before a byte of the answer came: on a connection that had been
    idle, the server had dropped it meanwhile, and the request may go again on a fresh one."""


class BadHeader(ValueError):
    """A header that cannot be sent (a line break in it). Its value is never shown: keys."""


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    write: float = 60.0


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    host_header: str


@lru_cache(maxsize=256)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectFailed(f"not an http(s) URL: {url}")
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(parts.scheme, host, port, path, host_header)


def _request_head(method: str, target: _Target, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{method} {target.path} HTTP/1.1", f"host: {target.host_header}"]
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("host", "content-length", "transfer-encoding", "connection"):
            continue
        if any(c in name or c in value for c in "\r\n\0"):
            raise BadHeader(f"the {name} header contains a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"content-length: {length}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    try:
        return head.encode("latin-1")
    except UnicodeEncodeError:
        return head.encode("utf-8")


class State(enum.Enum):
    """Where a connection is. Every change goes through `_Connection._enter`, along `_NEXT`:

        IDLE -> SENDING -> HEAD -> BODY -> COMPLETE -> IDLE (back in the pool) ...
        IDLE, SENDING, HEAD, BODY -> CLOSED   (closed by either side, or unusable)

    A complete answer stays COMPLETE when its socket goes (the answer is whole; only the
    connection cannot carry another one: `keep_alive` turns false)."""

    IDLE = "idle"  # connected, no exchange (in the pool, or just opened)
    SENDING = "sending"  # a request is going out; no byte of the answer yet
    HEAD = "receiving the head"  # the answer's status line and headers are arriving
    BODY = "receiving the body"
    COMPLETE = "complete"  # the whole answer is in
    CLOSED = "closed"


_IDLE, _SENDING, _HEAD, _BODY, _COMPLETE, _CLOSED = State  # module constants: the hot path
_NEXT: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.SENDING, State.CLOSED}),
    State.SENDING: frozenset({State.HEAD, State.CLOSED}),
    State.HEAD: frozenset({State.BODY, State.CLOSED}),
    State.BODY: frozenset({State.COMPLETE, State.CLOSED}),
    State.COMPLETE: frozenset({State.IDLE}),
    State.CLOSED: frozenset(),
}


class _Connection(asyncio.Protocol):
    """One socket to an upstream, reused for one exchange after another (see `State`).

    Besides its state a connection holds the exchange's data (status, headers, body chunks,
    `error`: the failure to raise to the reader) and asyncio's flow control (`_write_paused`,
    `_reading_paused`), which is the transport's business, not the exchange's."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.state = _IDLE
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reading_paused = False
        # One parser for the connection's life: after a complete answer it is ready for the next.
        self.parser = httptools.HttpResponseParser(self)
        self.chunks: collections.deque[bytes] = collections.deque()  # drained between exchanges
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.header_list: list[tuple[bytes, bytes]] = []
        self.body_length: int | None = None
        self.keep_alive = False  # decided when the answer completes
        self.error: TransportError | None = None
        self.buffered = 0

    def _enter(self, state: State) -> None:
        """The one place the state changes. A move `_NEXT` does not list is a bug here (in a
        parser callback it surfaces as an invalid answer, which closes the connection)."""
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"http1 connection: {self.state.name} -> {state.name}")
        self.state = state

    def begin(self) -> None:
        """A new exchange on this (idle) connection: its request is about to go out."""
        self._reset()
        self._enter(_SENDING)

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio classes

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is _SENDING:
            self._enter(_HEAD)
        elif state is not _HEAD and state is not _BODY:
            self.error = ConnectionBroken("the upstream sent data outside a response")
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = ConnectionBroken(f"the upstream's answer is not valid HTTP/1.1 ({exc})")
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        if state is _COMPLETE:
            self.keep_alive = False
        elif state is _BODY and self.body_length == _CLOSE_DELIMITED:
            self._enter(_COMPLETE)  # such a body ends when the server closes
        elif state is not _CLOSED:
            if state is not _IDLE and self.error is None:
                reason = f": {exc}" if exc else ""
                self.error = (
                    ClosedBeforeAnswer(
                        f"the upstream closed the connection before answering{reason}"
                    )
                    if state is _SENDING
                    else ConnectionBroken(f"the upstream closed the connection mid-answer{reason}")
                )
            self._enter(_CLOSED)
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer: the real one follows
            self.header_list = []
            return
        length: int | None = _CLOSE_DELIMITED
        for name, value in self.header_list:
            lowered = name.lower()
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                length = None
            elif lowered == b"content-length" and length == _CLOSE_DELIMITED:
                length = int(value) if value.strip().isdigit() else _CLOSE_DELIMITED
        if self.status in (204, 304):
            length = 0
        self.body_length = length
        self._enter(_BODY)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            return
        # Asked now: once feed_data() returns, the parser has reset for the next message.
        self.keep_alive = self.parser.should_keep_alive() and self.body_length != _CLOSE_DELIMITED
        self._enter(_COMPLETE)

    # -- used by the client and the response --------------------------------------------------

    def take_chunks(self) -> bytes:
        """Everything received so far, at once: the body chunks of one network read (often
        several SSE events) move on together."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, phase: str, seconds: float) -> None:
        """Until something arrives (or the connection can be written again)."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(seconds, _expire, waiter, phase, seconds)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def send(self, head: bytes, body: bytes, seconds: float) -> None:
        assert self.transport is not None
        self.transport.writelines((head, body))
        while self._write_paused and self.state is not _CLOSED:
            await self.wait("write", seconds)
        if self.error is not None:
            raise self.error

    async def wait_for_headers(self, seconds: float) -> None:
        while True:
            state = self.state
            if state is _BODY or state is _COMPLETE:
                return
            if self.error is not None:
                raise self.error
            if state is _CLOSED:
                raise ConnectionBroken("the upstream closed the connection before answering")
            await self.wait("read", seconds)

    def reusable(self) -> bool:
        return self.state is _COMPLETE and self.keep_alive

    def idle(self) -> None:
        """Back in the pool: anything the server sends now is an error (see data_received)."""
        self._enter(_IDLE)
        self.idle_since = time.monotonic()

    def close(self) -> None:
        if self.state is _COMPLETE:
            self.keep_alive = False
        elif self.state is not _CLOSED:
            self._enter(_CLOSED)
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None], phase: str, seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(phase, seconds))


class Response:
    """An upstream answer: status and headers at once, the body as it arrives."""

    def __init__(
        self, client: HttpClient, key: tuple[str, str, int], conn: _Connection, read_timeout: float
    ) -> None:
        self._client = client
        self._key = key
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout
        self.status_code = conn.status
        self.headers: dict[str, str] = {}
        for name, value in conn.header_list:
            lowered = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[lowered] = (
                f"{self.headers[lowered]}, {text}" if lowered in self.headers else text
            )
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        self._decoder = (
            zlib.decompressobj(wbits=47) if encoding in ("gzip", "deflate", "x-gzip") else None
        )
        if encoding not in ("identity", "", "gzip", "deflate", "x-gzip"):
            self._abandon()
            raise ConnectionBroken(
                f"the upstream answered with an unsupported content-encoding: {encoding}"
            )

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive, decompressed."""
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                if conn.chunks:
                    data = conn.take_chunks()
                    if self._decoder is not None:
                        try:
                            data = self._decoder.decompress(data)
                        except zlib.error as exc:
                            raise ConnectionBroken(
                                f"the upstream's compressed answer is corrupt ({exc})"
                            ) from exc
                    if data:
                        yield data
                    continue  # more may have come in meanwhile: it goes before the end
                state = conn.state
                if state is _COMPLETE:
                    break
                if conn.error is not None:
                    raise conn.error
                if state is _CLOSED:
                    raise ConnectionBroken("the upstream closed the connection mid-answer")
                await conn.wait("read", self._read_timeout)
        except BaseException:
            self._abandon()
            raise
        self._release()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines (for line-based streams such as OpenAI's server-sent events)."""
        pending = ""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # characters split across reads
        async for chunk in self.aiter_bytes():
            pending += decoder.decode(chunk)
            *lines, pending = pending.replace("\r\n", "\n").split("\n")
            for line in lines:
                yield line
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        """Done with the answer: a finished connection goes back to the pool, any other closes."""
        conn = self._conn
        if conn is None:
            return
        if conn.state is _COMPLETE and not conn.chunks:
            self._release()
        else:
            self._abandon()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client.give_back(self._key, conn)

    def _abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class HttpClient:
    """Pools of keep-alive connections per upstream (scheme, host, port)."""

    def __init__(self, max_idle_per_host: int = 32, idle_seconds: float = 30.0) -> None:
        self.max_idle_per_host = max_idle_per_host
        self.idle_seconds = idle_seconds  # below common server keep-alive timeouts
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import httpx2  # the same trust store the rest of the tool uses

            context = httpx2.create_ssl_context(trust_env=False)
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        """Send a POST; return once the answer's status and headers are in (body not read)."""
        target = _target(url)
        key = (target.scheme, target.host, target.port)
        head = _request_head("POST", target, headers, len(body))
        while True:
            conn = self._take_idle(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(target, timeouts.connect)
            conn.begin()
            try:
                await conn.send(head, body, timeouts.write)
                await conn.wait_for_headers(timeouts.read)
            except ClosedBeforeAnswer:
                conn.close()
                if reused:
                    continue  # the server had closed this idle connection: a fresh one will do
                raise
            except BaseException:
                conn.close()
                raise
            return Response(self, key, conn, timeouts.read)

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.state is _IDLE and now - conn.idle_since < self.idle_seconds:
                return conn
            conn.close()
        return None

    def give_back(self, key: tuple[str, str, int], conn: _Connection) -> None:
        if not conn.reusable():
            conn.close()
            return
        conn.idle()
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self.max_idle_per_host:
            idle.pop(0).close()
        idle.append(conn)

    async def _connect(self, target: _Target, seconds: float) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if target.scheme == "https" else None
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                ),
                seconds,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout("connect", seconds) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to {target.host}:{target.port} ({exc})") from exc
        return conn

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
