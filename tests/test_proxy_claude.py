"""The real Claude Code CLI (`claude -p`, tests/node) through the proxy, offline.

ANTHROPIC_BASE_URL points the CLI at the proxy; the proxy routes to a FakeOllama (through its
native /api/chat, which sets each request's context window) and falls back to a FakeAnthropic.
Each test asserts what the CLI answered, what the upstreams received and the decision rows the
proxy logged.

The CLI's main request is ~20k tokens (24 tools, the long system prompt): over the default
`coder` window, so the local tiers here get a 200k window to keep it local.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_cli import claude_binary, run_claude
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_ollama import FakeModel, FakeOllama, Reply, ToolCall
from proxy_server import config_data, free_port, running_proxy

FAST_MODEL = "qwen2.5-coder:7b"
CODER_MODEL = "deepseek-coder:33b"
BIG_WINDOW = 200_000


@pytest.fixture(autouse=True)
def _needs_cli() -> None:
    claude_binary()  # skips when `npm ci` was not run in tests/node


def local_config() -> dict[str, Any]:
    """The default config, with every local tier on the fakes' models and a 200k window."""
    data = config_data()
    data["tiers"]["fast"].update(model=FAST_MODEL, contextWindow=BIG_WINDOW)
    data["tiers"]["coder"].update(model=CODER_MODEL, contextWindow=BIG_WINDOW)
    data["tiers"]["reasoning"].update(model=CODER_MODEL, contextWindow=BIG_WINDOW)
    return data


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    models = [
        FakeModel(FAST_MODEL, capabilities=["completion", "tools"], context_length=BIG_WINDOW),
        FakeModel(CODER_MODEL, capabilities=["completion", "tools"], context_length=BIG_WINDOW),
    ]
    with FakeOllama(models=models, default_num_ctx=BIG_WINDOW) as server:
        yield server


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(default="Hello from the fake Anthropic API.") as server:
        yield server


def proxy_env(
    router_home: Path, ollama_url: str, anthropic_url: str, **extra: str
) -> dict[str, str]:
    """The proxy's environment: never a real upstream (OpenRouter has no key and a dead URL)."""
    return {
        "HYBRID_ROUTER_HOME": str(router_home),
        "OLLAMA_HOST": ollama_url,
        "HYBRID_ROUTER_ANTHROPIC_URL": anthropic_url,
        "HYBRID_ROUTER_OPENROUTER_URL": f"http://127.0.0.1:{free_port()}/api/v1",
        "HYBRID_ROUTER_LLAMACPP_URL": f"http://127.0.0.1:{free_port()}/v1",
        **extra,
    }


def proxy_rows(router_home: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(router_home / "decisions.db")
    conn.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in conn.execute("SELECT * FROM decisions WHERE source = 'proxy' ORDER BY id")
        ]
    finally:
        conn.close()


def messages_to(server: FakeOllama) -> list[dict[str, Any]]:
    return [r.body for r in server.requests_to("/api/chat", "POST") if isinstance(r.body, dict)]


def is_title(body: dict[str, Any]) -> bool:
    """Claude Code's session-title request, as forwarded (the proxy drops `output_config`, which
    only Anthropic reads, so it is known by its system prompt)."""
    text = " ".join(
        str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system"
    )
    return "title" in text and "<session>" in json.dumps(body.get("messages"))


def tool_result_texts(body: dict[str, Any]) -> list[str]:
    """The tool results of an Ollama `/api/chat` body (`tool` messages)."""
    return [str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "tool"]


def test_cli_answer_comes_from_the_local_backend(
    tmp_path: Path, router_home: Path, ollama: FakeOllama, anthropic: FakeAnthropic
) -> None:
    ollama.script(CODER_MODEL, "Hello from the local coder model.")
    env = proxy_env(router_home, ollama.url, anthropic.url)
    with running_proxy(env, local_config()) as proxy:
        result = run_claude("say hi", base_url=proxy.url, tmp_path=tmp_path, timeout=60)
        proxy.flush_log()
    result.check()
    assert result.result == "Hello from the local coder model."
    assert anthropic.messages_requests() == []  # nothing reached the last resort
    main = [b for b in messages_to(ollama) if not is_title(b)]
    assert len(main) == 1
    body = main[0]
    assert body["model"] == CODER_MODEL
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system" and roles.count("system") == 1  # one leading system message
    assert len(body["tools"]) > 10  # Claude Code's tools went along
    assert body["options"]["num_ctx"] == BIG_WINDOW  # the tier's window, set on the request
    rows = proxy_rows(router_home)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["source"], row["provider"], row["model"], row["outcome"]) == (
        "proxy",
        "ollama",
        CODER_MODEL,
        "ok",
    )
    assert row["tier"] == "coder"
    assert row["requested_model"].startswith("claude-")
    assert row["session_id"]  # X-Claude-Code-Session-Id
    assert row["estimated_tokens"] > 10_000  # the CLI's real, tool-laden body
    assert row["fallback_from"] is None and row["error_class"] is None


def test_cli_tool_round_trip_through_the_proxy(
    tmp_path: Path, router_home: Path, ollama: FakeOllama, anthropic: FakeAnthropic
) -> None:
    def coder(body: dict[str, Any]) -> Reply:
        if tool_result_texts(body):
            return Reply(text="The command printed hello-proxy.")
        return Reply(tool_calls=[ToolCall("Bash", {"command": "echo hello-proxy"})])

    ollama.script(CODER_MODEL, coder)
    env = proxy_env(router_home, ollama.url, anthropic.url)
    with running_proxy(env, local_config()) as proxy:
        result = run_claude(
            "run echo hello-proxy in the shell",
            base_url=proxy.url,
            tmp_path=tmp_path,
            extra_args=["--allowedTools", "Bash"],
            timeout=60,
        )
        proxy.flush_log()
    result.check()
    assert result.result == "The command printed hello-proxy."
    assert anthropic.messages_requests() == []
    main = [b for b in messages_to(ollama) if not is_title(b)]
    assert len(main) == 2, [tool_result_texts(b) for b in main]
    assert tool_result_texts(main[0]) == []
    assert any("hello-proxy" in text for text in tool_result_texts(main[1])), main[1]["messages"][
        -1
    ]
    # The continuation carries the assistant's tool call, as the local model produced it.
    assistant = [m for m in main[1]["messages"] if m["role"] == "assistant"]
    calls = [c["function"] for m in assistant for c in m.get("tool_calls", [])]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("Bash", {"command": "echo hello-proxy"})
    ]
    assert [m.get("tool_name") for m in main[1]["messages"] if m["role"] == "tool"] == ["Bash"]
    rows = proxy_rows(router_home)
    assert [(r["provider"], r["model"], r["outcome"]) for r in rows] == [
        ("ollama", CODER_MODEL, "ok")
    ] * 2
    assert rows[0]["session_id"] == rows[1]["session_id"]
    assert rows[1]["estimated_tokens"] > rows[0]["estimated_tokens"]


def test_cli_falls_back_to_anthropic_when_ollama_is_down(
    tmp_path: Path, router_home: Path, ollama: FakeOllama, anthropic: FakeAnthropic
) -> None:
    anthropic.enqueue("Answered by the fallback.")
    ollama.down()  # connections to its port are refused
    env = proxy_env(router_home, ollama.url, anthropic.url, ANTHROPIC_API_KEY="sk-ant-proxy-key")
    with running_proxy(env, local_config()) as proxy:
        result = run_claude("say hi", base_url=proxy.url, tmp_path=tmp_path, timeout=60)
        proxy.flush_log()
    result.check()
    assert result.result == "Answered by the fallback."
    main = anthropic.main_requests()
    assert len(main) == 1
    # The proxy's key replaced the CLI's; the CLI's own Claude model went through unchanged.
    assert main[0].header("x-api-key") == "sk-ant-proxy-key"
    assert main[0].body["model"].startswith("claude-")
    rows = proxy_rows(router_home)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["provider"], row["outcome"], row["fallback_from"]) == (
        "anthropic",
        "fallback",
        "ollama",
    )
    assert row["model"] == main[0].body["model"]


def test_cli_title_request_goes_to_the_fast_tier(
    tmp_path: Path, router_home: Path, ollama: FakeOllama, anthropic: FakeAnthropic
) -> None:
    """With nonessential traffic on, the CLI asks for a session title (structured output, no
    tools) besides the turn: a background request, which goes to the fast tier."""
    ollama.script(FAST_MODEL, Reply(text=json.dumps({"title": "Greeting the user"})))
    ollama.script(CODER_MODEL, "Hello from the local coder model.")
    env = proxy_env(router_home, ollama.url, anthropic.url)
    prompt = "please greet me warmly and tell me in one sentence what you can help me with today"
    with running_proxy(env, local_config()) as proxy:
        result = run_claude(
            prompt,
            base_url=proxy.url,
            tmp_path=tmp_path,
            timeout=60,
            env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": None},
        )
        proxy.flush_log()
    result.check()
    assert result.result == "Hello from the local coder model."
    assert anthropic.messages_requests() == []
    bodies = messages_to(ollama)
    titles = [b for b in bodies if is_title(b)]
    assert len(titles) == 1, [b["model"] for b in bodies]
    assert titles[0]["model"] == FAST_MODEL and "tools" not in titles[0]
    assert "output_config" not in titles[0]  # Anthropic-only: not sent to Ollama
    assert titles[0]["format"]["required"] == ["title"]  # the JSON schema, as Ollama's `format`
    turns = [b for b in bodies if not is_title(b)]
    assert [b["model"] for b in turns] == [CODER_MODEL]
    rows = proxy_rows(router_home)
    assert len(rows) == len(bodies) == 2
    background = [r for r in rows if r["rule"] == "background"]
    assert [(r["tier"], r["provider"], r["model"], r["outcome"]) for r in background] == [
        ("fast", "ollama", FAST_MODEL, "ok")
    ]
    assert {r["session_id"] for r in rows} == {rows[0]["session_id"]}  # one CLI session


def test_cli_haiku_model_goes_to_the_fast_tier(
    tmp_path: Path, router_home: Path, ollama: FakeOllama, anthropic: FakeAnthropic
) -> None:
    """A haiku-class model (`--model haiku`, what the CLI uses for its small/fast work) is a
    background request: the fast tier answers it, whatever the prompt says."""
    ollama.script(FAST_MODEL, "Hello from the fast model.")
    ollama.script(CODER_MODEL, "wrong tier")
    env = proxy_env(router_home, ollama.url, anthropic.url)
    with running_proxy(env, local_config()) as proxy:
        result = run_claude(
            "refactor the retry logic and add tests",
            base_url=proxy.url,
            tmp_path=tmp_path,
            extra_args=["--model", "haiku"],
            timeout=60,
        )
        proxy.flush_log()
    result.check()
    assert result.result == "Hello from the fast model."
    assert anthropic.messages_requests() == []
    assert [b["model"] for b in messages_to(ollama)] == [FAST_MODEL]
    rows = proxy_rows(router_home)
    assert [(r["rule"], r["tier"], r["provider"], r["model"], r["outcome"]) for r in rows] == [
        ("background", "fast", "ollama", FAST_MODEL, "ok")
    ]
    assert "haiku" in rows[0]["requested_model"]
