"""Smoke tests for the shared test infrastructure: the real llama.cpp server, the fake Anthropic
API and the real Claude Code CLI runner. Protocol and shape only: the local model is tiny."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2 as httpx
import pytest
from claude_cli import run_claude
from fakes.fake_anthropic import (
    FakeAnthropic,
    RecordedRequest,
    error,
    is_main_request,
    is_title_request,
    text,
    thinking_then_text,
    tool_use,
)
from llama_server import LlamaServer


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def _sdk(base_url: str, **kw: object) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 30.0)
    return anthropic.Anthropic(base_url=base_url, api_key="sk-test", **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# llama.cpp server (real, SmolLM2 135M)
# ------------------------------------------------------------------------------------------


def test_llama_server_anthropic_messages(llama_server: LlamaServer) -> None:
    with _sdk(llama_server.url) as client:
        message = client.messages.create(
            model=llama_server.model,
            max_tokens=8,
            extra_body={"temperature": 0},  # anthropic 2.x dropped the temperature argument
            messages=[{"role": "user", "content": "Say hello."}],
        )
        assert message.type == "message"
        assert message.role == "assistant"
        assert message.content and message.content[0].type == "text"
        assert message.stop_reason in ("end_turn", "max_tokens")
        # llama.cpp reuses its prompt cache: input_tokens is only the uncached part
        assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) > 0
        assert 0 < message.usage.output_tokens <= 8

        with client.messages.stream(
            model=llama_server.model,
            max_tokens=8,
            extra_body={"temperature": 0},
            messages=[{"role": "user", "content": "Count to three."}],
        ) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        assert pieces
        assert final.content[0].type == "text"
        assert "".join(pieces) == final.content[0].text
        assert final.usage.output_tokens > 0


def test_llama_server_chat_completions(llama_server: LlamaServer) -> None:
    payload = {
        "model": llama_server.model,
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    with httpx.Client(base_url=llama_server.url, timeout=30) as client:
        assert client.get("/health").json()["status"] == "ok"
        response = client.post("/v1/chat/completions", json=payload)
        response.raise_for_status()
        data = response.json()
        assert data["object"] == "chat.completion"
        assert data["choices"][0]["message"]["role"] == "assistant"
        assert isinstance(data["choices"][0]["message"]["content"], str)
        assert data["choices"][0]["finish_reason"] in ("stop", "length")
        assert data["usage"]["prompt_tokens"] > 0
        assert 0 < data["usage"]["completion_tokens"] <= 8

        chunks = []
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={**payload, "stream": True, "stream_options": {"include_usage": True}},
        ) as streamed:
            assert streamed.status_code == 200
            for line in streamed.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunks.append(json.loads(line[len("data: ") :]))
        assert chunks and chunks[0]["object"] == "chat.completion.chunk"
        assert any(c.get("usage") for c in chunks)


# ------------------------------------------------------------------------------------------
# Fake Anthropic API with the official SDK
# ------------------------------------------------------------------------------------------


def test_fake_anthropic_text_stream_and_count_tokens(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(text("Hello there."), thinking_then_text("Hmm.", "Streamed reply."))
    with _sdk(fake_anthropic.url) as client:
        message = client.messages.create(
            model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == "Hello there."
        assert message.model == "claude-test"
        assert message.stop_reason == "end_turn"
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

        with client.messages.stream(
            model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "again"}]
        ) as stream:
            assert "".join(stream.text_stream) == "Streamed reply."
            final = stream.get_final_message()
        assert [b.type for b in final.content] == ["thinking", "text"]
        assert final.content[0].thinking == "Hmm."

        count = client.messages.count_tokens(
            model="claude-test", messages=[{"role": "user", "content": "count me"}]
        )
        assert count.input_tokens > 0

    first, second = fake_anthropic.main_requests()
    assert not first.body.get("stream")
    assert second.body["stream"] is True
    assert second.header("anthropic-version")  # the 2.x SDK sends 2026-10-21, the CLI 2023-06-01
    # anthropic 2.x sends api_key as a bearer token; Claude Code sends x-api-key
    assert second.header("authorization") == "Bearer sk-test"
    assert fake_anthropic.requests[-1].path == "/v1/messages/count_tokens"


def test_fake_anthropic_tool_use_round_trip(fake_anthropic: FakeAnthropic) -> None:
    def script(request: RecordedRequest) -> str | None:
        results = request.tool_result_texts()
        return f"got {results[0]}" if results else None

    fake_anthropic.handler = script
    fake_anthropic.enqueue(tool_use("get_weather", {"city": "Paris"}, id="toolu_fixed_1"))
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    messages: list[dict] = [{"role": "user", "content": "Weather in Paris?"}]
    with _sdk(fake_anthropic.url) as client:
        with client.messages.stream(
            model="m", max_tokens=100, tools=tools, messages=messages
        ) as stream:
            first = stream.get_final_message()
        assert first.stop_reason == "tool_use"
        call = first.content[0]
        assert call.type == "tool_use" and call.id == "toolu_fixed_1"
        assert call.name == "get_weather" and call.input == {"city": "Paris"}
        messages += [
            {"role": "assistant", "content": [call.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ]
        second = client.messages.create(model="m", max_tokens=100, tools=tools, messages=messages)
    assert second.content[0].text == "got sunny"
    follow_up = fake_anthropic.main_requests()[-1]
    assert follow_up.tool_results[0]["tool_use_id"] == "toolu_fixed_1"


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
    ],
)
def test_fake_anthropic_error_statuses(
    fake_anthropic: FakeAnthropic, status: int, exc_type: type[Exception], error_type: str
) -> None:
    fake_anthropic.enqueue(error(status))
    with _sdk(fake_anthropic.url) as client, pytest.raises(exc_type) as info:
        client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    exc = info.value
    assert isinstance(exc, anthropic.APIStatusError)
    assert exc.status_code == status
    assert exc.body["type"] == "error" and exc.body["error"]["type"] == error_type
    assert exc.request_id and exc.request_id.startswith("req_")


def test_fake_anthropic_faults(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(
        text("slow", delay=0.3),
        text("a long answer that breaks", break_after=4),
        text("x", stream_error="overloaded_error"),
    )
    with _sdk(fake_anthropic.url) as client:
        started = time.monotonic()
        client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
        assert time.monotonic() - started >= 0.3

        # the SDK does not wrap a transport error raised mid-stream
        with (
            pytest.raises((anthropic.APIConnectionError, httpx.TransportError)),
            client.messages.stream(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            ) as stream,
        ):
            stream.get_final_message()

        with (
            pytest.raises(anthropic.APIStatusError) as info,
            client.messages.stream(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            ) as stream,
        ):
            stream.get_final_message()
        assert "overloaded" in str(info.value).lower()


def test_title_requests_are_answered_without_consuming_the_script(
    fake_anthropic: FakeAnthropic,
) -> None:
    title_body = {
        "model": "haiku",
        "max_tokens": 100,
        "tools": [],
        "messages": [{"role": "user", "content": "<session>x</session>"}],
        "output_config": {
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}},
                    "required": ["title"],
                },
            }
        },
    }
    assert is_title_request(title_body) and not is_main_request(title_body)
    fake_anthropic.enqueue(text("scripted"))
    with _sdk(fake_anthropic.url) as client:
        titled = client.messages.create(**title_body)
        assert json.loads(titled.content[0].text) == {"title": fake_anthropic.title}
        main = client.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
        assert main.content[0].text == "scripted"
    assert fake_anthropic.pending == 0
    assert len(fake_anthropic.main_requests()) == 1


# ------------------------------------------------------------------------------------------
# The real Claude Code CLI against the fake
# ------------------------------------------------------------------------------------------


def test_claude_cli_say_hi(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.enqueue(text("Hi from the fake!"))
    result = run_claude("say hi", base_url=fake_anthropic.url, tmp_path=tmp_path).check()
    assert result.json["result"] == "Hi from the fake!"
    assert result.json["is_error"] is False
    (main,) = fake_anthropic.main_requests()
    assert main.query.get("beta") == ["true"]
    assert main.body["stream"] is True
    assert main.header("user-agent", "").startswith("claude-cli/")
    assert main.header("x-api-key") == "sk-test"
    assert main.header("x-claude-code-session-id") == result.json["session_id"]
    assert "Bash" in main.tool_names


def test_claude_cli_bash_tool_round_trip(fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    fake_anthropic.enqueue(
        tool_use("Bash", {"command": "echo hello", "description": "Print hello"}),
    )
    fake_anthropic.handler = lambda req: (
        f"TOOL_RESULT_SEEN: {req.tool_result_texts()[0]}" if req.tool_results else None
    )
    result = run_claude(
        "run echo hello",
        base_url=fake_anthropic.url,
        tmp_path=tmp_path,
        extra_args=["--allowedTools", "Bash"],
    ).check()
    assert result.json["result"] == "TOOL_RESULT_SEEN: hello"
    first, follow_up = fake_anthropic.main_requests()
    assistant_blocks = [
        b for m in follow_up.body["messages"] if m["role"] == "assistant" for b in m["content"]
    ]
    assert [b["name"] for b in assistant_blocks if b["type"] == "tool_use"] == ["Bash"]
    (block,) = follow_up.tool_results
    assert block["is_error"] is False
    assert block["tool_use_id"] == first.reply.content[0]["id"]
    assert follow_up.tool_result_texts() == ["hello"]
