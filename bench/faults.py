"""Fault tolerance of `hybrid-router proxy` under load, in one run.

1. Upstream faults: N requests (default 10k) at concurrency 32, half streaming, through a chain
   of three fake upstreams (Anthropic, OpenAI-compatible, Anthropic), each failing about 40 % of
   its requests at random: connection dropped, HTTP 500, 529, 429 with a short Retry-After, slow
   first byte, slow then 500, a stall past the read timeout, an answer broken off mid-way.
   Every request must be answered — by a later link, or with an Anthropic-shaped error (a JSON
   error body, or an SSE `error` event once the stream has started) — never a hang, never a
   malformed response; and the proxy's log must hold exactly one row per answered request
   (counted in SQLite after the proxy has shut down and drained its writer).
2. Hostile bodies: N malformed or hostile requests (bad JSON, wrong types, missing fields, huge
   fields, deep nesting, integers of thousands of digits, bad UTF-8...), a quarter of them to
   /v1/messages/count_tokens -> each a 4xx Anthropic-shaped error; no 5xx, no crash. (A deeply
   nested JSON string in metadata.user_id is just a string, as for Anthropic: answered.)
3. A huge prompt: while one 20 MB prompt is read, routed and answered, a health check polled
   every 5 ms on another connection; the longest it waited (target: 100 ms), beside what
   parsing the body alone costs on this machine.
4. SIGKILL under load: 2,000 requests at concurrency 16 (half streaming) against a fast
   upstream, the proxy killed with SIGKILL part-way, restarted on the same home, stopped:
   the rows in the log equal the requests a client saw answered (its last byte received), in
   each of 5 runs.

Usage: .venv/bin/python bench/faults.py [--requests N] [--hostile N] [--quick] [--seed S]
                                        [--kill-runs N] [--prompt-mb N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load
import httpx2 as httpx
import orjson
import proxy_overhead as po

MODEL = po.MODEL
FAULTS = (  # (name, weight): about 40 % of upstream answers are faults
    ("ok", 60),
    ("drop", 6),
    ("500", 6),
    ("529", 6),
    ("429", 6),
    ("slow", 6),
    ("broken", 6),
    ("slow-500", 2),
    ("stall", 2),
)
READ_TIMEOUT = 1.0  # the stall outlasts it
CLIENT_TIMEOUT = 30.0  # a request not answered by then is a hang


# --------------------------------------------------------------------------------------------
# The faulty upstream (runs in its own process)
# --------------------------------------------------------------------------------------------


def _error(status: int, api: str, extra: bytes = b"") -> bytes:
    if api == "messages":
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        payload: dict[str, Any] = {
            "type": "error",
            "error": {"type": kind, "message": f"injected {status}"},
        }
    else:
        payload = {
            "error": {"message": f"injected {status}", "type": "server_error", "code": status}
        }
    return po._json_response(status, payload, extra)


def faulty_protocol(seed: int) -> type[po.UpstreamProtocol]:
    rng = random.Random(seed)
    names = [name for name, _ in FAULTS]
    weights = [weight for _, weight in FAULTS]

    def respond(proto: po.UpstreamProtocol, method: bytes, path: bytes, body: bytes) -> Any:
        if method != b"POST":
            return po._OK
        api = "messages" if b"/messages" in path else "chat"
        stream = bool(po._STREAM_TRUE.search(body))
        fault = rng.choices(names, weights)[0]
        if fault == "ok":
            return po.RESPONSES[api, stream]
        if fault in ("500", "529"):
            return _error(int(fault), api)
        if fault == "429":
            return _error(429, api, b"retry-after: 0.05\r\n")
        if fault == "slow":
            return po._later(rng.uniform(0.05, 0.6), po.RESPONSES[api, stream])
        if fault == "slow-500":
            return po._later(0.3, _error(500, api))
        whole = po.RESPONSES[api, stream]
        cut = rng.randint(whole.index(b"\r\n\r\n") + 4, len(whole) - 3)
        delay = {"drop": 0.0, "stall": 3.0, "broken": 0.0}[fault]
        partial = whole[:cut] if fault == "broken" else b""
        return _hang_up(proto, partial, delay)

    return type("FaultyUpstream", (po.UpstreamProtocol,), {"respond": respond})


async def _hang_up(proto: po.UpstreamProtocol, partial: bytes, delay: float) -> None:
    if delay:
        await asyncio.sleep(delay)
    if proto.transport is not None:
        if partial:
            proto.transport.write(partial)
        proto.transport.close()


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------


def chain_config(urls: list[str]) -> dict[str, Any]:
    """Every tier on up1 (Anthropic), falling back to up2 (OpenAI-compatible) then up3."""
    data = po.router_config([("up1", MODEL), ("up2", MODEL), ("up3", MODEL)])
    kinds = ("anthropic", "openai", "anthropic")
    for index, (kind, url) in enumerate(zip(kinds, urls, strict=True), start=1):
        data["providers"][f"up{index}"] = {
            "kind": kind,
            "baseUrl": url + ("/v1" if kind == "openai" else ""),
            "connectTimeout": 1,
            "readTimeout": READ_TIMEOUT,
        }
    data["proxy"].update(
        firstByteGraceSeconds=0.2,
        pingIntervalSeconds=0.2,
        maxRetryAfterSeconds=1,
        maxBodyBytes=1_048_576,
    )
    return data


@dataclass
class Rig:
    home: Path
    url: str
    proxy: subprocess.Popen[bytes]
    upstreams: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop_proxy(self) -> int | None:
        """Stop the proxy (SIGTERM: uvicorn shuts down, the log writer drains); its exit code."""
        po.stop_process(self.proxy)
        return self.proxy.returncode

    def close(self) -> None:
        po.stop_process(self.proxy)
        for upstream in self.upstreams:
            po.stop_process(upstream)

    def rows(self) -> Counter[str]:
        conn = sqlite3.connect(self.home / "decisions.db")
        try:
            return Counter(
                dict(
                    conn.execute(
                        "SELECT outcome, COUNT(*) FROM decisions WHERE source = 'proxy' "
                        "GROUP BY outcome"
                    ).fetchall()
                )
            )
        finally:
            conn.close()


def start_rig(scratch: Path, seed: int) -> Rig:
    upstreams, urls = [], []
    try:
        for index in range(3):
            process, url = po.start_upstream(
                "serve-faulty", str(seed * 10 + index), script=__file__
            )
            upstreams.append(process)
            urls.append(url)
        proxy, proxy_url = po.start_proxy(scratch / "home", {}, chain_config(urls))
    except BaseException:
        for process in upstreams:
            po.stop_process(process)
        raise
    return Rig(scratch / "home", proxy_url, proxy, upstreams)


# --------------------------------------------------------------------------------------------
# Checking answers
# --------------------------------------------------------------------------------------------


def is_error_body(data: bytes) -> bool:
    try:
        body = json.loads(data)
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return (
        body.get("type") == "error"
        and isinstance(error, dict)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    )


def sse_verdict(data: bytes) -> str:
    """`ok` (message_start ... message_stop), `error-event` (ends with an SSE error), or why not."""
    events = []
    for block in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        name, payload = None, b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                payload += line[5:].strip()
        try:
            parsed = json.loads(payload)
        except ValueError:
            return f"malformed: undecodable event data {payload[:80]!r}"
        if name != parsed.get("type"):
            return f"malformed: event {name} carries type {parsed.get('type')}"
        events.append(name)
    content = [e for e in events if e != "ping"]
    if content and content[-1] == "error":
        return "error-event"
    if (
        content
        and content[0] == "message_start"
        and content[-1] == "message_stop"
        and "error" not in content
    ):
        return "ok"
    return f"malformed: events {content[:3]}...{content[-3:]}"


async def one_faulty_request(
    client: httpx.AsyncClient, url: str, content: bytes, stream: bool
) -> str:
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            async with client.stream(
                "POST", f"{url}/v1/messages", content=content, headers=po.HEADERS
            ) as response:
                data = await response.aread()
    except TimeoutError:
        return "HANG"
    except httpx.HTTPError as exc:
        return f"transport error: {type(exc).__name__}"
    if response.status_code != 200:
        return (
            f"error {response.status_code}"
            if is_error_body(data)
            else f"malformed {response.status_code}"
        )
    if not stream:
        try:
            message = json.loads(data)
        except ValueError:
            return "malformed 200 body"
        ok = (
            isinstance(message, dict)
            and message.get("type") == "message"
            and isinstance(message.get("content"), list)
        )
        return "answered" if ok else "malformed 200 body"
    verdict = sse_verdict(data)
    return {"ok": "answered", "error-event": "stream error event"}.get(verdict, verdict)


ANSWERED = ("answered", "stream error event")


def is_answered(outcome: str) -> bool:
    return outcome in ANSWERED or (outcome.startswith("error ") and outcome[6:].isdigit())


async def fault_load(url: str, requests: int, concurrency: int, seed: int) -> Counter[str]:
    bodies = po.bodies()
    rng = random.Random(seed)
    plan = []
    for _ in range(requests):
        body = bodies[1] if rng.random() < 0.2 else bodies[0]
        stream = rng.random() < 0.5
        plan.append((body.streaming if stream else body.plain, stream))
    outcomes: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        trust_env=False, timeout=CLIENT_TIMEOUT + 5, limits=limits
    ) as client:
        pending = iter(plan)

        async def worker() -> None:
            for content, stream in pending:
                outcomes[await one_faulty_request(client, url, content, stream)] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


# --------------------------------------------------------------------------------------------
# Hostile bodies
# --------------------------------------------------------------------------------------------

_VALID = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def _with(**changes: Any) -> bytes:
    return json.dumps({**_VALID, **changes}).encode()


def _without(key: str) -> bytes:
    return json.dumps({k: v for k, v in _VALID.items() if k != key}).encode()


def _nested(depth: int, inside: str) -> bytes:
    deep = "[" * depth + "]" * depth
    if inside == "top":
        return deep.encode()
    return (
        b'{"model": "%s", "max_tokens": 64, "messages": [{"role": "user", "content": '
        b'[{"type": "text", "text": "hi", "x": %s}]}], "metadata": %s}'
        % (MODEL.encode(), deep.encode(), deep.encode())
    )


ACCEPTED = "accepted: "  # a category of bodies that are valid after all: answered, not refused
DEEP = 1000


def _nested_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _deep_inside(where: str) -> bytes:
    deep = _nested_object(DEEP)
    if where == "tool_schema":
        tool = b'{"name": "Deep", "description": "d", "input_schema": {"type": "object", '
        tool += b'"properties": {"x": ' + deep + b"}}}"
        return json.dumps(_VALID)[:-1].encode() + b', "tools": [' + tool + b"]}"
    turn = (
        b'[{"role": "user", "content": "run it"}, {"role": "assistant", "content": '
        b'[{"type": "tool_use", "id": "t1", "name": "Bash", "input": ' + deep + b"}]}, "
        b'{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", '
        b'"content": "ok"}]}]'
    )
    return b'{"model": "%s", "max_tokens": 64, "messages": %s}' % (MODEL.encode(), turn)


def _huge_integer(where: str) -> bytes:
    digits = b"9" * 5000  # more than the 4,300 digits Python converts by default
    if where == "max_tokens":
        return (
            b'{"model": "%s", "max_tokens": %s, "messages": [{"role": "user", "content": "hi"}]}'
            % (MODEL.encode(), digits)
        )
    if where == "metadata":
        return json.dumps(_VALID)[:-1].encode() + b', "metadata": {"n": ' + digits + b"}}"
    return json.dumps(_VALID)[:-1].encode() + b', "temperature": ' + digits + b"}"


def _deep_user_id() -> bytes:
    user_id = json.dumps(_nested_object(DEEP).decode()).encode()
    return json.dumps(_VALID)[:-1].encode() + b', "metadata": {"user_id": ' + user_id + b"}}"


def hostile_bodies(rng: random.Random) -> list[tuple[str, bytes, dict[str, str]]]:
    """(category, body, extra headers) cases; hostile_body() draws from them."""
    big = "x" * 1_200_000  # over the 1 MB maxBodyBytes of the rig
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        ("bad json", b"{", {}),
        ("bad json", b"", {}),
        ("bad json", b"not json", {}),
        ("bad json", b'{"model": "x", "max_tokens": 1, "messages": [}', {}),
        ("bad json", b'{"model": NaN}', {}),
        ("bad json", b"\x00\x01\x02", {}),
        ("bad json", json.dumps(_VALID).encode()[:-1], {}),
        ("bad json", b"{}" * 3, {}),
        ("bad utf-8", b'{"model": "\xff\xfe", "max_tokens": 1}', {}),
        ("bad utf-8", b"\xc3\x28" + json.dumps(_VALID).encode(), {}),
        ("not an object", b"[]", {}),
        ("not an object", b"null", {}),
        ("not an object", b"42", {}),
        ("not an object", b'"hello"', {}),
        ("not an object", json.dumps([_VALID]).encode(), {}),
        ("missing field", _without("model"), {}),
        ("missing field", _without("max_tokens"), {}),
        ("missing field", _without("messages"), {}),
        ("missing field", b"{}", {}),
        ("missing field", _with(messages=[]), {}),
        ("missing field", _with(messages=[{"role": "user"}]), {}),
        ("missing field", _with(messages=[{"content": "hi"}]), {}),
        ("wrong type", _with(model=42), {}),
        ("wrong type", _with(model=""), {}),
        ("wrong type", _with(model=None), {}),
        ("wrong type", _with(model=["claude"]), {}),
        ("wrong type", _with(max_tokens="64"), {}),
        ("wrong type", _with(max_tokens=-1), {}),
        ("wrong type", _with(max_tokens=0), {}),
        ("wrong type", _with(max_tokens=True), {}),
        ("wrong type", _with(max_tokens=1.5), {}),
        ("wrong type", _with(max_tokens=None), {}),
        ("wrong type", _with(messages="hi"), {}),
        ("wrong type", _with(messages={"role": "user"}), {}),
        ("wrong type", _with(messages=["hi"]), {}),
        ("wrong type", _with(messages=[None]), {}),
        ("wrong type", _with(messages=[{"role": "robot", "content": "hi"}]), {}),
        ("wrong type", _with(messages=[{"role": 1, "content": "hi"}]), {}),
        ("wrong type", _with(messages=[{"role": "user", "content": 42}]), {}),
        ("wrong type", _with(messages=[{"role": "user", "content": None}]), {}),
        ("wrong type", _with(messages=[{"role": "user", "content": {"type": "text"}}]), {}),
        ("wrong type", _with(messages=[{"role": "user", "content": ["hi"]}]), {}),
        ("wrong type", _with(messages=[{"role": "user", "content": [{"text": "hi"}]}]), {}),
        ("wrong type", _with(messages=[{"role": "user", "content": [{"type": 7}]}]), {}),
        ("wrong type", _with(system=42), {}),
        ("wrong type", _with(system={"text": "x"}), {}),
        ("wrong type", _with(stream="yes"), {}),
        ("wrong type", _with(stream=1), {}),
        ("wrong type", _with(tools={"name": "x"}), {}),
        ("wrong type", _with(tools=[{"description": "x"}]), {}),
        ("wrong type", _with(tools=["Bash"]), {}),
        ("wrong type", _with(tools=[{"name": 5}]), {}),
        ("wrong type", _with(temperature="hot"), {}),
        ("wrong type", _with(top_p=True), {}),
        ("wrong type inside", _with(system=[1, 2]), {}),
        ("wrong type inside", _with(system=[{"type": "text"}]), {}),
        ("wrong type inside", _with(system=[{"type": "text", "text": 5}]), {}),
        (
            "wrong type inside",
            _with(messages=[{"role": "user", "content": [{"type": "text", "text": 123}]}]),
            {},
        ),
        (
            "wrong type inside",
            _with(messages=[{"role": "user", "content": [{"type": "text"}]}]),
            {},
        ),
        (
            "wrong type inside",
            _with(messages=[{"role": "user", "content": [{"type": "image", "source": 5}]}]),
            {},
        ),
        (
            "wrong type inside",
            _with(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": 5}],
                    }
                ]
            ),
            {},
        ),
        (
            "wrong type inside",
            _with(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "document", "source": {"type": "text", "data": 5}}],
                    }
                ]
            ),
            {},
        ),
        ("wrong type inside", _with(metadata="x"), {}),
        ("wrong type inside", _with(metadata={"user_id": 5}), {}),
        ("wrong type inside", _with(thinking="on"), {}),
        ("wrong type inside", _with(tools=[{"name": "x", "type": 5}]), {}),
        ("wrong type inside", _with(stop_sequences="x"), {}),
        ("wrong type inside", _with(tool_choice=5), {}),
        ("huge field", _with(model=big), {}),
        ("huge field", _with(messages=[{"role": "user", "content": big}]), {}),
        ("huge field", _with(system=big), {}),
        ("deep nesting", _nested(100_000, "top"), {}),
        ("deep nesting", _nested(5_000, "inside"), {}),
        ("deep nesting", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, {}),
        # Under orjson's 1,024-level limit, over the standard library's recursion limit.
        ("deep nesting", _deep_inside("tool_schema"), {}),
        ("deep nesting", _deep_inside("tool_use"), {}),
        ("deep nesting", _nested(300, "inside"), {}),
        ("huge integer", _huge_integer("max_tokens"), {}),
        ("huge integer", _huge_integer("temperature"), {}),
        ("huge integer", _huge_integer("metadata"), {}),
        # A string, however much JSON it holds: Anthropic answers it, and so does the proxy
        # (taking no session id from it).
        (ACCEPTED + "deeply nested JSON string in metadata.user_id", _deep_user_id(), {}),
    ]
    for _ in range(30):  # random garbage and random truncations of a valid body
        valid = json.dumps(_VALID).encode()
        cases.append(("bad json", valid[: rng.randint(1, len(valid) - 1)], {}))
        cases.append(
            ("bad json", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))), {})
        )
    return cases


def hostile_outcome(status: int, data: bytes, stream: bool) -> str:
    """Refused by the proxy (a 4xx of its own), let through to the upstream chain (which answered
    or failed: faults.py's upstreams say "injected"), or something malformed."""
    if status == 200:
        return "200 let through: the upstream answered"
    if not is_error_body(data):
        return f"{status} NOT Anthropic-shaped {'(stream) ' if stream else ''}{data[:80]!r}"
    message = json.loads(data)["error"]["message"]
    if "injected" in message or "no upstream answered" in message:
        return f"{status} let through: the upstream chain failed"
    if message.startswith("malformed request"):  # let through, refused when translating for a link
        return f"{status} Anthropic error at translation (logged), refused by the proxy"
    if 400 <= status < 500:
        return f"{status} Anthropic error, refused by the proxy"
    return f"{status} Anthropic-shaped error from the proxy itself: {message[:80]}"


COUNT_TOKENS = "count_tokens "  # the outcome of a hostile body sent to count_tokens


async def hostile_load(
    url: str, count: int, concurrency: int, seed: int
) -> tuple[Counter[str], Counter[str]]:
    """(outcome counts, categories that got something other than a 4xx error). Every fourth
    body goes to /v1/messages/count_tokens; its outcomes are prefixed with COUNT_TOKENS."""
    rng = random.Random(seed)
    cases = hostile_bodies(rng)
    outcomes: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=CLIENT_TIMEOUT, limits=limits) as client:
        pending = iter(range(count))

        async def worker() -> None:
            for index in pending:
                category, content, extra = (
                    cases[index % len(cases)] if index < len(cases) else rng.choice(cases)
                )
                headers = {**po.HEADERS, **extra}
                stream = b'"stream": true' in content
                counting = index % 4 == 3
                path = "/v1/messages/count_tokens" if counting else "/v1/messages"
                try:
                    response = await client.post(f"{url}{path}", content=content, headers=headers)
                except httpx.HTTPError as exc:
                    outcome = f"transport error: {type(exc).__name__}"
                else:
                    if counting and response.status_code == 200:
                        outcome = "200 counted (no row: counting calls no model)"
                    else:
                        outcome = hostile_outcome(response.status_code, response.content, stream)
                        if category.startswith(ACCEPTED) and "let through" in outcome:
                            # to the upstreams, as Anthropic would take it (which answered, or
                            # failed as this rig's upstreams do)
                            outcome = f"{response.status_code} let through, a valid body (accepted)"
                outcome = COUNT_TOKENS + outcome if counting else outcome
                outcomes[outcome] += 1
                # count_tokens reads only `messages`: a body it can count is counted.
                good = ("refused by the proxy", "(accepted)", "(no row: counting calls no model)")
                if not outcome.endswith(good):
                    bad[f"{category}: {outcome}"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes, bad


# --------------------------------------------------------------------------------------------
# A huge prompt must not stall the others
# --------------------------------------------------------------------------------------------

HEALTH_EVERY = 0.005


class SinkUpstream(po.UpstreamProtocol):
    """The fast fake upstream, reading a request of any size in linear time."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = bytearray()
        self.need: tuple[int, int, bytes, bytes] | None = None  # (head end, total, method, path)

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while self.transport is not None:
            if self.need is None:
                end = self.pending.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(self.pending[:end]).split(b"\r\n")
                method, path = (lines[0].split(b" ") + [b"", b""])[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip() or 0)
                self.need = (end + 4, end + 4 + length, method, path)
            start, total, method, path = self.need
            if len(self.pending) < total:
                return
            body = bytes(self.pending[start:total])
            del self.pending[:total]
            self.need = None
            answer = po.default_answer(method, path, body)
            self.transport.write(answer if isinstance(answer, bytes) else po._OK)


def huge_prompt_body(megabytes: int) -> bytes:
    """One user turn of `megabytes` MB: a pasted log, and the question at the end."""
    line = "2026-01-01T00:00:00Z worker-3 INFO request handled in 12 ms <ok> status=200\n"
    text = line * (megabytes * 1_000_000 // len(line))
    text += "\nWhy does the login handler fail on every third request?"
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return json.dumps(body).encode()


async def _health_latencies(url: str, stop: asyncio.Event) -> list[float]:
    """GET / on one keep-alive connection, every HEALTH_EVERY seconds, until `stop`; the
    milliseconds each took."""
    connection = _load.Connection(url)
    wire = f"GET / HTTP/1.1\r\nhost: {url.split('//', 1)[1]}\r\n\r\n".encode()
    taken: list[float] = []
    try:
        while not stop.is_set():
            taken.append(await connection.send(wire, stream=False))
            await asyncio.sleep(HEALTH_EVERY)
    finally:
        connection.close()
    return taken


async def _stall(url: str, body: bytes) -> tuple[list[float], list[float], float, int]:
    """(health latencies without the huge request, while it runs, its seconds, its status)."""
    warm = _load.Request("/v1/messages", po.bodies()[0].plain, stream=False)
    await _load.closed_loop(url, warm, 1, 20)  # the proxy's first requests, out of the way
    stop = asyncio.Event()
    poller = asyncio.ensure_future(_health_latencies(url, stop))
    await asyncio.sleep(1.0)
    stop.set()
    quiet = await poller
    stop = asyncio.Event()
    poller = asyncio.ensure_future(_health_latencies(url, stop))
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    host, port = url.split("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {host}:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    answer_head = await reader.readuntil(b"\r\n\r\n")
    status = int(answer_head[9:12])
    seconds = time.perf_counter() - started
    writer.close()
    await asyncio.sleep(0.3)  # the row is built as the answer ends: keep polling through it
    stop.set()
    return quiet, await poller, seconds, status


@dataclass
class StallReport:
    megabytes: int
    quiet_max_ms: float
    busy_max_ms: float
    busy_checks: int
    request_seconds: float
    status: int
    parse_ms: float
    check_ms: float


def huge_prompt_stall(megabytes: int = 20) -> StallReport:
    """The proxy (its defaults: a 32 MiB body limit) in front of a fast upstream; one
    `megabytes` MB prompt while a health check is polled."""
    from hybrid_router.proxy.validate import parse_messages_body

    body = huge_prompt_body(megabytes)
    parse = min(_timed(lambda: orjson.loads(body)) for _ in range(3))
    check = min(_timed(lambda: parse_messages_body(body)) for _ in range(3))
    with tempfile.TemporaryDirectory(prefix="hr-stall-") as scratch:
        upstream, upstream_url = po.start_upstream("serve-sink", script=__file__)
        try:
            config = po.router_config()
            config["providers"]["anthropic"]["baseUrl"] = upstream_url
            proxy, url = po.start_proxy(
                Path(scratch) / "home", {"ANTHROPIC_API_KEY": "sk-bench"}, config
            )
            try:
                quiet, busy, seconds, status = asyncio.run(_stall(url, body))
            finally:
                po.stop_process(proxy)
        finally:
            po.stop_process(upstream)
    return StallReport(megabytes, max(quiet), max(busy), len(busy), seconds, status, parse, check)


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def print_stall(report: StallReport) -> None:
    met = "meets" if report.busy_max_ms <= 100 else "MISSES"
    print(
        f"a {report.megabytes} MB prompt (HTTP {report.status} in {report.request_seconds:.2f} s) "
        f"while GET / is polled every {HEALTH_EVERY * 1000:g} ms: the longest health check "
        f"took {report.busy_max_ms:.1f} ms ({report.busy_checks} checks; "
        f"{report.quiet_max_ms:.1f} ms at most without it) — {met} the 100 ms target"
    )
    print(
        f"  parsing the body alone: {report.parse_ms:.1f} ms (orjson); parsing and checking it "
        f"as the proxy does: {report.check_ms:.1f} ms"
    )


# --------------------------------------------------------------------------------------------
# SIGKILL under load
# --------------------------------------------------------------------------------------------


@dataclass
class KillRun:
    answered: int
    broken: int  # requests cut off by the kill (or refused after it)
    rows: int
    journal_left: bool  # the killed proxy left journaled rows behind

    @property
    def equal(self) -> bool:
        return self.rows == self.answered


def kill_run(requests: int, concurrency: int, seed: int) -> KillRun:
    """`requests` requests at `concurrency` against a fast upstream; the proxy killed with
    SIGKILL once a random share of them (30-70 %) were answered; then restarted on the same
    home and stopped: the log's rows against the requests answered."""
    rng = random.Random(seed)
    kill_after = int(requests * rng.uniform(0.3, 0.7))
    with tempfile.TemporaryDirectory(prefix="hr-kill-") as scratch:
        home = Path(scratch) / "home"
        upstream, upstream_url = po.start_upstream()
        try:
            config = po.router_config()
            config["providers"]["anthropic"]["baseUrl"] = upstream_url
            env = {"ANTHROPIC_API_KEY": "sk-bench"}
            proxy, url = po.start_proxy(home, env, config)
            try:
                answered, broken = asyncio.run(
                    _load_until_killed(url, requests, concurrency, kill_after, proxy, rng)
                )
            finally:
                if proxy.poll() is None:
                    proxy.kill()
                proxy.wait()
            journal = home / "decisions.db.journal.d"
            left = journal.exists() and any(journal.iterdir())
            restarted, _ = po.start_proxy(home, env, config)  # replays the journal
            po.stop_process(restarted)
        finally:
            po.stop_process(upstream)
        conn = sqlite3.connect(home / "decisions.db")
        try:
            (rows,) = conn.execute("SELECT COUNT(*) FROM decisions").fetchone()
        finally:
            conn.close()
    return KillRun(answered, broken, rows, left)


async def _load_until_killed(
    url: str,
    requests: int,
    concurrency: int,
    kill_after: int,
    proxy: subprocess.Popen[bytes],
    rng: random.Random,
) -> tuple[int, int]:
    bodies = po.bodies()
    answered = broken = 0
    killed = False
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=10, limits=limits) as client:
        pending = iter(range(requests))

        async def worker() -> None:
            nonlocal answered, broken, killed
            for _ in pending:
                if killed:
                    return
                stream = rng.random() < 0.5
                body = bodies[0].streaming if stream else bodies[0].plain
                outcome = await one_faulty_request(client, url, body, stream)
                if outcome == "answered":
                    answered += 1
                else:
                    broken += 1
                if answered >= kill_after and not killed:
                    killed = True
                    os.kill(proxy.pid, signal.SIGKILL)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered, broken


def print_kills(runs: list[KillRun], requests: int, concurrency: int) -> None:
    equal = sum(run.equal for run in runs)
    print(
        f"SIGKILL under load: {requests:,} requests at concurrency {concurrency} (half "
        f"streaming), the proxy killed part-way, restarted, stopped; {len(runs)} runs"
    )
    for index, run in enumerate(runs, start=1):
        left = " (its journal held rows the log did not yet)" if run.journal_left else ""
        print(
            f"  run {index}: answered {run.answered:,}, cut off {run.broken:,}, rows {run.rows:,}"
            f" — {'equal' if run.equal else 'DIFFERENT'}{left}"
        )
    met = "meets" if equal == len(runs) else "MISSES"
    print(f"  rows == answered in {equal} of {len(runs)} runs — {met} the target")


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    outcomes: Counter[str]
    rows: Counter[str]
    hostile: Counter[str]
    hostile_bad: Counter[str]
    proxy_alive: bool
    seconds: float

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def answered_hostile(self) -> int:
        """Hostile requests that got an answer: refused by the proxy, or let through and answered
        upstream. Each has its row (a refused one as outcome `rejected`)."""
        return sum(self.hostile.values()) - self.hostile_crashes

    @property
    def hostile_crashes(self) -> int:
        return sum(
            n
            for outcome, n in self.hostile.items()
            if "NOT Anthropic" in outcome
            or "from the proxy itself" in outcome
            or outcome.startswith("transport")
        )

    @property
    def counted(self) -> int:
        """Hostile bodies count_tokens answered with a count: no model called, no row."""
        return sum(n for outcome, n in self.hostile.items() if "200 counted" in outcome)

    @property
    def expected_rows(self) -> int:
        return self.answered + self.answered_hostile - self.counted

    @property
    def answered(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if is_answered(outcome))


def run(requests: int, hostile: int, concurrency: int = 32, seed: int = 1) -> Report:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hr-faults-") as scratch:
        rig = start_rig(Path(scratch), seed)
        try:
            outcomes = asyncio.run(fault_load(rig.url, requests, concurrency, seed))
            hostile_outcomes, hostile_bad = asyncio.run(
                hostile_load(rig.url, hostile, concurrency, seed)
            )
            alive = rig.proxy.poll() is None
            rig.stop_proxy()
            rows = rig.rows()
        finally:
            rig.close()
    return Report(
        outcomes, rows, hostile_outcomes, hostile_bad, alive, time.perf_counter() - started
    )


def print_report(report: Report) -> None:
    print(
        f"upstream faults: {report.requests:,} requests at concurrency 32 through a 3-link chain "
        f"(each link failing ~40 %: {', '.join(n for n, _ in FAULTS[1:])})"
    )
    for outcome, n in report.outcomes.most_common():
        print(f"  {outcome:40} {n:7,}")
    share = report.answered / report.requests * 100 if report.requests else 0.0
    met = "meets" if report.answered == report.requests else "MISSES"
    print(
        f"  answered (a message, or an Anthropic-shaped error): {report.answered:,} / "
        f"{report.requests:,} = {share:.2f} % — {met} the 100 % target"
    )
    logged = sum(report.rows.values())
    kinds = ", ".join(f"{k} {v:,}" for k, v in report.rows.most_common())
    equals = "equals" if logged == report.expected_rows else "DIFFERS FROM"
    print(
        f"  decision rows logged: {logged:,} ({kinds}) — {equals} the {report.answered:,} answered "
        f"+ {report.answered_hostile:,} hostile bodies answered (refused ones logged as rejected) "
        f"- {report.counted:,} counted by count_tokens (no row)"
    )
    print(f"hostile bodies: {sum(report.hostile.values()):,} requests")
    for outcome, n in report.hostile.most_common():
        print(f"  {outcome:40} {n:7,}")
    bad = sum(report.hostile_bad.values())
    print(
        "  5xx from the proxy itself, malformed answers, transport errors: "
        f"{report.hostile_crashes:,} — "
        f"{'meets' if not report.hostile_crashes else 'MISSES'} the no-5xx target"
    )
    print(
        f"  not refused with a 4xx by the proxy: {bad:,}"
        + (" — meets the target" if not bad else ":")
    )
    for what, n in report.hostile_bad.most_common(10):
        print(f"    {n:6,}  {what}")
    print(f"proxy process alive at the end: {report.proxy_alive}; {report.seconds:.1f} s in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--hostile", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 of each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-runs", type=int, default=5, help="SIGKILL runs (0: none)")
    parser.add_argument("--kill-requests", type=int, default=2000)
    parser.add_argument("--prompt-mb", type=int, default=20, help="the huge prompt (0: none)")
    parser.add_argument("--serve-faulty", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("fault_seed", nargs="?", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_faulty:
        po.serve_upstream(args.serve_faulty, faulty_protocol(args.fault_seed or 0))
        return
    if args.serve_sink:
        po.serve_upstream(args.serve_sink, SinkUpstream)
        return
    if args.quick:
        args.requests, args.hostile = 1000, 1000
    print_report(run(args.requests, args.hostile, seed=args.seed))
    if args.prompt_mb:
        print_stall(huge_prompt_stall(args.prompt_mb))
    if args.kill_runs:
        runs = [
            kill_run(args.kill_requests, 16, seed=args.seed + index)
            for index in range(args.kill_runs)
        ]
        print_kills(runs, args.kill_requests, 16)


if __name__ == "__main__":
    main()
