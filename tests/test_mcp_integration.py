"""The MCP server (`hybrid-router mcp`) as its clients see it, end to end over stdio.

Three clients drive the installed console script: the official `mcp` Python client (and a raw
hand-written JSON-RPC exchange, to prove stdout carries nothing but the protocol), the MCP
Inspector CLI, and the real Claude Code CLI against a scripted fake Anthropic API with the real
llama.cpp server (SmolLM2-135M) answering the delegation. The local model is tiny: the tests
assert protocol, shapes, footers, tokens and log rows, never the answer's content.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from claude_cli import MCP_INSPECTOR_BIN, NODE_DIR, run_claude
from fakes.fake_anthropic import FakeAnthropic, RecordedRequest, text, tool_use
from fakes.fake_ollama import FakeModel, FakeOllama
from llama_server import LlamaServer
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from hybrid_router.core import home as paths
from hybrid_router.core.outcomes import OUTCOME_OK
from hybrid_router.log.database import connect
from hybrid_router.log.rows import DecisionRow, record

# The seed profile: the tests tell the tiers apart by model (see conftest.seed_profile).
pytestmark = pytest.mark.usefixtures("seed_profile")

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_CONFIG = REPO / "settings-templates" / "router-config.json"
TOOL_NAMES = {"delegate_to_local", "route_stats", "pull_model"}
CLAUDE_TOOL = "mcp__hybrid-router__delegate_to_local"
CODER_MODEL = "deepseek-coder:33b"  # the default config's `coder` tier
CODE_ANSWER = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
# `[provider/model | 1,234 in / 56 out tokens | 0.4 s | saved ~$0.0012 vs claude-sonnet-5]`
FOOTER = re.compile(
    r"^\[(?P<label>[^\s|]+) \| (?P<input>[\d,]+) in / (?P<output>[\d,]+) out tokens \| "
    r"[\d.]+ s \| saved ~\$[\d.]+ vs [^\]]+\]$",
    re.MULTILINE,
)


@pytest.fixture
def hybrid_router_bin() -> Path:
    """The installed console script, next to this interpreter (not resolved: venv symlinks)."""
    path = Path(sys.executable).parent / "hybrid-router"
    if not path.exists():
        pytest.skip(f"the console script is not installed at {path}")
    return path


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def _decisions(home: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(home / paths.DATABASE_FILENAME)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM decisions ORDER BY id")]
    finally:
        conn.close()


def _footer(answer: str) -> re.Match[str]:
    match = FOOTER.search(answer)
    assert match, f"no footer in the tool result:\n{answer}"
    return match


def _tokens(value: str) -> int:
    return int(value.replace(",", ""))


def _closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------
# 1. The official mcp client, over stdio, against the installed console script
# ------------------------------------------------------------------------------------------


def test_stdio_client_lists_and_calls_tools(
    hybrid_router_bin: Path, router_home: Path, tmp_path: Path
) -> None:
    fake = FakeOllama(models=[FakeModel(CODER_MODEL)]).start()
    fake.script(CODER_MODEL, CODE_ANSWER)
    params = StdioServerParameters(
        command=str(hybrid_router_bin),
        args=["mcp"],
        # the stdio client passes only HOME/PATH/...: the server's settings must be given here
        env={"HYBRID_ROUTER_HOME": str(router_home), "OLLAMA_HOST": fake.url},
        cwd=tmp_path,
    )
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def session(errlog: TextIO) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with anyio.fail_after(30):
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as client,
            ):
                out["init"] = await client.initialize()
                out["tools"] = await client.list_tools()
                out["stats"] = await client.call_tool("route_stats", {"period": "all"})
                out["delegate"] = await client.call_tool(
                    "delegate_to_local",
                    {"task": "write a function that adds two integers", "max_tokens": 64},
                    progress_callback=on_progress,
                )
        return out

    try:
        with open(tmp_path / "server-stderr.log", "w", encoding="utf-8") as errlog:
            out = anyio.run(session, errlog)
    finally:
        fake.stop()

    init = out["init"]
    assert init.server_info.name == "hybrid-router"
    assert init.capabilities.tools is not None
    assert "delegate_to_local" in (init.instructions or "")

    tools = {t.name: t for t in out["tools"].tools}
    assert set(tools) == TOOL_NAMES
    delegate_tool = tools["delegate_to_local"]
    assert delegate_tool.input_schema["required"] == ["task"]
    assert set(delegate_tool.input_schema["properties"]) == {
        "task",
        "files",
        "context",
        "model",
        "max_tokens",
        "force",
    }
    assert delegate_tool.output_schema is None  # plain text reaches the model, not {"result"}
    assert delegate_tool.annotations and delegate_tool.annotations.read_only_hint is True
    assert tools["pull_model"].input_schema["required"] == ["name"]

    stats = out["stats"]
    assert stats.is_error is False
    (stats_block,) = stats.content
    assert stats_block.type == "text"
    assert stats_block.text.startswith("Routing stats, all time: 0 decisions")
    assert "Recent decisions:\nNo recent decisions." in stats_block.text
    data = stats.structured_content
    assert data is not None
    assert data["requests"] == 0 and data["since"] is None
    assert data["recent"] == [] and data["providers"] == []

    delegated = out["delegate"]
    assert delegated.is_error is False, delegated.content
    assert delegated.structured_content is None
    (answer_block,) = delegated.content
    answer = answer_block.text
    assert answer.startswith(CODE_ANSWER + "\n\n")
    footer = _footer(answer)
    assert footer["label"] == f"ollama/{CODER_MODEL}"
    assert _tokens(footer["input"]) > 0
    assert _tokens(footer["output"]) > 0
    assert answer.count("\n[ollama/") == 1  # one footer line
    assert progress and progress[0][2] == f"asking ollama/{CODER_MODEL}"
    assert [p[0] for p in progress] == sorted({p[0] for p in progress})  # strictly rising

    (chat,) = fake.requests_to("/api/chat")
    assert chat.body["model"] == CODER_MODEL
    assert chat.body["options"]["num_predict"] == 64
    assert chat.body["messages"][-1] == {
        "role": "user",
        "content": "write a function that adds two integers",
    }

    (row,) = _decisions(router_home)
    assert row["source"] == "mcp"
    assert (row["provider"], row["model"], row["outcome"]) == ("ollama", CODER_MODEL, "ok")
    assert row["output_tokens"] == _tokens(footer["output"])


class _RawServer:
    """`hybrid-router mcp` spoken to by hand: one JSON-RPC message a line on stdin/stdout."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.stdout_lines: list[bytes] = []
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self._pumps = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode(errors="replace")

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def response(self, request_id: int, timeout: float = 20) -> dict[str, Any]:
        """The response to `request_id` (notifications that come first are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no response to {request_id}; stderr:\n{self.stderr}"
                ) from None
            if line is None:
                raise AssertionError(f"stdout closed before {request_id}; stderr:\n{self.stderr}")
            message = json.loads(line)  # a non-JSON line fails here, loudly
            if message.get("id") == request_id:
                return message

    def close(self, timeout: float = 10) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for pump in self._pumps:
                pump.join(5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


def test_stdout_carries_only_json_rpc(
    hybrid_router_bin: Path, router_home: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HYBRID_ROUTER_LOG_LEVEL": "DEBUG",  # every log line the server has must go to stderr
        "OLLAMA_HOST": f"http://127.0.0.1:{_closed_port()}",  # the failure path logs too
        "PYTHONUNBUFFERED": "1",
    }
    server = _RawServer([str(hybrid_router_bin), "mcp"], env, tmp_path)
    try:
        server.send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw-test", "version": "0"},
                },
            }
        )
        init = server.response(1)
        assert init["result"]["serverInfo"]["name"] == "hybrid-router"
        assert init["result"]["protocolVersion"] == "2025-06-18"
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

        server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        listed = server.response(2)
        assert {t["name"] for t in listed["result"]["tools"]} == TOOL_NAMES

        server.send(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "route_stats", "arguments": {"period": "24h"}},
            }
        )
        stats = server.response(3)["result"]
        assert stats["isError"] is False
        assert stats["content"][0]["text"].startswith("Routing stats, ")
        assert stats["structuredContent"]["requests"] == 0

        server.send(
            {
                "jsonrpc": "2.0",
                "id": 4,
                "method": "tools/call",
                "params": {
                    "name": "delegate_to_local",
                    "_meta": {"progressToken": "p-4"},
                    "arguments": {"task": "write a function that reverses a string"},
                },
            }
        )
        failed = server.response(4)["result"]
        assert failed["isError"] is True
        assert "Delegation failed" in failed["content"][0]["text"]
        assert "Ollama" in failed["content"][0]["text"]

        server.send(
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": "tools/call",
                "params": {"name": "route_stats", "arguments": {"period": "fortnight"}},
            }
        )
        bad_period = server.response(5)["result"]
        assert bad_period["isError"] is True

        server.send({"jsonrpc": "2.0", "id": 6, "method": "ping"})
        assert server.response(6)["result"] == {}
    finally:
        returncode = server.close()

    assert returncode == 0, server.stderr  # stdin EOF ends the server cleanly
    assert server.stdout_lines
    seen_ids = []
    for raw in server.stdout_lines:
        assert raw.endswith(b"\n")
        message = json.loads(raw)
        assert message["jsonrpc"] == "2.0", raw
        assert "id" in message or message.get("method", "").startswith("notifications/"), raw
        if "id" in message:
            assert ("result" in message) != ("error" in message), raw
            seen_ids.append(message["id"])
    assert seen_ids == [1, 2, 3, 4, 5, 6]
    # the DEBUG logs (the SDK's, the HTTP client's) went to stderr
    assert "Initializing server 'hybrid-router'" in server.stderr
    assert "connect_tcp" in server.stderr

    rows = _decisions(router_home)
    assert [(r["source"], r["provider"], r["outcome"]) for r in rows] == [
        ("mcp", "ollama", "error"),
    ]


# ------------------------------------------------------------------------------------------
# 2. The MCP Inspector CLI
# ------------------------------------------------------------------------------------------


def _inspector_binary() -> Path:
    # inspector 2.12.0 declares the bins `inspector`, `mcp-inspector` and `mcpdo`, but the
    # tests/node install here links only `.bin/inspector`: take whichever exists.
    for candidate in (MCP_INSPECTOR_BIN, NODE_DIR / "node_modules" / ".bin" / "inspector"):
        if candidate.exists():
            return candidate
    pytest.skip(f"MCP Inspector not installed: run `npm ci` in {NODE_DIR}")


def _inspect(
    server_args: list[str], method_args: list[str], *, home: Path, router_home: Path, cwd: Path
) -> tuple[Any, float]:
    args = [
        str(_inspector_binary()),
        "--cli",
        *server_args,
        # the Inspector passes only HOME/PATH/... to the server: its settings go in -e
        "-e",
        f"HYBRID_ROUTER_HOME={router_home}",
        *method_args,
    ]
    env = {**os.environ, "HOME": str(home)}  # no ~/.mcp-inspector outside the test's tmp
    started = time.monotonic()
    done = subprocess.run(
        args,
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    duration = time.monotonic() - started
    assert done.returncode == 0, f"{args}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return json.loads(done.stdout), duration


def test_mcp_inspector_cli(hybrid_router_bin: Path, router_home: Path, tmp_path: Path) -> None:
    conn = connect(router_home / paths.DATABASE_FILENAME)
    try:
        record(
            conn,
            DecisionRow(
                source="cli",
                rule="seeded",
                provider="ollama",
                model="qwen2.5-coder:7b",
                outcome=OUTCOME_OK,
                input_tokens=1200,
                output_tokens=300,
            ),
        )
    finally:
        conn.close()
    home = tmp_path / "inspector-home"
    home.mkdir()
    server = [str(hybrid_router_bin), "mcp"]

    listed, list_seconds = _inspect(
        server, ["--method", "tools/list"], home=home, router_home=router_home, cwd=tmp_path
    )
    assert {t["name"] for t in listed["tools"]} == TOOL_NAMES
    delegate_tool = next(t for t in listed["tools"] if t["name"] == "delegate_to_local")
    assert delegate_tool["inputSchema"]["required"] == ["task"]

    called, call_seconds = _inspect(
        server,
        ["--method", "tools/call", "--tool-name", "route_stats", "--tool-arg", "period=all"],
        home=home,
        router_home=router_home,
        cwd=tmp_path,
    )
    assert called["isError"] is False
    stats_text = called["content"][0]["text"]
    # the seeded row is there: the server read the test's HYBRID_ROUTER_HOME
    assert stats_text.startswith("Routing stats, all time: 1 decision\n")
    assert "ollama" in stats_text and "seeded" in stats_text
    assert called["structuredContent"]["decisions"] == 1
    assert called["structuredContent"]["recent"][0]["rule"] == "seeded"
    assert list_seconds < 20 and call_seconds < 20, (list_seconds, call_seconds)
    print(f"mcp-inspector: tools/list {list_seconds:.2f} s, tools/call {call_seconds:.2f} s")


# ------------------------------------------------------------------------------------------
# 3-4. The real Claude Code CLI calling mcp__hybrid-router__delegate_to_local
# ------------------------------------------------------------------------------------------


def _mcp_config(hybrid_router_bin: Path, env: dict[str, str]) -> dict[str, Any]:
    return {
        "mcpServers": {
            "hybrid-router": {
                "type": "stdio",
                "command": str(hybrid_router_bin),
                "args": ["mcp"],
                "env": env,
            }
        }
    }


def _answer_after_tool_result(request: RecordedRequest) -> Any:
    return text("Finished after the delegation.") if request.tool_results else None


def _tool_definition(request: RecordedRequest, name: str) -> dict[str, Any]:
    tools = {t.get("name"): t for t in request.body.get("tools") or []}
    assert name in tools, sorted(tools)
    return tools[name]


def test_claude_cli_delegates_to_llamacpp(
    fake_anthropic: FakeAnthropic,
    llama_server: LlamaServer,
    hybrid_router_bin: Path,
    router_home: Path,
    tmp_path: Path,
) -> None:
    config = json.loads(TEMPLATE_CONFIG.read_text(encoding="utf-8"))
    config["tiers"]["coder"] = {
        "provider": "llamacpp",
        "model": llama_server.model,
        "contextWindow": 2048,
        "fallbacks": [],
        "description": "SmolLM2 on the test's llama.cpp server",
    }
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / paths.CONFIG_FILENAME).write_text(json.dumps(config, indent=2), encoding="utf-8")

    task = "Reply with one short sentence about the weather."  # the default route: `coder`
    fake_anthropic.handler = _answer_after_tool_result
    fake_anthropic.enqueue(tool_use(CLAUDE_TOOL, {"task": task, "max_tokens": 64}))
    server_env = {
        "HYBRID_ROUTER_HOME": str(router_home),
        "HYBRID_ROUTER_LLAMACPP_URL": llama_server.v1_url,
    }
    result = run_claude(
        "Ask the local model for a sentence about the weather.",
        base_url=fake_anthropic.url,
        tmp_path=tmp_path,
        mcp_config=_mcp_config(hybrid_router_bin, server_env),
        extra_args=["--allowedTools", CLAUDE_TOOL],
    ).check()
    assert result.json["is_error"] is False
    assert result.json["result"] == "Finished after the delegation."

    first, follow_up = fake_anthropic.main_requests()
    definition = _tool_definition(first, CLAUDE_TOOL)
    assert len(definition["description"]) < 600, len(definition["description"])
    assert definition["input_schema"]["required"] == ["task"]
    assert {"task", "max_tokens", "files"} <= set(definition["input_schema"]["properties"])

    (block,) = follow_up.tool_results
    assert block["tool_use_id"] == first.reply.content[0]["id"]
    assert block.get("is_error") in (False, None), block
    (answer,) = follow_up.tool_result_texts()
    assert "llamacpp/smollm2" in answer and "in /" in answer and "out tokens" in answer
    footer = _footer(answer)
    assert footer["label"] == f"llamacpp/{llama_server.model}"
    assert 0 < _tokens(footer["output"]) <= 2 * 64  # at most one retry, each within max_tokens
    assert _tokens(footer["input"]) > 0
    assert answer[: footer.start()].strip()  # some answer text before the footer
    assert not answer.lstrip().startswith('{"result"')  # plain text, not an output-schema wrapper

    rows = _decisions(router_home)
    assert [(r["source"], r["provider"], r["model"]) for r in rows] == [
        ("mcp", "llamacpp", llama_server.model),
    ]
    assert rows[0]["outcome"] == "ok"
    assert rows[0]["tier"] == "coder"
    assert rows[0]["output_tokens"] == _tokens(footer["output"])
    print(f"claude CLI + MCP delegation to llama.cpp: {result.duration:.2f} s")


def test_claude_cli_declined_delegation(
    fake_anthropic: FakeAnthropic, hybrid_router_bin: Path, router_home: Path, tmp_path: Path
) -> None:
    fake_anthropic.handler = _answer_after_tool_result
    task = "review the login handler for SQL injection"  # the `security` route: premium work
    fake_anthropic.enqueue(tool_use(CLAUDE_TOOL, {"task": task}))
    result = run_claude(
        "Check the login handler.",
        base_url=fake_anthropic.url,
        tmp_path=tmp_path,
        mcp_config=_mcp_config(hybrid_router_bin, {"HYBRID_ROUTER_HOME": str(router_home)}),
        extra_args=["--allowedTools", CLAUDE_TOOL],
    ).check()
    assert result.json["is_error"] is False
    assert result.json["result"] == "Finished after the delegation."

    first, follow_up = fake_anthropic.main_requests()
    (block,) = follow_up.tool_results
    assert block["tool_use_id"] == first.reply.content[0]["id"]
    assert block["is_error"] is True
    (declined,) = follow_up.tool_result_texts()
    assert "Declined" in declined
    assert "force=true" in declined

    (row,) = _decisions(router_home)
    assert (row["source"], row["outcome"], row["provider"]) == ("mcp", "declined", "anthropic")
    assert row["rule"] == "security"
    print(f"claude CLI + declined MCP delegation: {result.duration:.2f} s")
