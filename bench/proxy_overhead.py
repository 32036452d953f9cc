"""Proxy overhead on loopback: `hybrid-router proxy` between a client and a fast fake upstream.

Everything is measured in one run, against one fake Anthropic-shaped upstream (a raw-asyncio
server in its own process that answers `/v1/messages` at once, or after N ms when the prompt
holds `[delay=N]`, streaming or not):

  direct    client -> upstream
  proxied   client -> `hybrid-router proxy` (a real subprocess) -> upstream
  ccr       client -> claude-code-router 2.0.0 (Node, when it can be installed) -> upstream

overhead = proxied - direct, at p50 and p99, for non-streaming requests (whole answer) and
streaming ones (time to first byte), with a tiny body and an ~80 KB Claude Code-shaped body
(tests/claude_code_bodies.py). The client is a light raw HTTP/1.1 load generator (bench/_load.py)
so that it does not take the CPU the proxy needs. Concurrency 16 is measured twice:

  sessions     16 sessions with one request in flight each, on an upstream that takes 100 ms
               (still far faster than any model), starting and pausing at random moments: what
               the proxy adds to each request when 16 Claude Code sessions share it
  closed loop  16 workers firing back to back at an upstream that answers at once: the CPU is
               saturated, so latency is queueing — about 16 x the CPU per request that client,
               proxy and upstream share on this machine's cores

Also: concurrency 1, throughput at 32, the proxy's RSS before and after 10k requests. Targets:
p50 overhead <= 1.5 ms and p99 <= 5 ms at concurrency 16, RSS growth <= 5 %, and <= 0.5x
claude-code-router's overhead on the 80 KB body. Targets are measured in interleaved rounds, so
machine noise hits them alike.

Last, the cost of checking answers (proxy/checks.py): a local link (Ollama's native /api/chat,
from the same upstream process) answers the 80 KB Claude Code request with a tool call, through
two proxies side by side, one with `proxy.checkAnswers` "hold" and one with "off". Target: the
checks add at most 0.2 ms at p50 (`--checks-only` runs just this part).

Usage: .venv/bin/python bench/proxy_overhead.py [--quick] [--no-ccr] [--checks-only]
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import _load  # noqa: E402 - bench/ is on sys.path only from here
import httpx2 as httpx  # noqa: E402
from _timing import percentile  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CCR_VERSION = "2.0.0"
CCR_DIR = Path(tempfile.gettempdir()) / "hybrid-router-bench-ccr"
MODEL = "claude-sonnet-5"
HEADERS = {
    "x-api-key": "sk-bench-client",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}

# --------------------------------------------------------------------------------------------
# The fake upstream: raw asyncio HTTP/1.1 with keep-alive, Anthropic-shaped answers at once
# --------------------------------------------------------------------------------------------

_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
_MESSAGE = {
    "id": "msg_bench",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hello from the bench upstream."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 6},
}


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _anthropic_stream_events() -> list[bytes]:
    start = {
        **_MESSAGE,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    return [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _sse("ping", {"type": "ping"}),
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello from"},
            },
        ),
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " the bench upstream."},
            },
        ),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 6},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def _openai_stream_events() -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    chunks = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "Hello from"},
                    "finish_reason": None,
                }
            ],
        },
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"content": " the bench upstream."}, "finish_reason": None}
            ],
        },
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
        },
    ]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


_OPENAI_MESSAGE = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the bench upstream."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
}


# Ollama's native /api/chat answering with one tool call (Claude Code's Bash, input valid under
# its schema), streamed as NDJSON or whole: what a local model's agent step looks like.
_OLLAMA_CALL = {
    "role": "assistant",
    "content": "",
    "tool_calls": [{"function": {"name": "Bash", "arguments": {"command": "ls -la"}}}],
}
_OLLAMA_DONE = {
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 20_000,
    "eval_count": 12,
}


def _ndjson(*items: dict[str, Any]) -> list[bytes]:
    return [json.dumps({"model": "bench-local", **item}).encode() + b"\n" for item in items]


def _chunked(events: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


def _json_response(status: int, payload: Any, extra: bytes = b"") -> bytes:
    data = json.dumps(payload).encode()
    reason = {200: b"OK", 404: b"Not Found"}.get(status, b"Error")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
        % (status, reason, len(data), extra)
    ) + data


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
RESPONSES = {
    ("messages", False): _json_response(200, _MESSAGE, b"request-id: req_bench\r\n"),
    ("messages", True): _SSE_HEAD + _chunked(_anthropic_stream_events()),
    ("chat", False): _json_response(200, _OPENAI_MESSAGE),
    ("chat", True): _SSE_HEAD + _chunked(_openai_stream_events()),
}
RESPONSES["ollama", False] = _json_response(
    200, {"model": "bench-local", "message": _OLLAMA_CALL, **_OLLAMA_DONE}
)
RESPONSES["ollama", True] = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
    + _chunked(
        _ndjson(
            {"message": _OLLAMA_CALL, "done": False},
            {"message": {"role": "assistant", "content": ""}, **_OLLAMA_DONE},
        )
    )
)
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
        self.transport = transport  # type: ignore[assignment] - uvloop's are not asyncio classes
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
            rest = self.buffer[end + 4 :]
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
            return _later(
                int(found.group(1)) / 1000,
                default_answer(method, path, body.replace(found.group(0), b"")),
            )
    if method != b"POST":
        return _OK
    stream = bool(_STREAM_TRUE.search(body))
    if b"/messages" in path:
        return RESPONSES["messages", stream]
    if b"/api/chat" in path:
        return RESPONSES["ollama", stream]
    if b"/chat/completions" in path:
        return RESPONSES["chat", stream]
    return _json_response(
        404, {"type": "error", "error": {"type": "not_found_error", "message": "no such path"}}
    )


def _dechunk(data: bytes) -> tuple[bytes | None, int]:
    out, pos = [], 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        size = int(data[pos:eol].split(b";")[0] or b"0", 16)
        start = eol + 2
        if size == 0:
            if data[start : start + 2] != b"\r\n":
                return None, 0
            return b"".join(out), start + 2
        if len(data) < start + size + 2:
            return None, 0
        out.append(data[start : start + size])
        pos = start + size + 2


def run_fast(coroutine: Any) -> Any:
    """asyncio.run on uvloop when it is there: the fake upstream and the load generator should
    cost as little CPU as possible, leaving it to what is measured."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the package on Linux
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


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

    run_fast(main())


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
            said = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
            raise RuntimeError(
                f"{process.args} exited with {process.returncode}" + (f": {said}" if said else "")
            )
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


def spawn_http_server(
    command: list[str], port: int, **popen: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server process listening on `port`; return it once it answers HTTP."""
    process = subprocess.Popen(command, **popen)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/", process)
    except BaseException:
        stop_process(process)
        raise
    return process, url


def start_upstream(
    mode: str = "serve-upstream", *extra: str, script: str = __file__
) -> tuple[subprocess.Popen[bytes], str]:
    """A fake upstream in its own process: `script --MODE PORT EXTRA...`."""
    port = free_port()
    return spawn_http_server([sys.executable, script, f"--{mode}", str(port), *extra], port)


def router_config(chain: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The default config with every tier on `chain`'s first provider and the rest as fallbacks
    (default: the one Anthropic provider); no start-up probe."""
    from hybrid_router.config.loading import default_config_path

    data = json.loads(default_config_path().read_text())
    chain = chain or [("anthropic", MODEL)]
    (provider, model), rest = chain[0], chain[1:]
    for tier in data["tiers"].values():
        tier.update(
            provider=provider,
            model=model,
            contextWindow=200_000,
            fallbacks=[{"provider": p, "model": m} for p, m in rest],
        )
    data["proxy"]["probeOnStart"] = False
    data["proxy"]["lastResort"] = None
    return data


def start_proxy(
    home: Path, environ: dict[str, str], config: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], str]:
    """`hybrid-router proxy --port N` as a real subprocess, with its own HYBRID_ROUTER_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "router-config.json").write_text(json.dumps(config, indent=2))
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "HYBRID_ROUTER_", "OPENROUTER_", "OLLAMA_"))
    }
    env.update(HYBRID_ROUTER_HOME=str(home), **environ)
    return spawn_http_server(
        [str(VENV_BIN / "hybrid-router"), "proxy", "--port", str(port)],
        port,
        env=env,
        stderr=subprocess.DEVNULL,
    )


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
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                f"@musistudio/claude-code-router@{CCR_VERSION}",
            ],
            check=False,
            cwd=CCR_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
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
        "PORT": port,
        "HOST": "127.0.0.1",
        "LOG": False,
        "API_TIMEOUT_MS": 600000,
        "Providers": [
            {
                "name": "bench",
                "api_base_url": f"{upstream}/v1/messages",
                "api_key": "sk-bench",
                "models": [MODEL],
                "transformer": {"use": ["Anthropic"]},
            }
        ],
        "Router": {
            "default": f"bench,{MODEL}",
            "background": f"bench,{MODEL}",
            "think": f"bench,{MODEL}",
            "longContext": f"bench,{MODEL}",
            "webSearch": f"bench,{MODEL}",
        },
    }
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(config, indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(HOME=str(home), NON_INTERACTIVE_MODE="true", CI="true")
    process = subprocess.Popen(
        ["node", str(cli), "start"],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
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

    tiny = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi" + marker}],
    }
    big = claude_code_body("refactor the retry logic in client.py and add tests for it" + marker)
    big["model"] = MODEL
    out = []
    for name, body in (("tiny", tiny), ("80KB", big)):
        out.append(
            Body(
                name,
                json.dumps({**body, "stream": False}).encode(),
                json.dumps({**body, "stream": True}).encode(),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


# A pause before each target's round: whatever the last one left running (claude-code-router's
# garbage collector, the proxy's log writer) finishes before the next round starts.
SETTLE_SECONDS = 0.25


def load_request(body: Body, stream: bool) -> _load.Request:
    return _load.Request("/v1/messages", body.streaming if stream else body.plain, stream)


async def interleaved(
    targets: dict[str, str],
    run: Callable[[str], Awaitable[list[float]]],
    rounds: int,
    warm_up: Callable[[str], Awaitable[list[float]]] | None = None,
) -> dict[str, list[float]]:
    """`run` against every target in `rounds` interleaved rounds: machine noise hits all alike."""
    results: dict[str, list[float]] = {name: [] for name in targets}
    if warm_up is not None:
        for url in targets.values():
            await warm_up(url)
    for _ in range(rounds):
        for name, url in targets.items():
            await asyncio.sleep(SETTLE_SECONDS)
            results[name] += await run(url)
    return results


Case = tuple[str, str, int]  # body, kind, concurrency


class Table:
    """Prints one line per case and keeps the overheads (proxied - direct, ccr - direct)."""

    def __init__(self, names: list[str], subtract_ms: float = 0.0) -> None:
        self.names = names
        self.subtract_ms = subtract_ms  # an upstream delay every target waits alike
        self.overheads: dict[Case, tuple[float, float]] = {}
        self.ccr: dict[Case, tuple[float, float]] = {}
        header = f"  {'case':26} " + " ".join(f"{n + ' p50':>11} {n + ' p99':>11}" for n in names)
        header += f" {'overhead p50':>13} {'overhead p99':>13}"
        if "ccr" in names:
            header += f" {'ccr ovh p50':>12} {'ccr ovh p99':>12}"
        print(header)

    def add(self, case: Case, samples: dict[str, list[float]]) -> None:
        stats = {
            n: (statistics.median(s) - self.subtract_ms, percentile(s, 0.99) - self.subtract_ms)
            for n, s in samples.items()
        }
        direct = stats["direct"]
        ovh = (stats["proxied"][0] - direct[0], stats["proxied"][1] - direct[1])
        self.overheads[case] = ovh
        label = f"{case[0]} {case[1]} c={case[2]}"
        line = f"  {label:26} " + " ".join(
            f"{stats[n][0]:11.3f} {stats[n][1]:11.3f}" for n in self.names
        )
        line += f" {ovh[0]:13.3f} {ovh[1]:13.3f}"
        if "ccr" in stats:
            covh = (stats["ccr"][0] - direct[0], stats["ccr"][1] - direct[1])
            self.ccr[case] = covh
            line += f" {covh[0]:12.3f} {covh[1]:12.3f}"
        print(line, flush=True)

    def worst(self, concurrency: int) -> tuple[float, float]:
        picked = [v for k, v in self.overheads.items() if k[2] == concurrency]
        return max(p50 for p50, _ in picked), max(p99 for _, p99 in picked)


KINDS = ((False, "non-stream"), (True, "stream TTFB"))


async def bench(args: argparse.Namespace, targets: dict[str, str], proxy_pid: int) -> None:
    quick = args.quick
    names = list(targets)
    count1, count16 = (200, 640) if quick else (1000, 1600)
    rounds = 5 if quick else 10

    print(
        f"\n1. Closed loop (each worker sends its next request as soon as its last is answered), "
        f"upstream answering at once: {count1} requests per target per case at concurrency 1, "
        f"{count16} at 16, in {rounds} interleaved rounds; latencies in ms"
    )
    closed = Table(names)
    for concurrency, count in ((1, count1), (16, count16)):
        for body in bodies():
            for stream, kind in KINDS:
                request = load_request(body, stream)

                def run(
                    url: str, request: _load.Request = request, c: int = concurrency, n: int = count
                ) -> Awaitable[list[float]]:
                    return _load.closed_loop(url, request, c, max(c, n // rounds))

                def warm(
                    url: str, request: _load.Request = request, c: int = concurrency
                ) -> Awaitable[list[float]]:
                    return _load.closed_loop(url, request, c, max(c * 4, 50))

                closed.add(
                    (body.name, kind, concurrency), await interleaved(targets, run, rounds, warm)
                )

    delay_ms, spread_s = 100, 0.1
    per_case = 240 if quick else 800
    session_rounds = 3 if quick else 4
    print(
        "\n2. Concurrency 16 as 16 sessions: each has one request in flight, the upstream answers "
        f"after {delay_ms} ms (a fast model), sessions start at random moments and pause "
        f"0-{spread_s * 1000:.0f} ms between requests; {per_case} requests per target per case; "
        f"the {delay_ms} ms is subtracted"
    )
    sessions = Table(names, subtract_ms=delay_ms)
    for body in bodies(f"[delay={delay_ms}]"):
        for stream, kind in KINDS:
            request = load_request(body, stream)

            def run_sessions(url: str, request: _load.Request = request) -> Awaitable[list[float]]:
                return _load.sessions(url, request, 16, per_case // session_rounds, spread_s)

            sessions.add(
                (body.name, kind, 16), await interleaved(targets, run_sessions, session_rounds)
            )

    tp_count = 800 if quick else 2000
    tiny, big = bodies()
    print(f"\n3. Throughput at concurrency 32 ({tp_count} requests each, req/s):")
    for body, stream in ((tiny, False), (big, True)):
        kind = "stream" if stream else "non-stream"
        rates = {
            n: await _load.rate(u, load_request(body, stream), 32, tp_count)
            for n, u in targets.items()
        }
        ratios = f"  proxied/direct {rates['proxied'] / rates['direct']:.2f}x"
        if "ccr" in rates:
            ratios += f"  proxied/ccr {rates['proxied'] / rates['ccr']:.2f}x"
        print(
            f"  {body.name} {kind:10} "
            + "  ".join(f"{n} {r:8.0f}" for n, r in rates.items())
            + ratios
        )

    soak, warm_up = (2000, 2000) if quick else (10_000, 5000)
    proxied = targets["proxied"]
    mix = [load_request(b, s) for b in bodies() for s in (False, True)]
    # Warm up to the steady state first: in its first few thousand requests at concurrency 16
    # the proxy's memory rises to a plateau (allocator high-water marks, SQLite's page caches)
    # and stays there; growth after that is what a leak would show.
    for request in mix:
        await _load.closed_loop(proxied, request, 16, warm_up // len(mix))
    rss_before = rss_kb(proxy_pid)
    readings = []
    for index, request in enumerate(mix):
        share = soak // len(mix) + (1 if index < soak % len(mix) else 0)
        await _load.closed_loop(proxied, request, 16, share)
        readings.append(rss_kb(proxy_pid))
    rss_after = readings[-1]
    growth = (rss_after - rss_before) / rss_before * 100
    print(
        f"\n4. Proxy RSS: {rss_before / 1024:.1f} MB after {warm_up:,} warm-up requests; then "
        + ", ".join(f"{kb / 1024:.1f}" for kb in readings)
        + f" MB after each quarter of {soak:,} more (mixed bodies, c=16): {growth:+.1f} % — "
        f"{verdict(growth <= 5)} the 5 % target"
    )

    print("\nSummary (targets: p50 overhead <= 1.5 ms and p99 <= 5 ms at concurrency 16):")
    for label, table, concurrency in (
        ("c=1, closed loop", closed, 1),
        ("c=16, 16 sessions on a 100 ms upstream", sessions, 16),
        ("c=16, closed loop on an instant upstream (saturated)", closed, 16),
    ):
        p50, p99 = table.worst(concurrency)
        print(
            f"  {label}: worst p50 overhead {p50:.3f} ms — {verdict(p50 <= 1.5)}; "
            f"worst p99 {p99:.3f} ms — {verdict(p99 <= 5.0)}"
        )
    print(
        "  (saturated, every request queues behind the others' CPU time: latency is about 16 x "
        "the CPU per request that client, proxy and upstream share on this machine's cores; "
        "section 3 is the throughput side of the same thing)"
    )
    for table, label in ((closed, "closed loop"), (sessions, "sessions")):
        for case in sorted(table.ccr):
            if case[0] != "80KB":
                continue
            ours, theirs = table.overheads[case][0], table.ccr[case][0]
            ratio = ours / theirs if theirs > 0 else float("inf")
            print(
                f"  80KB {case[1]} c={case[2]} ({label}): p50 overhead {ours:.3f} ms vs "
                f"claude-code-router {theirs:.3f} ms = {ratio:.2f}x — "
                f"{verdict(ratio <= 0.5)} the 0.5x goal"
            )


CHECKS_TARGET_MS = 0.2
LOCAL_MODEL = "bench-local"


def start_checking_proxies(
    scratch: Path, upstream_url: str
) -> dict[str, tuple[subprocess.Popen[bytes], str]]:
    """Two proxies whose every tier is a local Ollama link on the fake upstream: one checks
    answers (the default, "hold"), the other does not ("off")."""
    proxies = {}
    for name, setting in (("unchecked", "off"), ("checked", "hold")):
        config = router_config([("ollama", LOCAL_MODEL)])
        config["proxy"]["checkAnswers"] = setting
        proxies[name] = start_proxy(scratch / f"home-{name}", {"OLLAMA_HOST": upstream_url}, config)
    return proxies


def checked_rows(home: Path) -> tuple[int, int]:
    """(rows, rows whose answer was checked) in a proxy's log."""
    import sqlite3

    conn = sqlite3.connect(home / "decisions.db")
    try:
        total, checked = conn.execute(
            "SELECT COUNT(*), COUNT(answer_checked) FROM decisions"
        ).fetchone()
    finally:
        conn.close()
    return int(total), int(checked)


async def paired(
    targets: dict[str, str], request: _load.Request, count: int
) -> tuple[dict[str, list[float]], list[float]]:
    """`count` pairs: one request to each target back to back, in alternating order, on one
    keep-alive connection each. Returns each target's latencies and the per-pair differences
    (second target minus first): a burst of machine noise hits both requests of a pair alike,
    so the median difference is the cost of what differs."""
    (first, first_url), (second, second_url) = targets.items()
    connections = {first: _load.Connection(first_url), second: _load.Connection(second_url)}
    wires = {
        name: request.encode(urlsplit(url).netloc)
        for name, url in ((first, first_url), (second, second_url))
    }
    samples: dict[str, list[float]] = {first: [], second: []}
    differences = []
    try:
        for index in range(count):
            order = (first, second) if index % 2 == 0 else (second, first)
            got = {}
            for name in order:
                got[name] = await connections[name].send(wires[name], request.stream)
                samples[name].append(got[name])
            differences.append(got[second] - got[first])
    finally:
        for connection in connections.values():
            connection.close()
    return samples, differences


async def bench_checks(args: argparse.Namespace, targets: dict[str, str]) -> bool:
    """The 80 KB Claude Code request answered with a tool call by a local link, through the
    proxy that does not check the answer and the one that does, request by request in
    alternating pairs at concurrency 1 (the CPU the checks cost is all that differs). True when
    the target is met."""
    count = 1000 if args.quick else 5000
    big = [b for b in bodies() if b.name == "80KB"][0]
    print(
        f"\n5. Checked answers: a local link (Ollama's /api/chat) answers the 80 KB Claude Code "
        f"request with a Bash tool call; {count} pairs of requests (one to each proxy, back to "
        "back, in alternating order) per case at concurrency 1; latencies in ms (stream: time to "
        "first byte, which for a checked stream is when the whole answer has been checked)"
    )
    print(
        f"  {'case':14} {'unchecked p50':>14} {'checked p50':>12} {'unchecked p99':>14} "
        f"{'checked p99':>12} {'checks add p50':>15} {'paired diff p50':>16}"
    )
    worst = 0.0
    for stream, kind in KINDS:
        request = load_request(big, stream)
        for url in targets.values():  # warm up: connections, caches, the schema compiled once
            await _load.closed_loop(url, request, 1, 200)
        samples, differences = await paired(targets, request, count)
        p50 = {n: statistics.median(v) for n, v in samples.items()}
        p99 = {n: percentile(v, 0.99) for n, v in samples.items()}
        added = statistics.median(differences)
        worst = max(worst, added)
        print(
            f"  {kind:14} {p50['unchecked']:14.3f} {p50['checked']:12.3f} "
            f"{p99['unchecked']:14.3f} {p99['checked']:12.3f} "
            f"{p50['checked'] - p50['unchecked']:15.3f} {added:16.3f}",
            flush=True,
        )
    print(
        f"  checking adds {worst:.3f} ms at p50 (the median paired difference, the worse case) — "
        f"{verdict(worst <= CHECKS_TARGET_MS)} the {CHECKS_TARGET_MS} ms target"
    )
    return worst <= CHECKS_TARGET_MS


def run_checks_only(args: argparse.Namespace) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="hr-bench-") as scratch:
        try:
            upstream, upstream_url = start_upstream()
            processes.append(upstream)
            proxies = start_checking_proxies(Path(scratch), upstream_url)
            processes += [process for process, _ in proxies.values()]
            print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
            run_fast(bench_checks(args, {name: url for name, (_, url) in proxies.items()}))
            report_checked_rows(Path(scratch))
        finally:
            for process in reversed(processes):
                stop_process(process)


def report_checked_rows(scratch: Path) -> None:
    """What each proxy logged: every answer of the checking proxy was checked."""
    time.sleep(0.2)  # the log writer commits within 50 ms of the last answer
    for name in ("unchecked", "checked"):
        total, checked = checked_rows(scratch / f"home-{name}")
        print(f"  {name} proxy: {total:,} rows, {checked:,} with a checked answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests)")
    parser.add_argument("--no-ccr", action="store_true", help="skip claude-code-router")
    parser.add_argument(
        "--checks-only", action="store_true", help="only the cost of checking answers (section 5)"
    )
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if args.checks_only:
        run_checks_only(args)
        return

    processes: list[subprocess.Popen[bytes]] = []
    ccr_process = None
    with tempfile.TemporaryDirectory(prefix="hr-bench-") as scratch:
        try:
            upstream, upstream_url = start_upstream()
            processes.append(upstream)
            proxy, proxy_url = start_proxy(
                Path(scratch) / "home",
                {
                    "ANTHROPIC_API_KEY": "sk-bench",
                    "HYBRID_ROUTER_ANTHROPIC_URL": upstream_url,
                },
                router_config(),
            )
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
            print(
                f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; upstream, proxy"
                + (", claude-code-router" if "ccr" in targets else "")
                + " and client in separate processes"
            )
            run_fast(bench(args, targets, proxy.pid))
            stop_process(proxy)  # the checks' two proxies get the CPU to themselves
            if ccr_process is not None:
                os.killpg(ccr_process.pid, signal.SIGTERM)
            checking = start_checking_proxies(Path(scratch), upstream_url)
            processes += [process for process, _ in checking.values()]
            run_fast(bench_checks(args, {name: url for name, (_, url) in checking.items()}))
            report_checked_rows(Path(scratch))
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
