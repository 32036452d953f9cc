"""Checked answers under load: a local model that breaks 30 % of its tool calls, and not one
broken answer reaches the client.

`hybrid-router proxy` (a real subprocess) sends each request down a two-link chain: a fake local
model speaking Ollama's native /api/chat, then a fake OpenAI-compatible fallback (what an
OpenRouter `:free` model is to the proxy) that always answers well. N requests (default 1,000)
at concurrency 8, half streaming, each the ~80 KB Claude Code request with its 24 tools (a third
of them continuing a turn in which `git status` already ran twice). In a random 30 % the client
asks the fake local model (a `[break=KIND]` marker in the prompt) to break its answer in one of
the ways the proxy checks:

  unknown-tool         calls a tool that was not offered
  invalid-tool-input   Bash without `command`, or with a property its schema forbids
  truncated-tool-call  stops at max_tokens in the middle of a Bash call
  empty                no text and no tool call
  tool-loop            `git status` a third time in a row (only in a continued turn)
  refusal              "I'm sorry, but I can't assist with that."

A good local answer is `Bash {"command": "ls -la"}`, the fallback's is `Bash {"command": "echo
from-fallback"}`. The client checks every answer it gets (a whole message, or a stream whose
events it reassembles): anything else is a broken answer that reached it. After the proxy has
shut down (its log writer drained), the log must hold one row per request, and each broken one
must be a `fallback` row naming its check and the local model.

Usage: .venv/bin/python bench/checked_answers.py [--requests N] [--concurrency N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx2 as httpx  # noqa: E402
import proxy_overhead as po  # noqa: E402 - bench/ is on sys.path only from here

LOCAL_MODEL = "bench-local:8b"
FREE_MODEL = "bench/free-coder:free"
BROKEN_SHARE = 0.3
KINDS = (
    "unknown-tool",
    "invalid-tool-input",
    "truncated-tool-call",
    "empty",
    "tool-loop",
    "refusal",
)
GOOD_LOCAL = {"command": "ls -la"}
GOOD_FALLBACK = {"command": "echo from-fallback"}
LOOPED = {"command": "git status"}
CLIENT_TIMEOUT = 60.0

# --------------------------------------------------------------------------------------------
# The fake local model: Ollama's /api/chat, broken on request
# --------------------------------------------------------------------------------------------

_BREAK = re.compile(rb"\[break=([a-z-]+)\]")
_INVALID_INPUTS = ({"cmd": "ls"}, {"command": "ls", "force": True}, {"command": 42})


def _ollama_line(message: dict[str, Any], done: bool = False, reason: str = "stop") -> bytes:
    item: dict[str, Any] = {"model": LOCAL_MODEL, "message": message, "done": done}
    if done:
        item.update(done_reason=reason, prompt_eval_count=20_000, eval_count=12)
    return json.dumps(item).encode()


def _call(name: str, arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": name, "arguments": arguments}}],
    }


def local_answer(body: bytes, serial: int) -> tuple[list[dict[str, Any]], str]:
    """(the messages the model writes, its done_reason) for one request."""
    found = _BREAK.search(body)
    kind = found.group(1).decode() if found else "ok"
    if kind == "unknown-tool":
        return [_call("DeleteEverything", {"path": "/"})], "stop"
    if kind == "invalid-tool-input":
        return [_call("Bash", _INVALID_INPUTS[serial % len(_INVALID_INPUTS)])], "stop"
    if kind == "truncated-tool-call":
        return [_call("Bash", GOOD_LOCAL)], "length"
    if kind == "empty":
        return [], "stop"
    if kind == "tool-loop":
        return [_call("Bash", LOOPED)], "stop"
    if kind == "refusal":
        text = "I'm sorry, but I can't assist with that."
        return [{"role": "assistant", "content": text}], "stop"
    return [_call("Bash", GOOD_LOCAL)], "stop"


def local_protocol() -> type[po.UpstreamProtocol]:
    served = 0

    def respond(proto: po.UpstreamProtocol, method: bytes, path: bytes, body: bytes) -> Any:
        nonlocal served
        if method != b"POST" or b"/api/chat" not in path:
            return po._OK
        served += 1
        messages, reason = local_answer(body, served)
        closing = {"role": "assistant", "content": ""}
        if po._STREAM_TRUE.search(body):
            lines = [_ollama_line(m) + b"\n" for m in messages]
            lines.append(_ollama_line(closing, done=True, reason=reason) + b"\n")
            return (
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
                b"transfer-encoding: chunked\r\n\r\n" + po._chunked(lines)
            )
        whole: dict[str, Any] = {"role": "assistant", "content": ""}
        for message in messages:
            whole["content"] += message.get("content", "")
            whole.setdefault("tool_calls", []).extend(message.get("tool_calls", []))
        return po._json_response(200, json.loads(_ollama_line(whole, done=True, reason=reason)))

    return type("BreakingLocalModel", (po.UpstreamProtocol,), {"respond": respond})


# --------------------------------------------------------------------------------------------
# The fallback: an OpenAI-compatible server that always calls Bash well
# --------------------------------------------------------------------------------------------


def _completion_call() -> dict[str, Any]:
    return {
        "index": 0,
        "id": "call_fallback",
        "type": "function",
        "function": {"name": "Bash", "arguments": json.dumps(GOOD_FALLBACK)},
    }


def fallback_protocol() -> type[po.UpstreamProtocol]:
    base = {"id": "chatcmpl-fallback", "created": 1, "model": FREE_MODEL}
    usage = {"prompt_tokens": 20_000, "completion_tokens": 12, "total_tokens": 20_012}
    chunks = [
        {
            **base,
            "object": "chat.completion.chunk",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "tool_calls": [_completion_call()]},
                    "finish_reason": None,
                }
            ],
        },
        {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
            "usage": usage,
        },
    ]
    stream = po._SSE_HEAD + po._chunked(
        [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
    )
    message = {"role": "assistant", "content": None, "tool_calls": [_completion_call()]}
    whole = po._json_response(
        200,
        {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": usage,
        },
    )

    def respond(proto: po.UpstreamProtocol, method: bytes, path: bytes, body: bytes) -> Any:
        if method != b"POST":
            return po._OK
        return stream if po._STREAM_TRUE.search(body) else whole

    return type("GoodFallback", (po.UpstreamProtocol,), {"respond": respond})


def chain_config(local_url: str, fallback_url: str) -> dict[str, Any]:
    data = po.router_config([("local", LOCAL_MODEL), ("free", FREE_MODEL)])
    data["providers"]["local"] = {"kind": "ollama", "baseUrl": local_url}
    data["providers"]["free"] = {"kind": "openai", "baseUrl": fallback_url + "/v1"}
    data["proxy"].update(firstByteGraceSeconds=0.5, pingIntervalSeconds=0.5)
    return data


# --------------------------------------------------------------------------------------------
# The client: plans the requests, checks every answer it gets
# --------------------------------------------------------------------------------------------


def request_body(kind: str, continued: bool, stream: bool) -> bytes:
    from claude_code_bodies import claude_code_body

    marker = "" if kind == "ok" else f" [break={kind}]"
    body = claude_code_body("list the files in this project" + marker, stream=stream)
    body["model"] = po.MODEL
    if continued:  # `git status` ran twice in a row already in this turn
        turn: list[dict[str, Any]] = []
        for n in range(2):
            ident = f"toolu_bench{n}"
            turn.append(
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": ident, "name": "Bash", "input": LOOPED}],
                }
            )
            turn.append(
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": ident, "content": "clean"}],
                }
            )
        body["messages"] = [body["messages"][0], *turn, *body["messages"][1:]]
    return json.dumps(body).encode()


def plan(requests: int, seed: int) -> list[tuple[str, bool, bool]]:
    """(kind, continued turn, stream) per request: 30 % broken, a kind drawn at random among
    those the request allows (a loop needs a continued turn)."""
    rng = random.Random(seed)
    planned = []
    for _ in range(requests):
        continued = rng.random() < 1 / 3
        stream = rng.random() < 0.5
        kind = "ok"
        if rng.random() < BROKEN_SHARE:
            kinds = [k for k in KINDS if continued or k != "tool-loop"]
            kind = rng.choice(kinds)
        planned.append((kind, continued, stream))
    return planned


def message_of_stream(data: bytes) -> dict[str, Any] | None:
    """The message a well-formed Anthropic SSE stream adds up to (None: not well-formed)."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    inputs: dict[int, str] = {}
    ended = False
    for block in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block.strip():
            continue
        name, payload = "", b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                payload += line[5:].strip()
        event = json.loads(payload)
        if event.get("type") != name:
            return None
        if name == "message_start":
            message = event["message"]
        elif name == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif name == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "input_json_delta":
                inputs[event["index"]] = inputs.get(event["index"], "") + delta["partial_json"]
            elif delta["type"] == "text_delta":
                blocks[event["index"]]["text"] += delta["text"]
        elif name == "message_delta" and message is not None:
            message["stop_reason"] = event["delta"].get("stop_reason")
        elif name == "message_stop":
            ended = True
        elif name == "error":
            return None
    if message is None or not ended:
        return None
    for index, text in inputs.items():
        blocks[index]["input"] = json.loads(text) if text else {}
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def verdict(message: dict[str, Any] | None) -> str:
    """`local`, `fallback` (a good answer from either), or what is broken about it."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return "BROKEN: not a well-formed message"
    content = message.get("content") or []
    calls = [b for b in content if b.get("type") == "tool_use"]
    if message.get("stop_reason") != "tool_use" or len(calls) != 1 or len(content) != 1:
        return f"BROKEN: {message.get('stop_reason')} with {[b.get('type') for b in content]}"
    call = calls[0]
    if call.get("name") == "Bash" and call.get("input") == GOOD_LOCAL:
        return "local"
    if call.get("name") == "Bash" and call.get("input") == GOOD_FALLBACK:
        return "fallback"
    return f"BROKEN: {call.get('name')} {call.get('input')}"


async def one_request(
    client: httpx.AsyncClient, url: str, content: bytes, stream: bool
) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT):
            response = await client.post(f"{url}/v1/messages", content=content, headers=po.HEADERS)
    except TimeoutError:
        return "HANG", 0.0
    except httpx.HTTPError as exc:
        return f"transport error: {type(exc).__name__}", 0.0
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:120]}", elapsed
    try:
        message = message_of_stream(response.content) if stream else response.json()
    except (ValueError, KeyError, TypeError) as exc:
        return f"BROKEN: unreadable ({exc})", elapsed
    return verdict(message), elapsed


async def load(
    url: str, planned: list[tuple[str, bool, bool]], concurrency: int
) -> list[tuple[str, str, float]]:
    """(planned kind, what the client got, ms) per request, in plan order."""
    bodies = {key: request_body(*key) for key in set(planned)}
    results: list[tuple[str, str, float] | None] = [None] * len(planned)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        trust_env=False, timeout=CLIENT_TIMEOUT + 5, limits=limits
    ) as client:
        pending = iter(enumerate(planned))

        async def worker() -> None:
            for index, key in pending:
                got, ms = await one_request(client, url, bodies[key], key[2])
                results[index] = (key[0], got, ms)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [r for r in results if r is not None]


def logged(home: Path) -> list[tuple[str, str | None, str | None, str, int | None]]:
    """(outcome, error_class, failed_model, provider, answer_checked) of every proxy row."""
    conn = sqlite3.connect(home / "decisions.db")
    try:
        return conn.execute(
            "SELECT outcome, error_class, failed_model, provider, answer_checked FROM decisions "
            "WHERE source = 'proxy' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def run(requests: int, concurrency: int, seed: int) -> bool:
    planned = plan(requests, seed)
    started = time.perf_counter()
    processes = []
    with tempfile.TemporaryDirectory(prefix="hr-checked-") as scratch:
        try:
            local, local_url = po.start_upstream("serve-local", script=__file__)
            processes.append(local)
            fallback, fallback_url = po.start_upstream("serve-fallback", script=__file__)
            processes.append(fallback)
            home = Path(scratch) / "home"
            proxy, proxy_url = po.start_proxy(home, {}, chain_config(local_url, fallback_url))
            processes.append(proxy)
            results = asyncio.run(load(proxy_url, planned, concurrency))
            po.stop_process(proxy)  # SIGTERM: the log writer drains before the process ends
            rows = logged(home)
        finally:
            for process in reversed(processes):
                po.stop_process(process)
    seconds = time.perf_counter() - started
    return report(planned, results, rows, concurrency, seconds)


def report(
    planned: list[tuple[str, bool, bool]],
    results: list[tuple[str, str, float]],
    rows: list[tuple[str, str | None, str | None, str, int | None]],
    concurrency: int,
    seconds: float,
) -> bool:
    broken_planned = Counter(kind for kind, _, _ in planned if kind != "ok")
    streams = sum(1 for _, _, stream in planned if stream)
    print(
        f"{len(planned):,} requests offering Claude Code's 24 tools (~80 KB each), concurrency "
        f"{concurrency}, {streams:,} streamed; the local model broke "
        f"{sum(broken_planned.values()):,} of its answers ({BROKEN_SHARE:.0%} at random):"
    )
    for kind in KINDS:
        print(f"  {kind:22} {broken_planned[kind]:6,}")
    got = Counter(what for _, what, _ in results)
    print("what the client got:")
    for what, n in got.most_common():
        print(f"  {what:60} {n:6,}")
    reached = sum(n for what, n in got.items() if what not in ("local", "fallback"))
    wrong_link = sum(
        1
        for kind, what, _ in results
        if (kind == "ok") != (what == "local") and what in ("local", "fallback")
    )
    ok = reached == 0 and wrong_link == 0
    print(
        f"  broken answers that reached the client: {reached:,} — "
        f"{'meets' if reached == 0 else 'MISSES'} the 0 target; answers from the wrong link "
        f"(a good local answer replaced, or a broken one kept): {wrong_link:,}"
    )
    for label, wanted in (
        ("held and checked (good local answers)", "local"),
        ("fallen back", "fallback"),
    ):
        times = [ms for kind, what, ms in results if what == wanted]
        if times:
            print(f"  {label}: p50 {statistics.median(times):.1f} ms over {len(times):,}")
    print(f"the log: {len(rows):,} rows for {len(planned):,} requests", end="")
    ok = ok and len(rows) == len(planned)
    print(" — one per request" if len(rows) == len(planned) else " — MISSES one per request")
    named = Counter(
        error_class
        for outcome, error_class, failed_model, provider, _ in rows
        if outcome == "fallback" and failed_model == LOCAL_MODEL and provider == "free"
    )
    for kind in KINDS:
        match = "=" if named[kind] == broken_planned[kind] else "!="
        planned_count = broken_planned[kind]
        print(f"  fallback rows naming {kind:22} {named[kind]:6,} {match} {planned_count:,} broken")
        ok = ok and named[kind] == broken_planned[kind]
    outcomes = Counter(outcome for outcome, *_ in rows)
    checked = sum(1 for *_, answer_checked in rows if answer_checked == 1)
    print(f"  outcomes: {dict(outcomes)}; rows whose answer was checked: {checked:,}")
    print(f"{seconds:.1f} s in all — {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--serve-local", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-fallback", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_local:
        po.serve_upstream(args.serve_local, local_protocol())
        return
    if args.serve_fallback:
        po.serve_upstream(args.serve_fallback, fallback_protocol())
        return
    sys.exit(0 if run(args.requests, args.concurrency, args.seed) else 1)


if __name__ == "__main__":
    main()
