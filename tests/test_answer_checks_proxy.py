"""Checked answers through the proxy, with the official anthropic SDK and raw HTTP: a local
model's broken answer to a request offering tools never reaches the client; the next link
(OpenRouter `:free`, then the premium tier) answers, and the request's one row names the check
and the model that failed it.

Backends: FakeOllama (the routed coder model, scripted to break its answer), FakeOpenRouter
(the coder tier's `:free` fallback) and FakeAnthropic (the premium last resort).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from fakes.fake_anthropic import tool_use as anthropic_tool_use
from fakes.fake_ollama import Reply, ToolCall
from fakes.fake_openrouter import FakeOpenRouter
from fakes.fake_openrouter import Reply as FreeReply
from fakes.fake_openrouter import ToolCall as FreeToolCall
from test_proxy_support import (
    CLAUDE,
    CLIENT_KEY,
    CODE_PROMPT,
    CODER_MODEL,
    FREE_MODEL,
    Rig,
    assert_anthropic_error,
    assert_anthropic_sse,
    body,
    config,
    rig,
    sse_events,
    tool,
)

TOOLS = [tool("Bash"), tool("Read")]
FREE_TEXT = "Answered by the free model."
ANTHROPIC_TEXT = "Hello from the fake Anthropic API."
LOOP_COMMAND = "ls -la"


def loop_history() -> list[dict[str, Any]]:
    """A turn in which the model already ran `ls -la` twice in a row."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": CODE_PROMPT}]
    for n in range(2):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": f"toolu_loop{n}",
                        "name": "Bash",
                        "input": {"command": LOOP_COMMAND},
                    }
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_loop{n}", "content": "."}
                ],
            }
        )
    return messages


# What the local model answers for each check, and the request it answers.
BROKEN: dict[str, Reply] = {
    "unknown-tool": Reply(tool_calls=[ToolCall("DeleteEverything", {"path": "/"})]),
    "invalid-tool-input": Reply(tool_calls=[ToolCall("Bash", {"cmd": "ls"})]),
    "truncated-tool-call": Reply(
        text="Running it.", tool_calls=[ToolCall("Bash", {"command": "ls"})], done_reason="length"
    ),
    "empty": Reply(),
    "tool-loop": Reply(tool_calls=[ToolCall("Bash", {"command": LOOP_COMMAND})]),
    "refusal": Reply(text="I'm sorry, but I can't assist with that."),
}
CHECKS = list(BROKEN)


def request_for(check: str, *, stream: bool = False) -> dict[str, Any]:
    data = body(stream=stream, tools=TOOLS)
    if check == "tool-loop":
        data["messages"] = loop_history()
    return data


@pytest.fixture
def openrouter() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as server:
        yield server


def checked_rig(router_home: Path, openrouter: FakeOpenRouter | None, **proxy: Any) -> Any:
    return rig(router_home, config_data=config(**proxy), openrouter=openrouter)


def sdk(r: Rig) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0)


def assert_row_names_the_check(row: dict[str, Any], check: str) -> None:
    assert (row["provider"], row["model"], row["outcome"]) == ("openrouter", FREE_MODEL, "fallback")
    assert row["error_class"] == check
    assert (row["failed_provider"], row["failed_model"]) == ("ollama", CODER_MODEL)
    assert row["fallback_from"] == "ollama"
    assert row["answer_checked"] == 1  # the free model's answer was checked too
    assert f"failed ollama/{CODER_MODEL}: its answer failed the {check} check" in row["reason"]


@pytest.mark.parametrize("check", CHECKS)
def test_a_broken_answer_moves_down_the_chain_with_the_sdk(
    router_home: Path, openrouter: FakeOpenRouter, check: str
) -> None:
    openrouter.script(FREE_MODEL, FREE_TEXT)
    with checked_rig(router_home, openrouter) as r, sdk(r) as client:
        r.ollama.script(CODER_MODEL, BROKEN[check])
        data = request_for(check)
        message = client.messages.create(**data)
        assert [b.type for b in message.content] == ["text"]
        assert message.content[0].text == FREE_TEXT  # type: ignore[union-attr]
        with client.messages.stream(**data) as stream:
            streamed = stream.get_final_message()
        assert [b.type for b in streamed.content] == ["text"]
        assert streamed.content[0].text == FREE_TEXT  # type: ignore[union-attr]
        rows = r.rows(2)  # one row per request
        for row in rows:
            assert_row_names_the_check(row, check)
        assert r.ollama_models() == [CODER_MODEL] * 2


@pytest.mark.parametrize("check", CHECKS)
def test_a_held_stream_sends_only_the_good_answer(
    router_home: Path, openrouter: FakeOpenRouter, check: str
) -> None:
    openrouter.script(FREE_MODEL, FreeReply(tool_calls=[FreeToolCall("Read", {"command": "a"})]))
    with checked_rig(router_home, openrouter) as r:
        r.ollama.script(CODER_MODEL, BROKEN[check])
        response = r.post(request_for(check, stream=True))
        assert response.status_code == 200
        assert_anthropic_sse(response.text)
        events = sse_events(response.text)
        starts = [d["content_block"] for n, d in events if n == "content_block_start"]
        assert [(b["type"], b["name"]) for b in starts] == [("tool_use", "Read")]
        assert "DeleteEverything" not in response.text and "Running it" not in response.text
        assert_row_names_the_check(r.rows(1)[0], check)


def test_when_the_free_model_fails_too_the_premium_tier_answers(
    router_home: Path, openrouter: FakeOpenRouter
) -> None:
    openrouter.script(FREE_MODEL, FreeReply(tool_calls=[FreeToolCall("Nope", {})]))
    with checked_rig(router_home, openrouter) as r, sdk(r) as client:
        r.ollama.script(CODER_MODEL, BROKEN["invalid-tool-input"])
        message = client.messages.create(**request_for("invalid-tool-input"))
        assert message.content[0].text == ANTHROPIC_TEXT  # type: ignore[union-attr]
        row = r.rows(1)[0]
        assert (row["provider"], row["outcome"]) == ("anthropic", "fallback")
        # The first failure is the one the row names; the others are in the reason.
        assert row["error_class"] == "invalid-tool-input"
        assert (row["failed_provider"], row["failed_model"]) == ("ollama", CODER_MODEL)
        second = f"failed openrouter/{FREE_MODEL}: its answer failed the unknown-tool check"
        assert second in row["reason"]
        assert row["answer_checked"] is None  # Anthropic's answers are not checked


@pytest.mark.parametrize("stream", [False, True])
def test_when_no_link_is_left_the_error_names_the_check(router_home: Path, stream: bool) -> None:
    with checked_rig(router_home, None, lastResort=None) as r:
        r.ollama.script(CODER_MODEL, BROKEN["unknown-tool"])
        response = r.post(request_for("unknown-tool", stream=stream))
        error = assert_anthropic_error(response, 502, "api_error")
        assert error["error"]["message"].startswith("hybrid-router: no usable answer: ")
        assert "unknown-tool" in error["error"]["message"]
        assert "DeleteEverything" in error["error"]["message"]  # what the model called
        assert response.headers["request-id"].startswith("req_")
        row = r.rows(1)[0]
        assert (row["outcome"], row["error_class"]) == ("error", "unknown-tool")
        assert (row["failed_provider"], row["failed_model"]) == ("ollama", CODER_MODEL)


def test_a_stream_already_pinging_ends_with_an_error_event_naming_the_check(
    router_home: Path,
) -> None:
    with checked_rig(
        router_home, None, lastResort=None, firstByteGraceSeconds=0.1, pingIntervalSeconds=0.1
    ) as r:
        r.ollama.script(CODER_MODEL, BROKEN["empty"])
        r.ollama.delay(0.5, path="/api/chat")
        response = r.post(request_for("empty", stream=True))
        assert response.status_code == 200
        events = sse_events(response.text)
        names = [n for n, _ in events]
        assert names[0] == "ping" and names[-1] == "error", names
        assert set(names) == {"ping", "error"}  # nothing of the broken answer
        assert "empty" in events[-1][1]["error"]["message"]
        assert r.rows(1)[0]["error_class"] == "empty"


def arrivals(r: Rig, data: dict[str, Any]) -> list[tuple[float, str]]:
    """(seconds since the request, event name) for every SSE event, as it arrived."""
    started = time.monotonic()
    seen: list[tuple[float, str]] = []
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", r.url + "/v1/messages", json=data, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                seen.append((time.monotonic() - started, line[6:].strip()))
    return seen


LONG_TEXT = " ".join(f"word{n}" for n in range(8))


def test_holding_pings_until_the_answer_is_checked_then_sends_it_at_once(
    router_home: Path,
) -> None:
    with checked_rig(router_home, None, firstByteGraceSeconds=0.1, pingIntervalSeconds=0.1) as r:
        r.ollama.line_delay = 0.1  # the model writes a word every 100 ms
        r.ollama.script(
            CODER_MODEL, Reply(text=LONG_TEXT, tool_calls=[ToolCall("Bash", {"command": "ls"})])
        )
        seen = arrivals(r, request_for("none", stream=True))
        names = [name for _, name in seen]
        first_content = names.index("message_start")
        assert names[:first_content].count("ping") >= 3  # pings while the answer was held
        assert "ping" not in names[first_content:]
        content_times = [at for at, _ in seen[first_content:]]
        assert content_times[-1] - content_times[0] < 0.05  # sent at once, once checked
        assert content_times[0] >= 0.7  # ... after the whole answer (8 words, a call, done)
        row = r.rows(1)[0]
        assert (row["outcome"], row["answer_checked"], row["error_class"]) == ("ok", 1, None)
        assert row["ttft_ms"] >= 700  # the client's first token came when the answer was whole


def test_check_answers_stream_lets_streams_flow_unchecked(router_home: Path) -> None:
    with checked_rig(router_home, None, checkAnswers="stream") as r:
        r.ollama.line_delay = 0.1
        r.ollama.script(CODER_MODEL, Reply(text=LONG_TEXT))
        seen = arrivals(r, request_for("none", stream=True))
        text_times = [at for at, name in seen if name == "content_block_delta"]
        assert text_times[-1] - text_times[0] >= 0.5  # streamed as written, not held
        # ... so a broken stream reaches the client (the documented trade-off), while a whole
        # answer is still checked.
        r.ollama.script(CODER_MODEL, BROKEN["unknown-tool"])
        broken = r.post(request_for("unknown-tool", stream=True))
        assert "DeleteEverything" in broken.text
        whole = r.post(request_for("unknown-tool"))
        assert whole.json()["content"][0]["text"] == ANTHROPIC_TEXT
        rows = r.rows(3)
        assert [(row["outcome"], row["answer_checked"]) for row in rows] == [
            ("ok", None),
            ("ok", None),
            ("fallback", None),
        ]
        assert rows[2]["error_class"] == "unknown-tool"


def test_check_answers_off_checks_nothing(router_home: Path) -> None:
    with checked_rig(router_home, None, checkAnswers="off") as r:
        r.ollama.script(CODER_MODEL, BROKEN["unknown-tool"])
        assert "DeleteEverything" in r.post(request_for("unknown-tool")).text
        row = r.rows(1)[0]
        assert (row["outcome"], row["error_class"], row["failed_model"]) == ("ok", None, None)


def test_no_check_without_tools_or_on_anthropic(router_home: Path) -> None:
    with checked_rig(router_home, None) as r:
        # No tools offered: an empty local answer is passed on as it is (nothing to check).
        r.ollama.script(CODER_MODEL, Reply())
        plain = r.post(body())
        assert plain.status_code == 200 and plain.json()["content"] == []
        # Anthropic's answers are never checked, tools or not.
        r.anthropic.enqueue(anthropic_tool_use("NotOffered", {"x": 1}))
        r.ollama.fail(500, "down", path="/api/chat", times=1)
        premium = r.post(body(tools=TOOLS))
        assert premium.json()["content"][0]["name"] == "NotOffered"
        rows = r.rows(2)
        assert [(row["provider"], row["answer_checked"]) for row in rows] == [
            ("ollama", None),
            ("anthropic", None),
        ]


def test_a_good_local_answer_is_checked_and_passes(router_home: Path) -> None:
    with checked_rig(router_home, None) as r, sdk(r) as client:
        r.ollama.script(CODER_MODEL, Reply(tool_calls=[ToolCall("Bash", {"command": "ls"})]))
        message = client.messages.create(
            model=CLAUDE,
            max_tokens=256,
            tools=TOOLS,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": CODE_PROMPT}],
        )
        assert message.stop_reason == "tool_use"
        assert message.content[0].input == {"command": "ls"}  # type: ignore[union-attr]
        row = r.rows(1)[0]
        assert (row["provider"], row["outcome"], row["answer_checked"]) == ("ollama", "ok", 1)
        assert row["failed_model"] is None and row["error_class"] is None


@pytest.mark.parametrize(
    ("protocol", "check"),
    [
        ("ollama", "invalid-tool-input"),
        ("ollama", "truncated-tool-call"),
        ("anthropic", "invalid-tool-input"),
        ("anthropic", "unknown-tool"),
        ("openai", "invalid-tool-input"),
        ("openai", "truncated-tool-call"),
    ],
)
def test_every_protocol_a_local_server_speaks_is_checked(
    router_home: Path, openrouter: FakeOpenRouter, protocol: str, check: str
) -> None:
    """Ollama's native /api/chat (the default), its Anthropic-style /v1/messages (whose tool
    input streams as partial JSON) and its OpenAI-style /v1/chat/completions. (Ollama's
    Messages API reports any answer with a tool call as `tool_use`, even one stopped by the
    token limit: a cut call is invisible there, so that case is not one of its broken answers.)"""
    openrouter.script(FREE_MODEL, FREE_TEXT)
    with rig(
        router_home, config_data=config(), openrouter=openrouter, ollama_protocol=protocol
    ) as r:
        r.ollama.script(CODER_MODEL, BROKEN[check])
        for stream in (False, True):
            response = r.post(request_for(check, stream=stream))
            assert response.status_code == 200, response.text
            if stream:
                assert_anthropic_sse(response.text)
                events = sse_events(response.text)
                kinds = [
                    d["content_block"]["type"] for n, d in events if n == "content_block_start"
                ]
                deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
                text = "".join(delta.get("text", "") for delta in deltas)
            else:
                kinds = [block["type"] for block in response.json()["content"]]
                text = response.json()["content"][0]["text"]
            assert (kinds, text) == (["text"], FREE_TEXT)  # the free model's, nothing else
        rows = r.rows(2)
        assert {(row["outcome"], row["error_class"], row["failed_model"]) for row in rows} == {
            ("fallback", check, CODER_MODEL)
        }
        paths = {
            "ollama": "/api/chat",
            "anthropic": "/v1/messages",
            "openai": "/v1/chat/completions",
        }
        assert len(r.ollama.requests_to(paths[protocol])) == 2
