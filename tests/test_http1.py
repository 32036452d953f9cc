"""The proxy's upstream HTTP/1.1 client (hybrid_router/proxy/http1.py) against real servers on
127.0.0.1: raw asyncio servers that speak exactly the bytes each test needs (framing, keep-alive,
faults, flow control, TLS). Every scenario runs on the plain asyncio loop and on uvloop (what
the proxy runs on when uvicorn finds it).
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import hashlib
import ipaddress
import os
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

from hybrid_router.proxy.http1 import (
    BadHeader,
    ConnectFailed,
    ConnectionBroken,
    HttpClient,
    State,
    Timeouts,
    TransportError,
    UpstreamTimeout,
    _target,
)

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
    uvloop = None

FAST = Timeouts(connect=2.0, read=2.0, write=5.0)
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Runs a scenario to completion on a fresh event loop of the parametrized kind."""
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def runner(scenario: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=factory) as loop_runner:
            return loop_runner.run(scenario)

    return runner


# -- a scriptable upstream -------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the upstream parsed it off the wire."""

    request_line: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int  # which accepted TCP connection (0, 1, ...) carried it

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class Upstream:
    """An HTTP server on 127.0.0.1 whose every connection runs `handler` (with its index)."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    connections: int = 0
    seen: list[Seen] = field(default_factory=list)
    closed: set[int] = field(default_factory=set)  # connections the client closed (EOF seen)
    dropped: list[int] = field(default_factory=list)  # connections that dropped a request
    alpn: list[str | None] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    url: str = ""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        if exc_info[0] is None:
            assert not self.failures, self.failures

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        tls = writer.get_extra_info("ssl_object")
        if tls is not None:
            self.alpn.append(tls.selected_alpn_protocol())
        try:
            await self.handler(self, reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except (AssertionError, TimeoutError, ValueError) as exc:  # a broken script
            self.failures.append(exc)
        finally:
            writer.close()
            with suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def read_request(self, reader: asyncio.StreamReader, index: int) -> Seen | None:
        """The next request on this connection, or None when the client closed it in between."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                self.closed.add(index)
                return None
            raise
        request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines)]
        lengths = [value for name, value in headers if name.lower() == "content-length"]
        body = await reader.readexactly(int(lengths[0]) if lengths else 0)
        seen = Seen(request_line, headers, body, index)
        self.seen.append(seen)
        return seen

    async def wait_closed_by_client(self, reader: asyncio.StreamReader, index: int) -> None:
        """Until the client closes this connection (whatever else it sends is ignored)."""
        while await reader.read(65536):
            pass
        self.closed.add(index)


def answering(reply: bytes | Callable[[Seen], bytes] = OK) -> Handler:
    """A keep-alive server: every request on a connection gets `reply`, until the client closes."""

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        while (seen := await up.read_request(reader, index)) is not None:
            writer.write(reply(seen) if callable(reply) else reply)
            await writer.drain()

    return handler


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "\r\n".join([f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers])
    return head.encode() + b"\r\n\r\n" + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunked_head(*headers: str) -> bytes:
    head = "\r\n".join(["HTTP/1.1 200 OK", "transfer-encoding: chunked", *headers])
    return head.encode() + b"\r\n\r\n"


async def hang_forever() -> None:
    await asyncio.Event().wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- bodies ----------------------------------------------------------------------------------


def test_content_length_chunked_and_close_delimited_bodies_arrive_intact(run: Run) -> None:
    """The three ways an answer's end is framed all give the exact bytes, headers lowercased."""
    payload = bytes(range(256)) * 40

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        while (seen := await up.read_request(reader, index)) is not None:
            if seen.body == b"length":
                writer.write(response(payload, "Content-Type: application/octet-stream"))
            elif seen.body == b"chunked":
                writer.write(chunked_head("Content-Type: application/octet-stream"))
                for start in range(0, len(payload), 3000):
                    writer.write(chunk(payload[start : start + 3000]))
                    await writer.drain()
                    await asyncio.sleep(0.01)
                writer.write(b"0\r\n\r\n")
            else:  # neither length nor chunking: the body ends when the connection does
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
                for start in range(0, len(payload), 5000):
                    writer.write(payload[start : start + 5000])
                    await writer.drain()
                    await asyncio.sleep(0.01)
                return  # closes the connection
            await writer.drain()

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            for kind in (b"length", b"chunked", b"close"):
                answer = await client.post(up.url + "/", kind, {}, FAST)
                assert answer.status_code == 200
                assert answer.headers["content-type"] == "application/octet-stream"
                assert await answer.aread() == payload, kind
                await answer.aclose()

    run(scenario())


def test_chunked_body_is_yielded_as_it_arrives(run: Run) -> None:
    """aiter_bytes hands over the first chunk before the server has sent the rest of the answer;
    aiter_lines splits the same stream into lines."""
    first_received = asyncio.Event()

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        while await up.read_request(reader, index) is not None:
            writer.write(chunked_head() + chunk(b"data: one\n\n"))
            await writer.drain()
            await asyncio.wait_for(first_received.wait(), 1.5)  # the client must have it now
            for piece in (b"data: two\n\n", b"data: three\n\n"):
                await asyncio.sleep(0.02)
                writer.write(chunk(piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/stream", b"{}", {}, FAST)
            received = []
            async for data in answer.aiter_bytes():
                received.append(data)
                first_received.set()
            assert received[0] == b"data: one\n\n"
            assert b"".join(received) == b"data: one\n\ndata: two\n\ndata: three\n\n"
            await answer.aclose()

            first_received.clear()
            first_received.set()  # the second answer need not wait
            again = await client.post(up.url + "/stream", b"{}", {}, FAST)
            lines = [line async for line in again.aiter_lines()]
            assert lines == ["data: one", "", "data: two", "", "data: three", ""]

    run(scenario())


def test_aiter_lines_keeps_characters_split_across_chunks(run: Run) -> None:
    """A multi-byte UTF-8 character (or a CRLF) cut in two by the chunking still arrives whole:
    SSE streams carry any language's text."""
    text = "data: héllo wörld ✓ 🎉\r\n\r\ndata: [DONE]\r\n\r\n".encode()
    cuts = [text.index("é".encode()) + 1, text.index("🎉".encode()) + 2, text.index(b"\r\n") + 1]

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        writer.write(chunked_head())
        start = 0
        for end in [*sorted(cuts), len(text)]:
            writer.write(chunk(text[start:end]))
            await writer.drain()
            await asyncio.sleep(0.02)  # each piece is its own read on the client's side
            start = end
        writer.write(b"0\r\n\r\n")
        await up.wait_closed_by_client(reader, index)

    async def scenario() -> list[str]:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/v1/chat/completions", b"{}", {}, FAST)
            return [line async for line in answer.aiter_lines()]

    assert run(scenario()) == ["data: héllo wörld ✓ 🎉", "", "data: [DONE]", ""]


# -- keep-alive ------------------------------------------------------------------------------


KEEP_ALIVE_ANSWERS = {
    "content-length": response(b"answer"),
    "chunked": chunked_head() + chunk(b"ans") + chunk(b"wer") + b"0\r\n\r\n",
    "gzip": response(gzip.compress(b"answer"), "content-encoding: gzip"),
    "after 100 continue": b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"answer"),
    "no content": b"HTTP/1.1 204 No Content\r\n\r\n",
}


@pytest.mark.parametrize("framing", KEEP_ALIVE_ANSWERS)
def test_sequential_requests_share_one_connection(run: Run, framing: str) -> None:
    """Answers read to the end: the following requests go over the first one's connection, which
    stays open in the pool (what saves a TCP and TLS handshake per proxied request)."""
    expected = b"" if framing == "no content" else b"answer"

    async def scenario() -> None:
        async with Upstream(answering(KEEP_ALIVE_ANSWERS[framing])) as up:
            async with aclosing(HttpClient()) as client:
                for body in (b"first", b"second", b"third"):
                    answer = await client.post(up.url + "/v1/messages", body, {}, FAST)
                    assert await answer.aread() == expected
                    await answer.aclose()
                assert [seen.connection for seen in up.seen] == [0, 0, 0]
                assert up.connections == 1
                await asyncio.sleep(0.05)
                assert up.closed == set()  # still open, in the pool
            await asyncio.sleep(0.05)
            assert up.closed == {0}  # HttpClient.aclose closes the pool

    run(scenario())


def test_a_connection_walks_through_its_states(run: Run) -> None:
    """SENDING until a byte of the answer comes, BODY once the head is parsed, COMPLETE at the
    end of the body, IDLE back in the pool; a connection lost mid-body is CLOSED, and a move
    the state table does not list is refused."""
    release = asyncio.Event()

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        while (seen := await up.read_request(reader, index)) is not None:
            writer.write(chunked_head() + chunk(b"one"))
            await writer.drain()
            await release.wait()
            if seen.body == b"drop":
                return  # closes the connection mid-body
            writer.write(chunk(b"two") + b"0\r\n\r\n")
            await writer.drain()

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/", b"{}", {}, FAST)
            conn = answer._conn
            assert conn is not None and conn.state is State.BODY
            release.set()
            assert await answer.aread() == b"onetwo"
            assert conn.state is State.IDLE  # released to the pool
            release.clear()
            again = await client.post(up.url + "/", b"drop", {}, FAST)
            assert again._conn is conn and conn.state is State.BODY  # the same connection
            release.set()
            with pytest.raises(ConnectionBroken):
                await again.aread()
            assert conn.state is State.CLOSED
            with pytest.raises(RuntimeError, match="CLOSED -> SENDING"):
                conn.begin()

    run(scenario())


def test_connection_close_answer_is_not_reused(run: Run) -> None:
    """An answer saying `connection: close` retires its connection even if the server keeps the
    socket open: the next request opens a new one."""

    async def scenario() -> None:
        closing = answering(response(b"bye", "connection: close"))
        async with Upstream(closing) as up, aclosing(HttpClient()) as client:
            for _ in range(2):
                answer = await client.post(up.url + "/", b"x", {}, FAST)
                assert await answer.aread() == b"bye"
            assert up.connections == 2
            assert [seen.connection for seen in up.seen] == [0, 1]

    run(scenario())


def test_close_delimited_answer_is_not_reused(run: Run) -> None:
    """A body that ends with the connection cannot leave the connection in the pool."""

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            for _ in range(2):
                answer = await client.post(up.url + "/", b"x", {}, FAST)
                assert await answer.aread() == b"until the end"
            assert up.connections == 2

    run(scenario())


def test_idle_connections_expire(run: Run) -> None:
    """A pooled connection is reused within `idle_seconds`, and closed and replaced after."""

    async def scenario() -> None:
        async with Upstream(answering()) as up, aclosing(HttpClient(idle_seconds=0.1)) as client:
            for pause in (0.0, 0.0, 0.2, 0.0):
                await asyncio.sleep(pause)
                answer = await client.post(up.url + "/", b"x", {}, FAST)
                assert await answer.aread() == b"ok"
            assert [seen.connection for seen in up.seen] == [0, 0, 1, 1]
            await asyncio.sleep(0.05)
            assert up.closed == {0}  # the expired one was closed

    run(scenario())


# -- stale pooled connections ----------------------------------------------------------------


@pytest.mark.parametrize("pause", [0.0, 0.05])
def test_server_closing_an_idle_connection_is_invisible(run: Run, pause: float) -> None:
    """The server closes a keep-alive connection right after answering; the next post still
    succeeds, on a new connection, and the server gets its body exactly once."""

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        seen = await up.read_request(reader, index)
        assert seen is not None
        writer.write(response(seen.body))  # no `connection: close`, yet closed straight away
        await writer.drain()

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            first = await client.post(up.url + "/", b"one", {}, FAST)
            assert await first.aread() == b"one"
            await asyncio.sleep(pause)
            second = await client.post(up.url + "/", b"two", {}, FAST)
            assert await second.aread() == b"two"
            assert up.connections == 2
            assert [(seen.body, seen.connection) for seen in up.seen] == [(b"one", 0), (b"two", 1)]

    run(scenario())


def test_request_lost_to_a_closing_idle_connection_is_retried_once(run: Run) -> None:
    """The race a pool always has: the request goes out on a reused connection the server is
    closing. It is sent again on a fresh connection, which answers it."""

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        seen = await up.read_request(reader, index)
        assert seen is not None
        writer.write(response(seen.body))
        await writer.drain()
        if index == 0 and await reader.read(1):  # the next request: dropped unanswered
            up.dropped.append(index)

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            first = await client.post(up.url + "/", b"one", {}, FAST)
            assert await first.aread() == b"one"
            second = await client.post(up.url + "/", b"two", {}, FAST)
            assert second.status_code == 200 and await second.aread() == b"two"
            assert up.dropped == [0]  # the request did go out on the reused connection first
            assert up.connections == 2
            assert [(seen.body, seen.connection) for seen in up.seen] == [(b"one", 0), (b"two", 1)]

    run(scenario())


def test_retry_happens_once_and_only_before_any_answer(run: Run) -> None:
    """A fresh connection that also fails is an error (no retry loop), and a reused connection
    that broke off mid-answer is an error too (the request is not replayed)."""

    async def drop_after_first(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        if index == 0:
            await up.read_request(reader, index)
            writer.write(OK)
            await writer.drain()
        if await reader.read(1):  # then every request is dropped unanswered
            up.dropped.append(index)

    async def half_answer_second(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        writer.write(OK)
        await writer.drain()
        if await up.read_request(reader, index) is not None:
            up.dropped.append(index)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-le")  # then the connection dies

    async def scenario() -> None:
        for handler in (drop_after_first, half_answer_second):
            async with Upstream(handler) as up, aclosing(HttpClient()) as client:
                first = await client.post(up.url + "/", b"one", {}, FAST)
                assert await first.aread() == b"ok"
                with pytest.raises(ConnectionBroken):
                    await client.post(up.url + "/", b"two", {}, FAST)
                if handler is drop_after_first:  # reused, then one fresh attempt: no more
                    assert up.dropped == [0, 1] and up.connections == 2
                else:  # the answer had started: not replayed
                    assert up.dropped == [0] and up.connections == 1

    run(scenario())


# -- failures --------------------------------------------------------------------------------


def test_connection_refused_fails_fast(run: Run) -> None:
    """Nobody listening: ConnectFailed at once, not a timeout."""
    url = f"http://127.0.0.1:{free_port()}/v1/messages"

    async def scenario() -> None:
        async with aclosing(HttpClient()) as client:
            started = time.monotonic()
            with pytest.raises(ConnectFailed) as failed:
                await client.post(url, b"{}", {}, Timeouts(connect=5.0, read=5.0))
            assert time.monotonic() - started < 1.0
            assert isinstance(failed.value, TransportError)
            with pytest.raises(ConnectFailed):
                await client.post("ftp://127.0.0.1/x", b"{}", {}, FAST)

    run(scenario())


def test_server_that_never_answers_times_out_in_read(run: Run) -> None:
    """Accepted, request read, no answer: UpstreamTimeout('read') after about the read timeout,
    and the connection is closed."""

    async def silent(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        await up.wait_closed_by_client(reader, index)

    async def scenario() -> None:
        async with Upstream(silent) as up, aclosing(HttpClient()) as client:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout) as timed_out:
                await client.post(up.url + "/", b"{}", {}, Timeouts(connect=2.0, read=0.3))
            elapsed = time.monotonic() - started
            assert timed_out.value.phase == "read"
            assert 0.25 <= elapsed < 1.0, elapsed
            await asyncio.sleep(0.05)
            assert up.closed == {0}

    run(scenario())


def test_body_stalling_midway_times_out_in_read(run: Run) -> None:
    """Headers and part of the body, then silence: aiter_bytes yields what came, then raises
    UpstreamTimeout('read') after about the read timeout."""

    async def stalling(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst part")
        await writer.drain()
        await up.wait_closed_by_client(reader, index)

    async def scenario() -> None:
        async with Upstream(stalling) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/", b"{}", {}, Timeouts(connect=2.0, read=0.3))
            received = []
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout) as timed_out:
                async for data in answer.aiter_bytes():
                    received.append(data)
            assert timed_out.value.phase == "read"
            assert 0.25 <= time.monotonic() - started < 1.0
            assert b"".join(received) == b"first part"
            await asyncio.sleep(0.05)
            assert up.closed == {0}

    run(scenario())


def test_write_that_makes_no_progress_times_out_in_write(run: Run) -> None:
    """A server that never reads the request body: UpstreamTimeout('write')."""
    body = b"x" * (48 << 20)  # more than the socket buffers on both sides take

    async def not_reading(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await hang_forever()

    async def scenario() -> None:
        async with Upstream(not_reading) as up, aclosing(HttpClient()) as client:
            timeouts = Timeouts(connect=2.0, read=5.0, write=0.3)
            with pytest.raises(UpstreamTimeout) as timed_out:
                await client.post(up.url + "/", body, {}, timeouts)
            assert timed_out.value.phase == "write"

    run(scenario())


def test_server_closing_mid_body_breaks_the_answer(run: Run) -> None:
    """A chunked or length-framed body cut short by a close: ConnectionBroken, after the part
    that did arrive."""

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        if index == 0:
            writer.write(chunked_head() + chunk(b"partial"))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(0.02)  # then the connection closes

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            for _ in range(2):
                answer = await client.post(up.url + "/", b"{}", {}, FAST)
                received = []
                with pytest.raises(ConnectionBroken):
                    async for data in answer.aiter_bytes():
                        received.append(data)
                assert received == [b"partial"]

    run(scenario())


def test_server_closing_before_answering_is_broken(run: Run) -> None:
    """A fresh connection closed without an answer: ConnectionBroken, no second attempt."""

    async def hang_up(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)

    async def scenario() -> None:
        async with Upstream(hang_up) as up, aclosing(HttpClient()) as client:
            with pytest.raises(ConnectionBroken):
                await client.post(up.url + "/", b"{}", {}, FAST)
            assert up.connections == 1

    run(scenario())


@pytest.mark.parametrize(
    "garbage",
    [b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 2xx Fine\r\n\r\n", b"<html>Bad gateway</html>"],
)
def test_garbage_instead_of_http_is_broken(run: Run, garbage: bytes) -> None:
    """Something that is not HTTP/1.1: ConnectionBroken at once (not a read timeout)."""

    async def babbling(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        writer.write(garbage)
        await writer.drain()
        await up.wait_closed_by_client(reader, index)

    async def scenario() -> None:
        async with Upstream(babbling) as up, aclosing(HttpClient()) as client:
            started = time.monotonic()
            with pytest.raises(ConnectionBroken):
                await client.post(up.url + "/", b"{}", {}, Timeouts(connect=2.0, read=3.0))
            assert time.monotonic() - started < 1.0

    run(scenario())


def test_cancelled_request_closes_its_connection(run: Run) -> None:
    """The proxy's own client went away mid-request: cancelling the post closes the upstream
    connection (the upstream stops generating) and nothing is pooled."""

    async def slow(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        await up.read_request(reader, index)
        await up.wait_closed_by_client(reader, index)

    async def scenario() -> None:
        async with Upstream(slow) as up, aclosing(HttpClient()) as client:
            pending = asyncio.create_task(client.post(up.url + "/", b"{}", {}, FAST))
            while not up.seen:
                await asyncio.sleep(0.01)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            await asyncio.sleep(0.05)
            assert up.closed == {0}
            assert not any(client._idle.values())

    run(scenario())


# -- content encoding ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_body_is_decoded(run: Run, encoding: str) -> None:
    """gzip (and zlib-wrapped deflate) bodies arrive decompressed, even split across chunks."""
    payload = b'data: {"type":"content_block_delta"}\n\n' * 2000
    packed = gzip.compress(payload) if encoding == "gzip" else zlib.compress(payload)

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        while await up.read_request(reader, index) is not None:
            writer.write(chunked_head(f"content-encoding: {encoding}"))
            for start in range(0, len(packed), 97):
                writer.write(chunk(packed[start : start + 97]))
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/", b"{}", {"accept-encoding": "gzip"}, FAST)
            assert answer.headers["content-encoding"] == encoding
            assert await answer.aread() == payload
            again = await client.post(up.url + "/", b"{}", {}, FAST)
            assert [line async for line in again.aiter_lines()][:2] == [
                'data: {"type":"content_block_delta"}',
                "",
            ]

    run(scenario())


def test_unsupported_encoding_is_broken(run: Run) -> None:
    """A `br` answer cannot be read: ConnectionBroken from post, and the connection is dropped."""

    async def scenario() -> None:
        brotli = answering(response(b"\x8b\x03\x80ok\x03", "content-encoding: br"))
        async with Upstream(brotli) as up, aclosing(HttpClient()) as client:
            with pytest.raises(ConnectionBroken, match="br"):
                await client.post(up.url + "/", b"{}", {}, FAST)
            await asyncio.sleep(0.05)
            assert up.closed == {0}
            assert not any(client._idle.values())

    run(scenario())


def test_corrupt_gzip_body_is_an_upstream_error(run: Run) -> None:
    """A body that claims gzip but is not: a TransportError (ConnectionBroken), which the proxy
    handles as a broken answer, not a stray zlib.error that escapes its error handling."""

    async def scenario() -> None:
        corrupt = answering(response(b"this is not gzip at all", "content-encoding: gzip"))
        async with Upstream(corrupt) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/", b"{}", {}, FAST)
            with pytest.raises(ConnectionBroken):
                await answer.aread()
            await answer.aclose()

    run(scenario())


# -- request framing -------------------------------------------------------------------------


def test_request_framing_on_the_wire(run: Run) -> None:
    """Request line with path and query, host with the port, content-length matching the exact
    body, the caller's headers as given; the caller's framing headers are not sent twice."""
    body = '{"messages":[{"role":"user","content":"héllo"}]}'.encode()
    headers = {
        "x-api-key": "sk-ant-test",
        "anthropic-version": "2023-06-01",
        "Content-Type": "application/json",
        "Content-Length": "999",
        "Host": "evil.example",
        "Transfer-Encoding": "chunked",
        "Connection": "close",
    }

    async def scenario() -> None:
        async with Upstream(answering()) as up, aclosing(HttpClient()) as client:
            port = up.url.rsplit(":", 1)[1]
            answer = await client.post(up.url + "/v1/messages?beta=true", body, headers, FAST)
            await answer.aread()
            bare = await client.post(up.url, b"", {}, FAST)
            await bare.aread()

            seen, seen_bare = up.seen
            assert seen.request_line == "POST /v1/messages?beta=true HTTP/1.1"
            assert seen.header("host") == [f"127.0.0.1:{port}"]
            assert seen.header("content-length") == [str(len(body))]
            assert seen.header("transfer-encoding") == seen.header("connection") == []
            assert seen.header("x-api-key") == ["sk-ant-test"]
            assert seen.header("anthropic-version") == ["2023-06-01"]
            assert seen.header("content-type") == ["application/json"]
            assert len(seen.headers) == 5
            assert seen.body == body
            assert seen_bare.request_line == "POST / HTTP/1.1"
            assert seen_bare.header("content-length") == ["0"] and seen_bare.body == b""

    run(scenario())


@pytest.mark.parametrize(
    ("url", "host_header", "path"),
    [
        ("https://api.anthropic.com/v1/messages", "api.anthropic.com", "/v1/messages"),
        ("http://localhost:80/v1/chat/completions?x=1", "localhost", "/v1/chat/completions?x=1"),
        ("http://127.0.0.1:11434", "127.0.0.1:11434", "/"),
        ("https://[::1]:8443/v1/messages", "[::1]:8443", "/v1/messages"),
    ],
)
def test_host_header_has_the_port_only_when_not_default(
    url: str, host_header: str, path: str
) -> None:
    """The default port is left out of `host`; IPv6 literals keep their brackets."""
    target = _target(url)
    assert (target.host_header, target.path) == (host_header, path)


@pytest.mark.parametrize(
    "bad", ["sk-ant-SECRET\r\nx-injected: 1", "sk-ant-SECRET\n", "sk-ant-\0SECRET"]
)
def test_header_with_line_break_is_refused_without_showing_it(run: Run, bad: str) -> None:
    """A header value with CR, LF or NUL: BadHeader naming the header, never its value (a key),
    and nothing is sent."""

    async def scenario() -> None:
        async with Upstream(answering()) as up, aclosing(HttpClient()) as client:
            with pytest.raises(BadHeader) as refused:
                await client.post(up.url + "/", b"{}", {"x-api-key": bad}, FAST)
            assert "x-api-key" in str(refused.value)
            assert "SECRET" not in str(refused.value) and "SECRET" not in repr(refused.value)
            assert isinstance(refused.value, ValueError)
            assert up.connections == 0

    run(scenario())


# -- big bodies and flow control -------------------------------------------------------------


def test_large_request_body_to_a_slow_reader(run: Run) -> None:
    """5 MB to a server that starts reading late and reads in small pieces: the client waits for
    the socket to drain and the server gets every byte."""
    body = os.urandom(5 << 20)

    async def slow_reader(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert f"content-length: {len(body)}".encode() in head
        await asyncio.sleep(0.2)  # let the client's buffers fill up
        received = bytearray()
        while len(received) < len(body):
            received += await reader.read(min(65536, len(body) - len(received)))
        writer.write(response(hashlib.sha256(received).hexdigest().encode()))
        await writer.drain()
        await up.wait_closed_by_client(reader, index)

    async def scenario() -> None:
        async with Upstream(slow_reader) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/", body, {}, Timeouts(2.0, 5.0, 5.0))
            assert await answer.aread() == hashlib.sha256(body).hexdigest().encode()

    run(scenario())


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_large_response_read_slowly_is_not_buffered_whole(
    run: Run, scheme: str, tls_files: tuple[Path, Path]
) -> None:
    """8 MB read by a slow consumer: byte-identical, and the client holds only about a
    megabyte of it at a time (it stops reading the socket, so the server waits)."""
    payload = os.urandom(8 << 20)
    server_tls = server_context(tls_files) if scheme == "https" else None

    async def scenario() -> None:
        upstream = Upstream(answering(response(payload)), tls=server_tls)
        async with upstream as up, aclosing(HttpClient()) as client:
            if scheme == "https":
                client._tls = trusting_context(tls_files)
            answer = await client.post(up.url + "/", b"{}", {}, Timeouts(2.0, 5.0, 5.0))
            conn = answer._conn
            assert conn is not None
            await asyncio.sleep(0.3)  # the server could have sent it all by now
            most_buffered = conn.buffered
            received = []
            async for data in answer.aiter_bytes():
                received.append(data)
                most_buffered = max(most_buffered, conn.buffered)
                await asyncio.sleep(0.001)
            assert b"".join(received) == payload
            assert most_buffered < 2 << 20, most_buffered
            again = await client.post(up.url + "/", b"{}", {}, Timeouts(2.0, 5.0, 5.0))
            assert len(await again.aread()) == len(payload)

    run(scenario())


def test_abandoned_answer_closes_its_connection(run: Run) -> None:
    """aclose() before the body's end: that connection is closed (never pooled half-read), and
    the next request gets a new one that works."""

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        if index == 0:
            await up.read_request(reader, index)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"a" * 1000)
            await writer.drain()
            await up.wait_closed_by_client(reader, index)
        else:
            await answering()(up, reader, writer, index)

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            answer = await client.post(up.url + "/", b"{}", {}, FAST)
            async with aclosing(answer.aiter_bytes()) as chunks:
                assert (await anext(chunks)).startswith(b"a")
                await answer.aclose()
            await asyncio.sleep(0.05)
            assert up.closed == {0}
            again = await client.post(up.url + "/", b"{}", {}, FAST)
            assert await again.aread() == b"ok"
            assert up.connections == 2

    run(scenario())


# -- interim answers -------------------------------------------------------------------------


@pytest.mark.parametrize("together", [True, False])
def test_interim_100_continue_is_skipped(run: Run, together: bool) -> None:
    """A `100 Continue` (in the same packet or its own) before the real answer: the caller sees
    the final status, headers and body only."""
    interim = b"HTTP/1.1 100 Continue\r\nx-interim: yes\r\n\r\n"
    final = response(b"real body", "x-final: yes")

    async def handler(
        up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        while await up.read_request(reader, index) is not None:
            if together:
                writer.write(interim + final)
            else:
                writer.write(interim)
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(final)
            await writer.drain()

    async def scenario() -> None:
        async with Upstream(handler) as up, aclosing(HttpClient()) as client:
            for _ in range(2):
                answer = await client.post(up.url + "/", b"{}", {}, FAST)
                assert answer.status_code == 200
                assert answer.headers.get("x-final") == "yes" and "x-interim" not in answer.headers
                assert await answer.aread() == b"real body"

    run(scenario())


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), made for this test run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hybrid-router test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    context.set_alpn_protocols(["http/1.1"])
    return context


def trusting_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    """What the client builds, but trusting the test's certificate."""
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    context.set_alpn_protocols(["http/1.1"])
    return context


def test_untrusted_certificate_is_refused(run: Run, tls_files: tuple[Path, Path]) -> None:
    """By default an upstream with a self-signed certificate is not talked to: ConnectFailed."""

    async def scenario() -> None:
        async with Upstream(answering(), tls=server_context(tls_files)) as up:
            async with aclosing(HttpClient()) as client:
                with pytest.raises(ConnectFailed, match="(?i)certificate"):
                    await client.post(up.url + "/v1/messages", b"{}", {}, FAST)
            assert up.seen == []

    run(scenario())


async def echo_chunked(
    up: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
) -> None:
    while (seen := await up.read_request(reader, index)) is not None:
        writer.write(chunked_head() + chunk(b"echo: ") + chunk(seen.body) + b"0\r\n\r\n")
        await writer.drain()


def test_https_post_with_a_trusted_certificate(run: Run, tls_files: tuple[Path, Path]) -> None:
    """With a context that trusts the certificate: a POST over TLS (ALPN http/1.1) gets its
    chunked answer, and the server saw the right `host`."""

    async def scenario() -> None:
        async with Upstream(echo_chunked, tls=server_context(tls_files)) as up:
            async with aclosing(HttpClient()) as client:
                client._tls = trusting_context(tls_files)
                answer = await client.post(up.url + "/v1/messages", b"hello", {}, FAST)
                assert answer.status_code == 200
                assert await answer.aread() == b"echo: hello"
            assert up.alpn == ["http/1.1"]
            assert up.seen[0].request_line == "POST /v1/messages HTTP/1.1"
            assert up.seen[0].header("host") == [up.url.removeprefix("https://")]

    run(scenario())


def test_keep_alive_over_tls(run: Run, tls_files: tuple[Path, Path]) -> None:
    """Sequential POSTs over TLS share one connection (one handshake)."""

    async def scenario() -> None:
        async with Upstream(echo_chunked, tls=server_context(tls_files)) as up:
            async with aclosing(HttpClient()) as client:
                client._tls = trusting_context(tls_files)
                for body in (b"one", b"two", b"three"):
                    answer = await client.post(up.url + "/v1/messages", body, {}, FAST)
                    assert await answer.aread() == b"echo: " + body
            assert [seen.connection for seen in up.seen] == [0, 0, 0]
            assert up.connections == 1

    run(scenario())
