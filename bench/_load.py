"""A light load generator for the proxy benchmarks: raw HTTP/1.1 on keep-alive connections.

A load generator must cost far less than what it measures: on these 2-core machines the client,
the upstream and the proxy share the CPU, and a heavy client (httpx spends about a millisecond
per request) both inflates the direct baseline and steals CPU from the proxy. This one writes
a prepared request and reads the answer with asyncio streams, about 0.05 ms per request.

Each worker holds one connection, like one Claude Code session: the server sees `concurrency`
clients, each with at most one request in flight.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

HEADERS = (
    b"x-api-key: sk-bench-client\r\nanthropic-version: 2023-06-01\r\n"
    b"content-type: application/json\r\n"
)


class LoadError(Exception):
    """The server under load answered something other than 200."""


@dataclass
class Request:
    path: str
    body: bytes
    stream: bool

    def encode(self, host: str) -> bytes:
        length = len(self.body)
        head = (
            f"POST {self.path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n".encode()
            + HEADERS
            + b"\r\n"
        )
        return head + self.body


class Connection:
    """One keep-alive connection; `send` returns milliseconds to the whole answer (non-stream)
    or to the first body bytes (stream), after reading the whole answer either way."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20
        )

    async def send(self, wire: bytes, stream: bool) -> float:
        if self.writer is None or self.writer.is_closing():
            await self._open()
        assert self.reader is not None and self.writer is not None
        start = time.perf_counter()
        self.writer.write(wire)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        first_byte: float | None = None
        if b"transfer-encoding: chunked" in lowered:
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if first_byte is None:
                    first_byte = time.perf_counter()
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            marker = lowered.find(b"content-length:")
            length = int(lowered[marker + 15 : lowered.find(b"\r\n", marker)]) if marker >= 0 else 0
            data = await self.reader.readexactly(length) if length else b""
            first_byte = time.perf_counter() if data else None
        done = time.perf_counter()
        if b"connection: close" in lowered:
            self.close()
        if status != 200:
            raise LoadError(f"HTTP {status} from {self.host}:{self.port}")
        end = first_byte if stream and first_byte is not None else done
        return (end - start) * 1000

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _workers(
    url: str, request: Request, concurrency: int, count: int, pause: Callable[[], float] | None
) -> list[float]:
    """`count` requests from `concurrency` workers, one connection each; with `pause`, a worker
    waits `pause()` seconds before its first request and after each one."""
    wire = request.encode(urlsplit(url).netloc)
    samples: list[float] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        connection = Connection(url)
        try:
            if pause is not None:
                await asyncio.sleep(pause())
            while remaining > 0:
                remaining -= 1
                samples.append(await connection.send(wire, request.stream))
                if pause is not None:
                    await asyncio.sleep(pause())
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


async def closed_loop(url: str, request: Request, concurrency: int, count: int) -> list[float]:
    """`count` requests from `concurrency` workers, each sending its next request as soon as
    the last one is answered: the server is as busy as it can be."""
    return await _workers(url, request, concurrency, count, pause=None)


async def sessions(
    url: str, request: Request, concurrency: int, count: int, spread_s: float, seed: int = 7
) -> list[float]:
    """`concurrency` independent sessions, each with one request in flight at a time, starting
    at random moments within `spread_s` and pausing a random 0–`spread_s` between requests:
    like that many Claude Code sessions, which do not move in step."""
    rng = random.Random(seed)
    return await _workers(url, request, concurrency, count, pause=lambda: rng.uniform(0, spread_s))


async def rate(url: str, request: Request, concurrency: int, count: int) -> float:
    """Requests per second over a closed loop (after a short warm-up)."""
    await closed_loop(url, request, concurrency, concurrency * 4)
    start = time.perf_counter()
    await closed_loop(url, request, concurrency, count)
    return count / (time.perf_counter() - start)
