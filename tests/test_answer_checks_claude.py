"""The real Claude Code CLI (`claude -p`, tests/node) through the proxy, with a local model that
breaks its answer in each way the proxy checks: Claude Code always gets a well-formed answer
from the next link (the coder tier's OpenRouter `:free` fallback), never the broken one, and the
request's one row names the check and the model that failed it.

The CLI's main requests stream and offer its 24 tools (with their real JSON Schemas), so each
is held until checked. Set-up as in test_proxy_claude.py: FakeOllama's native /api/chat with
200k windows, FakeAnthropic as the premium tier, plus a FakeOpenRouter with a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_cli import claude_binary, run_claude
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_ollama import FakeModel, FakeOllama, Reply, ToolCall
from fakes.fake_openrouter import FakeOpenRouter
from proxy_server import running_proxy
from test_proxy_claude import (
    BIG_WINDOW,
    CODER_MODEL,
    FAST_MODEL,
    is_title,
    local_config,
    messages_to,
    proxy_env,
    proxy_rows,
    tool_result_texts,
)

FREE_MODEL = "qwen/qwen3-coder:free"  # the coder tier's fallback in the seed profile
FREE_ANSWER = "Answered by the free model instead."
LOOP_COMMAND = "echo same-again"

# What the local coder model answers to the CLI's main request, per check.
BROKEN: dict[str, Reply] = {
    "unknown-tool": Reply(tool_calls=[ToolCall("DeleteEverything", {"path": "/"})]),
    # Claude Code's Bash requires `command` and allows no other property it does not know.
    "invalid-tool-input": Reply(tool_calls=[ToolCall("Bash", {"cmd": "ls", "force": True})]),
    "truncated-tool-call": Reply(
        text="Running it now.",
        tool_calls=[ToolCall("Bash", {"command": "ls"})],
        done_reason="length",
    ),
    "empty": Reply(),
    "refusal": Reply(text="I'm sorry, but I can't assist with that."),
}


@pytest.fixture(autouse=True)
def _needs_cli() -> None:
    claude_binary()  # skips when `npm ci` was not run in tests/node


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


@pytest.fixture
def openrouter() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as server:
        server.script(FREE_MODEL, FREE_ANSWER)
        yield server


def env_with_openrouter(
    router_home: Path, ollama: FakeOllama, anthropic: FakeAnthropic, openrouter: FakeOpenRouter
) -> dict[str, str]:
    """The proxy's environment (no real upstream), with OpenRouter's key and the fake's URL."""
    env = proxy_env(router_home, ollama.url, anthropic.url)
    env.update(
        HYBRID_ROUTER_OPENROUTER_URL=openrouter.base_url, OPENROUTER_API_KEY=openrouter.api_key
    )
    return env


def main_rows(router_home: Path) -> list[dict[str, Any]]:
    return [r for r in proxy_rows(router_home) if r["rule"] != "background"]


@pytest.mark.parametrize("check", list(BROKEN))
def test_the_cli_gets_the_next_links_answer_never_the_broken_one(
    tmp_path: Path,
    router_home: Path,
    ollama: FakeOllama,
    anthropic: FakeAnthropic,
    openrouter: FakeOpenRouter,
    check: str,
) -> None:
    ollama.script(CODER_MODEL, BROKEN[check])
    env = env_with_openrouter(router_home, ollama, anthropic, openrouter)
    with running_proxy(env, local_config()) as proxy:
        result = run_claude("say hi", base_url=proxy.url, tmp_path=tmp_path, timeout=90)
        proxy.flush_log()
    result.check()
    assert result.result == FREE_ANSWER
    assert "DeleteEverything" not in result.stdout and "Running it now" not in result.stdout
    assert anthropic.messages_requests() == []  # the free fallback answered
    turns = [b for b in messages_to(ollama) if not is_title(b)]
    assert [b["model"] for b in turns] == [CODER_MODEL]
    assert len(turns[0]["tools"]) > 10  # the CLI's tools, whose schemas were checked
    rows = main_rows(router_home)
    assert len(rows) == 1, rows  # one row per request
    row = rows[0]
    assert (row["provider"], row["model"], row["outcome"]) == ("openrouter", FREE_MODEL, "fallback")
    assert row["error_class"] == check
    assert (row["failed_provider"], row["failed_model"]) == ("ollama", CODER_MODEL)
    assert row["answer_checked"] == 1


def test_a_tool_loop_is_cut_on_the_third_identical_call(
    tmp_path: Path,
    router_home: Path,
    ollama: FakeOllama,
    anthropic: FakeAnthropic,
    openrouter: FakeOpenRouter,
) -> None:
    """The local model runs the same command again and again: the first two calls reach the
    CLI (which runs them), the third is a loop and the free model answers instead."""
    ollama.script(CODER_MODEL, Reply(tool_calls=[ToolCall("Bash", {"command": LOOP_COMMAND})]))
    env = env_with_openrouter(router_home, ollama, anthropic, openrouter)
    with running_proxy(env, local_config()) as proxy:
        result = run_claude(
            "run echo same-again until it changes",
            base_url=proxy.url,
            tmp_path=tmp_path,
            extra_args=["--allowedTools", "Bash"],
            timeout=90,
        )
        proxy.flush_log()
    result.check()
    assert result.result == FREE_ANSWER
    turns = [b for b in messages_to(ollama) if not is_title(b)]
    assert [len(tool_result_texts(b)) for b in turns] == [0, 1, 2]
    assert all("same-again" in text for text in tool_result_texts(turns[2]))
    rows = main_rows(router_home)
    assert [(r["provider"], r["outcome"], r["error_class"]) for r in rows] == [
        ("ollama", "ok", None),
        ("ollama", "ok", None),
        ("openrouter", "fallback", "tool-loop"),
    ]
    assert rows[2]["failed_model"] == CODER_MODEL
    assert [r["answer_checked"] for r in rows] == [1, 1, 1]
