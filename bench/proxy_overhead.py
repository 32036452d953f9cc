"""Proxy overhead on loopback: `hybrid-router proxy` between a client and a fast fake upstream.

Everything is measured in one run, against one fake Anthropic-shaped upstream (a raw-asyncio
server in its own process that answers `/v1/messages` at once, streaming or not):

  direct    client -> upstream
  proxied   client -> `hybrid-router proxy` (a real subprocess) -> upstream
  ccr       client -> claude-code-router 2.0.0 (Node, when it can be installed) -> upstream

overhead = proxied - direct, at p50 and p99, for non-streaming requests (whole answer) and
streaming ones (time to first byte), with a tiny body and an ~80 KB Claude Code-shaped body
(tests/claude_code_bodies.py), at concurrency 1 and 16; throughput at concurrency 32; the
proxy's RSS before and after 10k requests. Targets: p50 overhead <= 1.5 ms and p99 <= 5 ms at
concurrency 16, RSS growth <= 5 %, and <= 0.5x claude-code-router's overhead on the 80 KB body.

The three targets are measured in interleaved rounds, so machine noise hits them alike.

Usage: .venv/bin/python bench/proxy_overhead.py [--quick] [--no-ccr]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import httpx2 as httpx
from _timing import percentile

VENV_BIN = Path(sys.executable).parent
CCR_VERSION = "2.0.0"
CCR_DIR = Path(tempfile.gettempdir()) / "hybrid-router-bench-ccr"
MODEL = "claude-sonnet-5"
HEADERS = {"x-api-key": "sk-bench-client", "anthropic-version": "2023-06-01",
           "content-type": "application/json"}

# --------------------------------------------------------------------------------------------
# The fake upstream: raw asyncio HTTP/1.1 with keep-alive, Anthropic-shaped answers at once
# --------------------------------------------------------------------------------------------

_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
_MESSAGE = {
    "id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL,
    "content": [{"type": "text", "text": "Hello from the bench upstream."}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 6},
}


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _anthropic_stream_events() -> list[bytes]:
    start = {**_MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 12, "output_tokens": 1}}
    return [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("ping", {"type": "ping"}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "Hello from"}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": " the bench upstream."}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 6}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def _openai_stream_events() -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello from"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": " the bench upstream."}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}},
    ]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


_OPENAI_MESSAGE = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
}


def _chunked(events: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def _json_response(status: int, payload: Any, extra: bytes = b"") -> bytes:
    data = json.dumps(payload).encode()
    reason = {200: b"OK", 404: b"Not Found"}.get(status, b"Error")
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
            % (status, reason, len(data), extra)) + data


_SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
             b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
RESPONSES = {
    ("messages", False): _json_response(200, _MESSAGE, b"request-id: req_bench\r\n"),
    ("messages", True): _SSE_HEAD + _chunked(_anthropic_stream_events()),
    ("chat", False): _json_response(200, _OPENAI_MESSAGE),
    ("chat", True): _SSE_HEAD + _chunked(_openai_stream_events()),
}
_OK = _json_response(200, {"status": "ok"})


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection. `respond(self, method, path, body)` returns the bytes to send,
    or a coroutine (a delayed answer, a fault) giving bytes or None (it wrote or hung up itself).
    The default answers at once, or after N ms when the body holds `[delay=N]`."""

    respond: Callable[[bytes, bytes, bytes], Any] | None = None

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._drain()

    def _drain(self) -> None:
        while not self.busy and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
            length, chunked = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            rest = self.buffer[end + 4:]
            if chunked:
                body, used = _dechunk(rest)
                if body is None:
                    return
            else:
                if len(rest) < length:
                    return
                body, used = rest[:length], length
            self.buffer = rest[used:]
            answer = self.answer(method.encode(), path.encode(), body)
            if isinstance(answer, bytes):
                self.transport.write(answer)
            else:
                self.busy = True
                asyncio.ensure_future(self._finish(answer))
                return

    async def _finish(self, coroutine: Any) -> None:
        try:
            data = await coroutine  # bytes to send, or None when it wrote (or dropped) itself
            if data and self.transport is not None:
                self.transport.write(data)
        finally:
            self.busy = False
            if self.transport is not None and not self.transport.is_closing():
                self._drain()

    def answer(self, method: bytes, path: bytes, body: bytes) -> Any:
        if self.respond is not None:
            return self.respond(method, path, body)  # a subclass's method
        return default_answer(method, path, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


_DELAY = re.compile(rb"\[delay=(\d+)\]")


async def _later(seconds: float, data: bytes) -> bytes:
    await asyncio.sleep(seconds)
    return data


def default_answer(method: bytes, path: bytes, body: bytes) -> Any:
    if b"[delay=" in body:
        found = _DELAY.search(body)
        if found:
            return _later(int(found.group(1)) / 1000, default_answer(method, path, body.replace(found.group(0), b"")))
    if method != b"POST":
        return _OK
    stream = bool(_STREAM_TRUE.search(body))
    if b"/messages" in path:
        return RESPONSES["messages", stream]
    if b"/chat/completions" in path:
        return RESPONSES["chat", stream]
    return _json_response(404, {"type": "error", "error": {"type": "not_found_error", "message": "no such path"}})


def _dechunk(data: bytes) -> tuple[bytes | None, int]:
    out, pos = [], 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        size = int(data[pos:eol].split(b";")[0] or b"0", 16)
        start = eol + 2
        if size == 0:
            if data[start:start + 2] != b"\r\n":
                return None, 0
            return b"".join(out), start + 2
        if len(data) < start + size + 2:
            return None, 0
        out.append(data[start:start + size])
        pos = start + size + 2


def serve_upstream(port: int, protocol: type[UpstreamProtocol] = UpstreamProtocol) -> None:
    """Run the fake upstream on 127.0.0.1:port until killed."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, "127.0.0.1", port, backlog=1024)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def spawn_http_server(command: list[str], port: int, **popen: Any) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server process listening on `port`; return it once it answers HTTP."""
    process = subprocess.Popen(command, **popen)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/", process)
    except BaseException:
        stop_process(process)
        raise
    return process, url


def start_upstream(mode: str = "serve-upstream", *extra: str, script: str = __file__) -> tuple[subprocess.Popen[bytes], str]:
    """A fake upstream in its own process: `script --MODE PORT EXTRA...`."""
    port = free_port()
    return spawn_http_server([sys.executable, script, f"--{mode}", str(port), *extra], port)


def router_config(chain: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The default config with every tier on `chain`'s first provider and the rest as fallbacks
    (default: the one Anthropic provider); no start-up probe."""
    from hybrid_router.config import default_config_path

    data = json.loads(default_config_path().read_text())
    chain = chain or [("anthropic", MODEL)]
    (provider, model), rest = chain[0], chain[1:]
    for tier in data["tiers"].values():
        tier.update(provider=provider, model=model, contextWindow=200_000,
                    fallbacks=[{"provider": p, "model": m} for p, m in rest])
    data["proxy"]["probeOnStart"] = False
    data["proxy"]["lastResort"] = None
    return data


def start_proxy(home: Path, environ: dict[str, str], config: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
    """`hybrid-router proxy --port N` as a real subprocess, with its own HYBRID_ROUTER_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "router-config.json").write_text(json.dumps(config, indent=2))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "HYBRID_ROUTER_", "OPENROUTER_", "OLLAMA_"))}
    env.update(HYBRID_ROUTER_HOME=str(home), **environ)
    return spawn_http_server([str(VENV_BIN / "hybrid-router"), "proxy", "--port", str(port)], port,
                             env=env, stderr=subprocess.DEVNULL)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ccr_binary() -> tuple[Path | None, str]:
    """claude-code-router's cli.js, installed with npm into a scratch dir; (None, why) if not."""
    cli = CCR_DIR / "node_modules" / "@musistudio" / "claude-code-router" / "dist" / "cli.js"
    if cli.exists():
        return cli, ""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "node/npm not on PATH"
    CCR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", f"@musistudio/claude-code-router@{CCR_VERSION}"],
                              check=False, cwd=CCR_DIR, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "npm install timed out"
    if done.returncode != 0 or not cli.exists():
        return None, f"npm install failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return cli, ""


def start_ccr(cli: Path, upstream: str, scratch: Path) -> tuple[subprocess.Popen[bytes], str]:
    """claude-code-router with one provider: the fake upstream's /v1/messages, through its own
    `Anthropic` transformer (so it speaks the same protocol to the same upstream)."""
    home = scratch / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "PORT": port, "HOST": "127.0.0.1", "LOG": False, "API_TIMEOUT_MS": 600000,
        "Providers": [{"name": "bench", "api_base_url": f"{upstream}/v1/messages", "api_key": "sk-bench",
                       "models": [MODEL], "transformer": {"use": ["Anthropic"]}}],
        "Router": {"default": f"bench,{MODEL}", "background": f"bench,{MODEL}", "think": f"bench,{MODEL}",
                   "longContext": f"bench,{MODEL}", "webSearch": f"bench,{MODEL}"},
    }
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(config, indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(HOME=str(home), NON_INTERACTIVE_MODE="true", CI="true")
    process = subprocess.Popen(["node", str(cli), "start"], env=env, cwd=home,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/", process, timeout=60)
    except BaseException:
        stop_process(process)
        raise
    return process, url


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


@dataclass
class Body:
    name: str
    plain: bytes
    streaming: bytes


def bodies(marker: str = "") -> list[Body]:
    """The tiny and the ~80 KB body; `marker` (`[delay=N]`) goes into the prompt."""
    from claude_code_bodies import claude_code_body

    tiny = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi" + marker}]}
    big = claude_code_body("refactor the retry logic in client.py and add tests for it" + marker)
    big["model"] = MODEL
    out = []
    for name, body in (("tiny", tiny), ("80KB", big)):
        out.append(Body(name, json.dumps({**body, "stream": False}).encode(),
                        json.dumps({**body, "stream": True}).encode()))
    return out


async def one_request(client: httpx.AsyncClient, url: str, content: bytes, stream: bool) -> float:
    """Milliseconds to the whole answer (non-stream) or to its first body byte (stream)."""
    start = time.perf_counter()
    if not stream:
        response = await client.post(url, content=content, headers=HEADERS)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        return elapsed
    async with client.stream("POST", url, content=content, headers=HEADERS) as response:
        elapsed = None
        async for _ in response.aiter_raw():
            if elapsed is None:
                elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
    return elapsed if elapsed is not None else (time.perf_counter() - start) * 1000


async def run_load(client: httpx.AsyncClient, url: str, content: bytes, stream: bool,
                   concurrency: int, count: int) -> list[float]:
    samples: list[float] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            samples.append(await one_request(client, url, content, stream))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=60.0,
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))


async def measure(targets: dict[str, str], body: Body, stream: bool, concurrency: int,
                  count: int, rounds: int) -> dict[str, list[float]]:
    """`count` requests per target, in `rounds` interleaved rounds (after a warm-up)."""
    content = body.streaming if stream else body.plain
    results: dict[str, list[float]] = {name: [] for name in targets}
    async with new_client() as client:
        for url in targets.values():
            await run_load(client, f"{url}/v1/messages", content, stream, concurrency, max(concurrency * 4, 50))
        per_round = max(1, count // rounds)
        for _ in range(rounds):
            for name, url in targets.items():
                results[name] += await run_load(client, f"{url}/v1/messages", content, stream, concurrency, per_round)
    return results


async def throughput(url: str, content: bytes, stream: bool, concurrency: int, count: int) -> float:
    async with new_client() as client:
        await run_load(client, f"{url}/v1/messages", content, stream, concurrency, concurrency * 4)
        start = time.perf_counter()
        await run_load(client, f"{url}/v1/messages", content, stream, concurrency, count)
        return count / (time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


async def bench(args: argparse.Namespace, targets: dict[str, str], proxy_pid: int) -> None:
    count1, count16 = (200, 640) if args.quick else (1000, 1600)
    rounds = 5 if args.quick else 10
    overheads: dict[tuple[str, str, int], tuple[float, float]] = {}
    ccr_overheads: dict[tuple[str, str, int], tuple[float, float]] = {}
    names = list(targets)
    print(f"requests per target per case: {count1} at concurrency 1, {count16} at concurrency 16, "
          f"in {rounds} interleaved rounds; latencies in ms")
    header = f"{'case':28} " + " ".join(f"{n + ' p50':>11} {n + ' p99':>11}" for n in names)
    header += f" {'overhead p50':>13} {'overhead p99':>13}"
    if "ccr" in targets:
        header += f" {'ccr ovh p50':>12} {'ccr ovh p99':>12}"
    print(header)
    for concurrency, count in ((1, count1), (16, count16)):
        for body in bodies():
            for stream in (False, True):
                kind = "stream TTFB" if stream else "non-stream"
                case = f"{body.name} {kind} c={concurrency}"
                samples = await measure(targets, body, stream, concurrency, count, rounds)
                stats = {n: (statistics.median(s), percentile(s, 0.99)) for n, s in samples.items()}
                direct = stats["direct"]
                ovh = (stats["proxied"][0] - direct[0], stats["proxied"][1] - direct[1])
                overheads[body.name, kind, concurrency] = ovh
                line = f"{case:28} " + " ".join(f"{stats[n][0]:11.3f} {stats[n][1]:11.3f}" for n in names)
                line += f" {ovh[0]:13.3f} {ovh[1]:13.3f}"
                if "ccr" in stats:
                    covh = (stats["ccr"][0] - direct[0], stats["ccr"][1] - direct[1])
                    ccr_overheads[body.name, kind, concurrency] = covh
                    line += f" {covh[0]:12.3f} {covh[1]:12.3f}"
                print(line, flush=True)

    print()
    delay_ms, paced = 200, (160 if args.quick else 480)
    print(f"concurrency 16, upstream answering after {delay_ms} ms (16 sessions waiting on a model, "
          f"CPU not saturated), 80KB body, {paced} requests per target:")
    for stream in (False, True):
        kind = "stream TTFB" if stream else "non-stream"
        samples = await measure(targets, bodies(f"[delay={delay_ms}]")[1], stream, 16, paced, 4)
        stats = {n: (statistics.median(s) - delay_ms, percentile(s, 0.99) - delay_ms) for n, s in samples.items()}
        ovh = (stats["proxied"][0] - stats["direct"][0], stats["proxied"][1] - stats["direct"][1])
        overheads["80KB paced", kind, 16] = ovh
        line = f"  {kind:12} " + "  ".join(f"{n} p50 +{v[0]:.3f} p99 +{v[1]:.3f}" for n, v in stats.items())
        line += f"  -> overhead p50 {ovh[0]:.3f} p99 {ovh[1]:.3f}"
        if "ccr" in stats:
            covh = (stats["ccr"][0] - stats["direct"][0], stats["ccr"][1] - stats["direct"][1])
            ccr_overheads["80KB paced", kind, 16] = covh
            line += f"; ccr overhead p50 {covh[0]:.3f} p99 {covh[1]:.3f}"
        print(line, flush=True)

    print()
    tp_count = 800 if args.quick else 2000
    big = bodies()[1]
    print(f"throughput at concurrency 32 ({tp_count} requests each, req/s):")
    for body, stream in ((bodies()[0], False), (big, True)):
        kind = "stream" if stream else "non-stream"
        rates = {n: await throughput(u, body.streaming if stream else body.plain, stream, 32, tp_count)
                 for n, u in targets.items()}
        ratios = f"  proxied/direct {rates['proxied'] / rates['direct']:.2f}x"
        if "ccr" in rates:
            ratios += f"  proxied/ccr {rates['proxied'] / rates['ccr']:.2f}x"
        print(f"  {body.name} {kind:10} " + "  ".join(f"{n} {r:8.0f}" for n, r in rates.items()) + ratios)

    print()
    soak = 2000 if args.quick else 10_000
    rss_start = rss_kb(proxy_pid)
    async with new_client() as client:
        for body in bodies():  # warm every path once more before the baseline
            for stream in (False, True):
                await run_load(client, f"{targets['proxied']}/v1/messages",
                               body.streaming if stream else body.plain, stream, 16, 250)
        rss_before = rss_kb(proxy_pid)
        mix = [(b, s) for b in bodies() for s in (False, True)]
        for index, (body, stream) in enumerate(mix):
            share = soak // len(mix) + (1 if index < soak % len(mix) else 0)
            await run_load(client, f"{targets['proxied']}/v1/messages",
                           body.streaming if stream else body.plain, stream, 16, share)
    rss_after = rss_kb(proxy_pid)
    growth = (rss_after - rss_before) / rss_before * 100
    print(f"proxy RSS: {rss_start / 1024:.1f} MB after the latency runs, {rss_before / 1024:.1f} MB after "
          f"warm-up, {rss_after / 1024:.1f} MB after {soak:,} more requests (mixed bodies, c=16): "
          f"{growth:+.1f} % — {verdict(growth <= 5)} the 5 % target")

    print()
    for label, cases in (("saturated (immediate upstream)", ("tiny", "80KB")),
                         ("paced (200 ms upstream)", ("80KB paced",))):
        p50 = max(overheads[b, k, 16][0] for b in cases for k in ("non-stream", "stream TTFB"))
        p99 = max(overheads[b, k, 16][1] for b in cases for k in ("non-stream", "stream TTFB"))
        print(f"c=16 {label}: worst p50 overhead {p50:.3f} ms — {verdict(p50 <= 1.5)} the 1.5 ms target; "
              f"worst p99 overhead {p99:.3f} ms — {verdict(p99 <= 5.0)} the 5 ms target")
    for key in sorted(ccr_overheads):
        if key[0] not in ("80KB", "80KB paced"):
            continue
        ours, theirs = overheads[key][0], ccr_overheads[key][0]
        ratio = ours / theirs if theirs > 0 else float("inf")
        print(f"{key[0]} {key[1]} c={key[2]}: p50 overhead {ours:.3f} ms vs claude-code-router "
              f"{theirs:.3f} ms = {ratio:.2f}x — {verdict(ratio <= 0.5)} the 0.5x goal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--no-ccr", action="store_true", help="skip claude-code-router")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return

    processes: list[subprocess.Popen[bytes]] = []
    ccr_process = None
    with tempfile.TemporaryDirectory(prefix="hr-bench-") as scratch:
        try:
            upstream, upstream_url = start_upstream()
            processes.append(upstream)
            proxy, proxy_url = start_proxy(Path(scratch) / "home", {
                "ANTHROPIC_API_KEY": "sk-bench", "HYBRID_ROUTER_ANTHROPIC_URL": upstream_url,
            }, router_config())
            processes.append(proxy)
            targets = {"direct": upstream_url, "proxied": proxy_url}
            if not args.no_ccr:
                cli, why = ccr_binary()
                if cli is None:
                    print(f"claude-code-router {CCR_VERSION}: not run ({why})")
                else:
                    try:
                        ccr, ccr_url = start_ccr(cli, upstream_url, Path(scratch))
                        processes.append(ccr)
                        ccr_process = ccr
                        targets["ccr"] = ccr_url
                    except RuntimeError as exc:
                        print(f"claude-code-router {CCR_VERSION}: not run ({exc})")
            print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; upstream, proxy"
                  + (", claude-code-router" if "ccr" in targets else "") + " and client in separate processes")
            asyncio.run(bench(args, targets, proxy.pid))
        finally:
            for process in reversed(processes):
                if process is ccr_process:  # its own session: node and anything it spawned
                    try:
                        os.killpg(process.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                stop_process(process)


if __name__ == "__main__":
    main()
