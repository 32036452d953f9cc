"""The MCP tools through the official client, in memory, against a fake Ollama and fake OpenRouter.

Every tool and every error path a user can hit: routing of the delegated task, files read on the
server side and their limits, declines, answer checks with retry and escalation, the log rows,
route_stats, and pull_model with progress.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_ollama import FakeModel, FakeOllama
from mcp import Client
from proxy_server import config_data

from hybrid_router.log.database import connect
from hybrid_router.log.rows import DecisionRow, record
from hybrid_router.mcp_server.server import build_server

FAST, CODER, REASONING = "qwen2.5-coder:7b", "deepseek-coder:33b", "llama3:70b"
FREE = "qwen/qwen3-coder:free"
GOOD_CODE = "Here it is:\n\n```python\ndef add(a, b):\n    return a + b\n```\n"
BAD_CODE = "```python\ndef add(a, b)\n    return a + b\n```"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    models = [FakeModel(FAST), FakeModel(CODER), FakeModel(REASONING, context_length=8192)]
    with FakeOllama(models=models, registry=[FakeModel("phi4-mini:3.8b", size=60_000)]) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


@pytest.fixture
def openrouter(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A second OpenAI-compatible fake standing in for OpenRouter's free models."""
    with FakeOllama(models=[FakeModel(FREE)], reply=GOOD_CODE) as server:
        monkeypatch.setenv("HYBRID_ROUTER_OPENROUTER_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-key")
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "dates.py").write_text("def parse(text):\n    return text.split('-')\n")
    return root


@pytest.fixture
async def client(project: Path, router_home: Path) -> AsyncIterator[Client]:
    async with Client(build_server(working_directory=project)) as connected:
        yield connected


def rows(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "decisions.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM decisions ORDER BY id")]


def write_config(home: Path, change) -> None:
    data = config_data()
    change(data)
    home.mkdir(parents=True, exist_ok=True)
    (home / "router-config.json").write_text(json.dumps(data))


def text_of(result) -> str:
    return result.content[0].text


def chat_requests(server: FakeOllama) -> list[Any]:
    return server.requests_to("/api/chat")


# anyio for the async tests; the seed profile: the tests tell the tiers apart by model
# (see conftest.seed_profile).
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("seed_profile")]


# --- tool list ---------------------------------------------------------------------------------


async def test_three_tools_with_short_descriptions(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"delegate_to_local", "route_stats", "pull_model"}
    # Claude pays for every token of its tool list: keep the descriptions short.
    assert all(len(tool.description or "") < 600 for tool in tools.values())
    assert "security" in tools["delegate_to_local"].description
    assert tools["delegate_to_local"].input_schema["required"] == ["task"]


# --- delegate_to_local: routing and the answer ---------------------------------------------------


async def test_code_task_goes_to_the_coder_model_and_comes_back_with_a_footer(
    ollama, router_home, client
):
    ollama.script(CODER, GOOD_CODE)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    result = await client.call_tool(
        "delegate_to_local",
        {"task": "write a function that adds two numbers"},
        progress_callback=on_progress,
    )
    assert not result.is_error, text_of(result)
    answer = text_of(result)
    assert "def add(a, b):" in answer
    footer = answer.strip().splitlines()[-1]
    assert footer.startswith("[ollama/deepseek-coder:33b | ")
    assert " in / " in footer and " out tokens | " in footer and "saved ~$" in footer
    assert any("asking ollama/deepseek-coder:33b" in (m or "") for _, _, m in progress)
    values = [v for v, _, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values)  # MCP progress rises

    (request,) = chat_requests(ollama)
    assert request.body["model"] == CODER
    assert request.body["options"]["num_ctx"] >= 4096  # never left to Ollama's silent default
    (row,) = rows(router_home)
    assert (row["source"], row["provider"], row["model"], row["outcome"]) == (
        "mcp",
        "ollama",
        CODER,
        "ok",
    )
    assert row["rule"] == "code-generation"
    assert row["output_tokens"] > 0 and row["cost"] == 0.0 and row["baseline_cost"] > 0
    assert row["prompt_text"] is None and row["prompt_hash"]


async def test_file_summary_reads_the_files_on_the_server_with_the_fast_model(
    ollama, project, client
):
    ollama.script(FAST, "It splits a date string on dashes.")
    result = await client.call_tool(
        "delegate_to_local", {"task": "summarize this file", "files": ["src/dates.py"]}
    )
    assert not result.is_error, text_of(result)
    (request,) = chat_requests(ollama)
    assert request.body["model"] == FAST
    prompt = request.body["messages"][-1]["content"]
    assert "return text.split('-')" in prompt and "`src/dates.py`" in prompt
    assert "return text.split('-')" not in text_of(
        result
    )  # the file text stays out of Claude's context


async def test_explicit_installed_model_is_used(ollama, client):
    ollama.script(REASONING, "Done.")
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a haiku", "model": "llama3:70b"}
    )
    assert not result.is_error, text_of(result)
    assert chat_requests(ollama)[0].body["model"] == REASONING


async def test_explicit_model_that_is_not_installed_lists_the_installed_ones(ollama, client):
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a haiku", "model": "mistral:7b"}
    )
    assert result.is_error
    message = text_of(result)
    assert "'mistral:7b' is not installed" in message
    assert FAST in message and CODER in message and "pull_model" in message
    assert chat_requests(ollama) == []


# --- delegate_to_local: declines -----------------------------------------------------------------


async def test_security_task_is_declined_with_the_reason(ollama, router_home, client):
    result = await client.call_tool(
        "delegate_to_local", {"task": "review the login handler for SQL injection"}
    )
    assert result.is_error
    message = text_of(result)
    assert (
        message.count("Declined") == 1 and '"sql injection"' in message and "force=true" in message
    )
    assert chat_requests(ollama) == []
    (row,) = rows(router_home)
    assert (row["outcome"], row["rule"], row["provider"]) == ("declined", "security", "anthropic")


async def test_force_runs_a_premium_task_locally(ollama, router_home, client):
    ollama.script(CODER, "No injection found.")
    result = await client.call_tool(
        "delegate_to_local", {"task": "review the login handler for SQL injection", "force": True}
    )
    assert not result.is_error, text_of(result)
    assert "forced" in text_of(result)
    assert rows(router_home)[0]["rule"] == "forced"


# --- delegate_to_local: files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["src/missing.py"], "files[0] 'src/missing.py': no such file"),
        (["src"], "is a directory"),
        (["../outside.txt"], "outside the working directory"),
        (["/etc/hostname"], "outside the working directory"),
        (["src/blob.bin"], "a binary file"),
        (["src/latin1.txt"], "not UTF-8"),
        (
            ["src/dates.py", "src/huge.py"],
            "files[1] 'src/huge.py': 300.0 KB is over the 256.0 KB limit",
        ),
    ],
)
async def test_unusable_files_are_clear_tool_errors(ollama, project, files, expected, client):
    (project.parent / "outside.txt").write_text("secret")
    (project / "src" / "blob.bin").write_bytes(b"\x7fELF\0\0\0binary")
    (project / "src" / "latin1.txt").write_bytes("café".encode("latin-1"))
    (project / "src" / "huge.py").write_text("x = 1\n" * 51_200)
    result = await client.call_tool(
        "delegate_to_local", {"task": "summarize these", "files": files}
    )
    assert result.is_error
    assert expected in text_of(result)
    assert chat_requests(ollama) == []


async def test_symlink_out_of_the_project_is_outside(ollama, project, client):
    (project.parent / "elsewhere.txt").write_text("not yours")
    (project / "src" / "link.txt").symlink_to(project.parent / "elsewhere.txt")
    result = await client.call_tool(
        "delegate_to_local", {"task": "summarize", "files": ["src/link.txt"]}
    )
    assert result.is_error and "outside the working directory" in text_of(result)


async def test_outside_files_are_allowed_when_configured(project, router_home, ollama):
    write_config(router_home, lambda d: d["delegate"].update(allowOutsideWorkingDirectory=True))
    (project.parent / "notes.txt").write_text("shared notes")
    ollama.script(FAST, "Notes about sharing.")
    async with Client(build_server(working_directory=project)) as client:
        result = await client.call_tool(
            "delegate_to_local", {"task": "summarize", "files": ["../notes.txt"]}
        )
    assert not result.is_error, text_of(result)
    assert "shared notes" in chat_requests(ollama)[0].body["messages"][-1]["content"]


async def test_total_size_limit(project, router_home, ollama):
    write_config(router_home, lambda d: d["delegate"].update(maxTotalFileBytes=60))
    async with Client(build_server(working_directory=project)) as client:
        result = await client.call_tool(
            "delegate_to_local", {"task": "summarize", "files": ["src/dates.py", "src/dates.py"]}
        )
    assert result.is_error and "together pass the 60 bytes limit" in text_of(result)


# --- delegate_to_local: checking answers, retry and escalation ---------------------------------


async def test_unparsable_code_escalates_to_openrouter_free(
    ollama, openrouter, router_home, client
):
    ollama.script(CODER, BAD_CODE)
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a function that adds numbers"}
    )
    assert not result.is_error, text_of(result)
    assert f"[openrouter/{FREE} (fallback from ollama)" in text_of(result)
    (request,) = openrouter.requests_to("/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-or-test-key"
    assert request.headers["x-title"] == "claude-hybrid-router"
    (row,) = rows(router_home)
    assert (row["outcome"], row["provider"], row["fallback_from"]) == (
        "fallback",
        "openrouter",
        "ollama",
    )
    assert "sk-or-test-key" not in json.dumps(row)


async def test_last_link_gets_one_retry_told_what_was_wrong(ollama, client):
    ollama.enqueue(BAD_CODE, GOOD_CODE)  # no OpenRouter key: the coder model is the only link
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a function that adds numbers"}
    )
    assert not result.is_error, text_of(result)
    _first, second = chat_requests(ollama)
    assert second.body["messages"][-2] == {"role": "assistant", "content": BAD_CODE}
    assert "does not parse" in second.body["messages"][-1]["content"]


async def test_code_that_never_parses_is_a_tool_error_that_says_why(ollama, router_home, client):
    ollama.script(CODER, BAD_CODE)
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a function that adds numbers"}
    )
    assert result.is_error
    message = text_of(result)
    assert "code block 1 (python) does not parse" in message and "Do the task yourself" in message
    assert len(chat_requests(ollama)) == 2
    assert rows(router_home)[0]["outcome"] == "error"


async def test_bad_json_block_is_caught(ollama, client):
    ollama.script(CODER, '```json\n{"a": 1,}\n```')
    result = await client.call_tool("delegate_to_local", {"task": "write a json config"})
    assert result.is_error and "(json) does not parse" in text_of(result)


async def test_truncated_answer_advises_a_larger_max_tokens(ollama, router_home, client):
    ollama.script(CODER, "word " * 200)
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a long story", "max_tokens": 20}
    )
    assert result.is_error
    assert "cut off at max_tokens=20" in text_of(result) and "larger max_tokens" in text_of(result)
    assert chat_requests(ollama)[0].body["options"]["num_predict"] == 20
    assert rows(router_home)[0]["outcome"] == "truncated"


async def test_refusal_is_not_passed_off_as_an_answer(ollama, router_home, client):
    ollama.script(CODER, "I'm sorry, but I can't help with that request.")
    result = await client.call_tool("delegate_to_local", {"task": "write a function to sort users"})
    assert result.is_error and "the model refused" in text_of(result)
    assert rows(router_home)[0]["outcome"] == "refused"


async def test_empty_answer_is_caught(ollama, client):
    ollama.script(CODER, "")
    result = await client.call_tool("delegate_to_local", {"task": "write a function"})
    assert result.is_error and "empty answer" in text_of(result)


# --- delegate_to_local: backends down ----------------------------------------------------------


async def test_ollama_down_without_openrouter_says_what_to_do(ollama, router_home, client):
    ollama.down()
    result = await client.call_tool("delegate_to_local", {"task": "write a function"})
    assert result.is_error
    message = text_of(result)
    assert "ollama/deepseek-coder:33b: cannot connect" in message
    assert "OPENROUTER_API_KEY is not set" in message and "No local model answered" in message
    assert rows(router_home)[0]["outcome"] == "error"


async def test_ollama_down_falls_back_to_openrouter_free(ollama, openrouter, client):
    ollama.down()
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a function that adds numbers"}
    )
    assert not result.is_error, text_of(result)
    assert "(fallback from ollama)" in text_of(result)


async def test_ollama_500_moves_on(ollama, openrouter, client):
    ollama.fail(500, "model runner crashed", path="/api/chat")
    result = await client.call_tool(
        "delegate_to_local", {"task": "write a function that adds numbers"}
    )
    assert not result.is_error, text_of(result)


async def test_missing_routed_model_is_reported(ollama, client):
    ollama.fail(404, f"model '{CODER}' not found", path="/api/chat")
    result = await client.call_tool("delegate_to_local", {"task": "write a function"})
    assert result.is_error and "not found" in text_of(result)


async def test_invalid_config_is_a_tool_error_naming_the_field(router_home, project):
    write_config(router_home, lambda d: d["tiers"]["coder"].update(contextWindow="big"))
    async with Client(build_server(working_directory=project)) as client:
        result = await client.call_tool("delegate_to_local", {"task": "write a function"})
    assert result.is_error
    assert "tiers.coder.contextWindow" in text_of(result)


async def test_bad_arguments_are_rejected_by_the_schema(client):
    result = await client.call_tool("delegate_to_local", {"task": "x", "max_tokens": 1})
    assert result.is_error and "max_tokens" in text_of(result)


# --- route_stats ---------------------------------------------------------------------------------


async def test_route_stats_matches_the_log(ollama, monkeypatch, client):
    ollama.script(CODER, GOOD_CODE)
    await client.call_tool("delegate_to_local", {"task": "write a function that adds numbers"})
    await client.call_tool("delegate_to_local", {"task": "review this for sql injection"})
    result = await client.call_tool("route_stats", {"period": "24h"})
    assert not result.is_error
    data = result.structured_content
    assert data["requests"] == 1  # a declined delegation called no model
    assert data["outcomes"] == {"ok": 1, "declined": 1}
    assert {p["provider"] for p in data["providers"]} == {"ollama"}
    assert data["savings"] > 0
    assert [r["outcome"] for r in data["recent"]] == ["declined", "ok"]
    text = text_of(result)
    assert "2 decisions" in text and "Cost without router" in text and "Recent decisions:" in text


async def test_route_stats_for_one_session(router_home, project):

    conn = connect(router_home / "decisions.db")
    for session in ("a", "a", "b"):
        record(
            conn,
            DecisionRow(source="hook", rule="r", provider="ollama", model="m", session_id=session),
        )
    conn.close()
    async with Client(build_server(working_directory=project)) as client:
        result = await client.call_tool("route_stats", {"period": "all", "session": "a"})
    assert result.structured_content["decisions"] == 2
    assert result.structured_content["session"] == "a"
    assert "session a" in text_of(result)


async def test_route_stats_bad_period(client):
    result = await client.call_tool("route_stats", {"period": "fortnight-ish"})
    assert result.is_error and "invalid period 'fortnight-ish'" in text_of(result)


# --- pull_model ----------------------------------------------------------------------------------


async def test_pull_relays_progress_and_installs(ollama, router_home, client):
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    result = await client.call_tool(
        "pull_model", {"name": "phi4-mini:3.8b"}, progress_callback=on_progress
    )
    assert not result.is_error, text_of(result)
    assert "Pulled phi4-mini:3.8b" in text_of(result)
    assert "phi4-mini:3.8b" in [m.name for m in ollama.installed()]
    values = [v for v, _, _ in progress]
    assert values == sorted(values) and values[-1] == 60_000
    assert any(total == 60_000 for _, total, _ in progress)
    assert progress[0][2] == "pulling manifest" and progress[-1][2] == "success"
    (row,) = rows(router_home)
    assert (row["rule"], row["model"], row["outcome"]) == ("pull-model", "phi4-mini:3.8b", "ok")


async def test_pull_of_an_installed_model_answers_at_once(ollama, client):
    result = await client.call_tool("pull_model", {"name": "qwen2.5-coder:7b"})
    assert "already installed" in text_of(result)
    assert ollama.requests_to("/api/pull") == []


async def test_pull_unknown_model(ollama, router_home, client):
    result = await client.call_tool("pull_model", {"name": "no-such-model:1b"})
    assert result.is_error and "does not know a model named 'no-such-model:1b'" in text_of(result)
    assert rows(router_home)[0]["outcome"] == "error"


async def test_pull_with_ollama_down(ollama, client):
    ollama.down()
    result = await client.call_tool("pull_model", {"name": "phi4-mini:3.8b"})
    assert result.is_error and "Ollama is not reachable" in text_of(result)


async def test_interrupted_pull_resumes_when_called_again(ollama, client):
    ollama.break_stream("/api/pull", after=3)
    first = await client.call_tool("pull_model", {"name": "phi4-mini:3.8b"})
    assert first.is_error
    assert "interrupted" in text_of(first) and "call pull_model again to resume" in text_of(first)

    progress: list[float] = []

    async def on_progress(value, total, message):
        if message and message.startswith("pulling") and message != "pulling manifest":
            progress.append(value)

    second = await client.call_tool(
        "pull_model", {"name": "phi4-mini:3.8b"}, progress_callback=on_progress
    )
    assert not second.is_error, text_of(second)
    assert progress[0] > 0  # started from the bytes the first pull saved
    assert "phi4-mini:3.8b" in [m.name for m in ollama.installed()]
