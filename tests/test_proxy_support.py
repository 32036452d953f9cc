"""Shared pieces of the proxy tests (test_proxy*.py): fake backends, bodies, SSE and log reading.

No tests here. Every proxy under test talks only to fakes on 127.0.0.1 (or the real llama.cpp
server): the Anthropic URL always points at a FakeAnthropic, so nothing can reach the internet.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_ollama import FakeModel, FakeOllama
from fakes.fake_openrouter import FakeOpenRouter
from proxy_server import RunningProxy, config_data, running_proxy

from hybrid_router.core import home

CODER_MODEL = "deepseek-coder:33b"  # the coder tier (code-generation route, default route)
FAST_MODEL = "qwen2.5-coder:7b"  # the fast tier (background requests, file operations)
FREE_MODEL = "qwen/qwen3-coder:free"  # the coder and fast tiers' OpenRouter fallback
CLAUDE = "claude-opus-4-8"
HAIKU = "claude-haiku-4-5-20251001"
CODE_PROMPT = "write a python function that adds two numbers"  # -> code-generation -> coder
SECURITY_PROMPT = "review this login handler for sql injection"  # -> security -> Anthropic
CLIENT_KEY = "sk-ant-client-key-0123456789"  # what the client (Claude Code) sends as its own key


def body(
    prompt: str = CODE_PROMPT,
    *,
    model: str = CLAUDE,
    stream: bool = False,
    max_tokens: int = 256,
    **extra: Any,
) -> dict[str, Any]:
    """A small Messages body (well inside every local window)."""
    data: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    if stream:
        data["stream"] = True
    data.update(extra)
    return data


def tool(name: str = "Bash") -> dict[str, Any]:
    return {
        "name": name,
        "description": f"Run {name}",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    }


def config(**proxy: Any) -> dict[str, Any]:
    """The default router config with `proxy` settings changed (keys in the file's camelCase)."""
    data = copy.deepcopy(config_data())
    data["proxy"].update(proxy)
    return data


@dataclass
class Rig:
    """A running proxy and the fakes behind it."""

    proxy: RunningProxy
    ollama: FakeOllama
    anthropic: FakeAnthropic
    openrouter: FakeOpenRouter | None
    home: Path
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.proxy.url

    def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        path: str = "/v1/messages",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> httpx.Response:
        sent = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", **(headers or {})}
        if isinstance(payload, bytes):
            sent.setdefault("content-type", "application/json")
            return httpx.post(self.url + path, content=payload, headers=sent, timeout=timeout)
        return httpx.post(self.url + path, json=payload, headers=sent, timeout=timeout)

    def rows(self, expected: int) -> list[dict[str, Any]]:
        """The decision rows, once `expected` are there (a stream's row is written just after
        its last byte reaches the client); fails unless there are exactly `expected`."""

        def count() -> int:
            self.proxy.flush_log()
            return len(decision_rows(self.home))

        wait_until(lambda: count() >= expected, what=f"{expected} decision rows")
        time.sleep(0.05)  # a row too many would show up now
        rows = decision_rows(self.home) if count() else []
        assert len(rows) == expected, rows
        return rows

    def ollama_models(self, path: str = "/api/chat") -> list[str]:
        return [r.body["model"] for r in self.ollama.requests_to(path)]


@contextmanager
def rig(
    router_home: Path,
    *,
    config_data: dict[str, Any] | None = None,
    ollama_version: str | None = None,
    openrouter: FakeOpenRouter | None = None,
    env: dict[str, str] | None = None,
    ollama_down: bool = False,
    ollama_models: tuple[str, ...] = (CODER_MODEL, FAST_MODEL),
    ollama_protocol: str | None = None,
) -> Iterator[Rig]:
    """FakeOllama (the router's models installed), FakeAnthropic, optionally FakeOpenRouter
    (started by the caller or here), and the proxy in front of them."""
    with ExitStack() as stack:
        kwargs = {"version": ollama_version} if ollama_version else {}
        ollama = stack.enter_context(
            FakeOllama(
                models=[FakeModel(m, capabilities=["completion", "tools"]) for m in ollama_models],
                **kwargs,
            )
        )
        if ollama_down:
            ollama.down()
        anthropic = stack.enter_context(FakeAnthropic())
        environ = {
            "HYBRID_ROUTER_HOME": str(router_home),
            "OLLAMA_HOST": ollama.url,
            "HYBRID_ROUTER_ANTHROPIC_URL": anthropic.url,
        }
        if openrouter is not None:
            environ["HYBRID_ROUTER_OPENROUTER_URL"] = openrouter.base_url
            environ["OPENROUTER_API_KEY"] = openrouter.api_key
        environ.update(env or {})
        data = config_data or config()
        if ollama_protocol is not None:  # default: "auto", Ollama's native /api/chat
            data["providers"]["ollama"]["protocol"] = ollama_protocol
        proxy = stack.enter_context(running_proxy(environ, data))
        yield Rig(proxy, ollama, anthropic, openrouter, router_home, environ)


# -- SSE -------------------------------------------------------------------------------------


def sse_events(raw: str) -> list[tuple[str | None, dict[str, Any]]]:
    """(event name, parsed data) of every event of an SSE body, in order."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = None, ""
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if name is not None or data:
            events.append((name, json.loads(data) if data else {}))
    return events


def assert_anthropic_sse(raw: str) -> list[str]:
    """Check the exact Anthropic sequence (PROTOCOLS §1.5); return the event names without pings."""
    events = sse_events(raw)
    assert events, "empty stream"
    for name, data in events:
        assert name is not None, f"an event without an `event:` line: {data}"
        assert data.get("type") == name, f"event {name} carries type {data.get('type')}"
    names = [name for name, _ in events if name != "ping"]
    assert names[0] == "message_start" and names[-1] == "message_stop", names
    assert names[-2] == "message_delta", names
    open_index = None
    expected_index = 0
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None, "a block started before the previous one stopped"
            assert data["index"] == expected_index
            open_index = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index, expected_index = None, expected_index + 1
    assert open_index is None
    start = events[[n for n, _ in events].index("message_start")][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert "input_tokens" in start["usage"]
    delta = [d for n, d in events if n == "message_delta"][-1]
    assert delta["delta"]["stop_reason"] in ("end_turn", "max_tokens", "stop_sequence", "tool_use")
    assert isinstance(delta["usage"]["output_tokens"], int)
    return names


def assert_anthropic_error(
    response: httpx.Response, status: int | None = None, error_type: str | None = None
) -> dict[str, Any]:
    """An Anthropic-shaped error: `{"type": "error", "error": {"type", "message"}}`."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text)
    data = response.json()
    assert data["type"] == "error", data
    assert isinstance(data["error"]["type"], str) and isinstance(data["error"]["message"], str)
    if error_type is not None:
        assert data["error"]["type"] == error_type, data
    return data


# -- the decision log ------------------------------------------------------------------------


def database_path(router_home: Path) -> Path:
    return router_home / home.DATABASE_FILENAME


def decision_rows(router_home: Path) -> list[dict[str, Any]]:
    path = database_path(router_home)
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM decisions ORDER BY id")]
    finally:
        conn.close()


def database_bytes(router_home: Path) -> bytes:
    """The database's bytes, its WAL and shared-memory files included."""
    path = database_path(router_home)
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            data += candidate.read_bytes()
    return data


def home_bytes(router_home: Path) -> bytes:
    """Every file under the tool's home (database, OpenRouter state, probe cache...)."""
    data = b""
    for root, _, files in os.walk(router_home):
        for name in files:
            data += Path(root, name).read_bytes()
    return data


def wait_until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def session_id() -> str:
    return str(uuid.uuid4())
