"""The proxy against each kind of upstream: Ollama (new and old), the real llama.cpp server on
both of its APIs, OpenRouter (free tier, limits, attribution) and Anthropic (byte-faithful
passthrough). Real HTTP on 127.0.0.1; the `anthropic` SDK as the client where it fits."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest
from claude_code_bodies import claude_code_body
from fakes.fake_anthropic import text as anthropic_text
from fakes.fake_ollama import Reply, ToolCall
from fakes.fake_openrouter import FakeOpenRouter
from llama_server import LlamaServer
from test_proxy_support import (
    CLAUDE,
    CLIENT_KEY,
    CODE_PROMPT,
    CODER_MODEL,
    FAST_MODEL,
    FREE_MODEL,
    HAIKU,
    SECURITY_PROMPT,
    assert_anthropic_sse,
    body,
    config,
    rig,
    sse_events,
    tool,
    wait_until,
)

# -- Ollama ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "protocol", "path"),
    [
        ("0.13.5", None, "/api/chat"),  # auto: the native API, whatever the version
        ("0.33.0", None, "/api/chat"),
        ("0.14.2", "anthropic", "/v1/messages"),  # chosen in the config
        ("0.14.2", "openai", "/v1/chat/completions"),
    ],
)
def test_ollama_is_spoken_to_in_the_configured_api(
    router_home: Path, version: str, protocol: str | None, path: str
) -> None:
    with (
        rig(router_home, ollama_version=version, ollama_protocol=protocol) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        r.ollama.script(
            CODER_MODEL, Reply(text="Sure.", tool_calls=[ToolCall("Bash", {"command": "pytest"})])
        )
        created = client.messages.create(
            model=CLAUDE,
            max_tokens=300,
            tools=[tool()],
            messages=[{"role": "user", "content": CODE_PROMPT}],
        )
        assert [b.type for b in created.content] == ["text", "tool_use"]
        assert (
            created.content[1].input == {"command": "pytest"} and created.stop_reason == "tool_use"
        )
        raw = r.post(body(stream=True, tools=[tool()]))
        assert raw.status_code == 200
        names = assert_anthropic_sse(raw.text)
        assert names.count("content_block_start") == 2
        with client.messages.stream(
            model=CLAUDE,
            max_tokens=300,
            tools=[tool()],
            messages=[{"role": "user", "content": CODE_PROMPT}],
        ) as stream:
            final = stream.get_final_message()
        assert final.content[1].name == "Bash" and final.usage.output_tokens > 0

        sent = r.ollama.requests_to(path)
        assert [q.body["model"] for q in sent] == [CODER_MODEL] * 3
        others = {"/api/chat", "/v1/messages", "/v1/chat/completions"} - {path}
        assert all(r.ollama.requests_to(other) == [] for other in others)
        if path == "/api/chat":  # the tier's window on every request, the answer within it
            assert {q.body["options"]["num_ctx"] for q in sent} == {16384}
            assert all(q.body["options"]["num_predict"] <= 300 for q in sent)
        rows = r.rows(3)
        assert [(row["provider"], row["outcome"]) for row in rows] == [("ollama", "ok")] * 3
        assert all(row["output_tokens"] > 0 and row["input_tokens"] > 0 for row in rows)


def test_claude_code_body_is_adapted_for_ollamas_messages_api(router_home: Path) -> None:
    cc = claude_code_body(CODE_PROMPT, tool_count=3, tool_description_chars=300)
    with rig(router_home, ollama_protocol="anthropic") as r:
        response = r.post(cc)
        assert response.status_code == 200
        assert_anthropic_sse(response.text)
        [sent] = r.ollama.requests_to("/v1/messages")
        assert sent.body["model"] == CODER_MODEL
        for field in ("context_management", "output_config", "metadata"):
            assert field not in sent.body  # Anthropic-only
        assert "thinking" not in sent.body  # adaptive thinking is Anthropic's own
        assert [m["role"] for m in sent.body["messages"]] == ["user"]  # the system message moved
        assert "Available agent types" in sent.body["system"][-1]["text"]
        [row] = r.rows(1)
        assert sent.body["max_tokens"] <= 16384 - row["estimated_tokens"]  # what the window leaves


def test_ollama_never_gets_more_than_its_window(router_home: Path) -> None:
    """A full Claude Code body (~20k tokens) is over the coder's 16k window: Anthropic takes it."""
    with rig(router_home) as r:
        response = r.post(claude_code_body(CODE_PROMPT))
        assert response.status_code == 200
        assert r.ollama.requests_to("/api/chat") == []
        [row] = r.rows(1)
        assert (row["rule"], row["provider"], row["model"]) == (
            "context-window",
            "anthropic",
            CLAUDE,
        )
        assert row["estimated_tokens"] > 16384


def test_a_fallback_whose_window_is_too_small_is_skipped(router_home: Path) -> None:
    """Fast tier (32k) falls back to the coder model (16k): a ~20k request skips that link."""
    data = config()
    data["tiers"]["fast"]["fallbacks"] = [{"provider": "ollama", "model": CODER_MODEL}]
    with rig(router_home, config_data=data) as r:
        r.ollama.fail(500, "model crashed", path="/api/chat", times=1)
        payload = body("hello " + "lorem ipsum dolor " * 4000, model=HAIKU, max_tokens=1000)
        response = r.post(payload)
        assert response.status_code == 200, response.text
        assert r.ollama_models() == [FAST_MODEL]  # the coder model was never sent it
        assert [q.body["model"] for q in r.anthropic.main_requests()] == [HAIKU]
        [row] = r.rows(1)
        assert (row["provider"], row["outcome"], row["fallback_from"]) == (
            "anthropic",
            "fallback",
            "ollama",
        )


# -- llama.cpp (the real server) -------------------------------------------------------------


def _llama_config(protocol: str) -> dict[str, Any]:
    data = config(lastResort=None)
    data["providers"]["llamacpp"]["protocol"] = protocol
    data["tiers"]["coder"] = {"provider": "llamacpp", "model": "smollm2", "contextWindow": 2048}
    return data


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_llama_cpp_on_both_apis(
    router_home: Path, llama_server: LlamaServer, protocol: str
) -> None:
    env = {"HYBRID_ROUTER_LLAMACPP_URL": llama_server.v1_url}
    with (
        rig(router_home, config_data=_llama_config(protocol), env=env) as r,
        anthropic.Anthropic(
            base_url=r.url, api_key=CLIENT_KEY, max_retries=0, timeout=120
        ) as client,
    ):
        messages = [{"role": "user", "content": CODE_PROMPT}]
        created = client.messages.create(
            model=CLAUDE, max_tokens=3, messages=messages, system="You are terse."
        )
        assert created.type == "message" and created.content and created.content[0].type == "text"
        assert created.stop_reason in ("max_tokens", "end_turn")
        assert created.usage.input_tokens > 0 and 0 < created.usage.output_tokens <= 3

        raw = r.post(body(stream=True, max_tokens=3), timeout=120)
        assert raw.status_code == 200
        assert_anthropic_sse(raw.text)
        delta = [d for n, d in sse_events(raw.text) if n == "message_delta"][-1]
        assert 0 < delta["usage"]["output_tokens"] <= 3

        rows = r.rows(2)
        assert [(row["provider"], row["model"], row["outcome"]) for row in rows] == [
            ("llamacpp", "smollm2", "ok")
        ] * 2
        assert rows[0]["input_tokens"] == created.usage.input_tokens
        assert all(row["input_tokens"] > 0 and 0 < row["output_tokens"] <= 3 for row in rows)
        assert all(
            row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"] for row in rows
        )
        assert r.anthropic.requests == []


# -- OpenRouter ------------------------------------------------------------------------------


def _refreshed(r: Any) -> None:
    """Wait for the proxy's start-up read of OpenRouter's /key."""
    tracker = r.proxy.state.openrouter
    wait_until(
        lambda: tracker.snapshot("openrouter", time.time()).get("refreshed_at"),
        what="the OpenRouter /key refresh",
    )


def test_openrouter_free_model_with_attribution(router_home: Path) -> None:
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, openrouter=openrouter, ollama_down=True) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        openrouter.script(FREE_MODEL, "Free answer here.")
        created = client.messages.create(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
        )
        assert created.content[0].text == "Free answer here."
        with client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
        ) as stream:
            assert "".join(stream.text_stream) == "Free answer here."
            final = stream.get_final_message()
        assert final.usage.output_tokens > 0
        chats = openrouter.requests_to("/api/v1/chat/completions")
        assert [q.body["model"] for q in chats] == [FREE_MODEL] * 2
        for q in chats:
            assert q.header("x-title") == "claude-hybrid-router"
            assert q.header("authorization") == f"Bearer {openrouter.api_key}"
        assert r.anthropic.requests == []
        rows = r.rows(2)
        assert [
            (row["provider"], row["model"], row["outcome"], row["fallback_from"]) for row in rows
        ] == [("openrouter", FREE_MODEL, "fallback", "ollama")] * 2
        assert all(row["output_tokens"] > 0 for row in rows)


def test_openrouter_429_moves_on_and_the_exhausted_free_tier_is_then_skipped(
    router_home: Path,
) -> None:
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, openrouter=openrouter, ollama_down=True) as r,
    ):
        _refreshed(r)
        openrouter.exhaust_free_daily()  # the account hits its daily cap, unknown to the proxy
        first = r.post(body(stream=True))
        assert first.status_code == 200
        assert "Hello from the fake Anthropic API." in "".join(
            d["delta"].get("text", "")
            for n, d in sse_events(first.text)
            if n == "content_block_delta"
        )
        assert len(openrouter.requests_to("/api/v1/chat/completions")) == 1  # the 429
        second = r.post(body())
        assert second.status_code == 200
        assert len(openrouter.requests_to("/api/v1/chat/completions")) == 1  # skipped, not tried
        assert len(r.anthropic.main_requests()) == 2
        rows = r.rows(2)
        assert [(row["provider"], row["outcome"]) for row in rows] == [
            ("anthropic", "fallback")
        ] * 2


def test_openrouter_free_tier_known_exhausted_at_start_is_never_tried(router_home: Path) -> None:
    with FakeOpenRouter() as openrouter:
        openrouter.exhaust_free_daily()
        with rig(router_home, openrouter=openrouter, ollama_down=True) as r:
            _refreshed(r)
            assert r.post(body()).status_code == 200
            assert r.post(body(stream=True)).status_code == 200
            assert openrouter.requests_to("/api/v1/chat/completions") == []
            assert len(r.anthropic.main_requests()) == 2


def test_openrouter_402_moves_on(router_home: Path) -> None:
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, openrouter=openrouter, ollama_down=True) as r,
    ):
        openrouter.insufficient_credits(times=1)
        response = r.post(body())
        assert response.status_code == 200
        assert response.json()["content"][0]["text"] == "Hello from the fake Anthropic API."
        assert len(openrouter.requests_to("/api/v1/chat/completions")) == 1
        [row] = r.rows(1)
        assert (row["provider"], row["outcome"]) == ("anthropic", "fallback")


def test_openrouter_200_with_an_error_object_moves_on(router_home: Path) -> None:
    """A non-streaming OpenAI-protocol answer of HTTP 200 whose body is an error object is a
    failed link like any other: the next link answers and the row shows the fallback."""
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, openrouter=openrouter, ollama_down=True) as r,
    ):
        openrouter.error_with_200(status=502, message="Provider returned error")
        response = r.post(body())
        assert response.status_code == 200, response.text
        assert response.json()["content"][0]["text"] == "Hello from the fake Anthropic API."
        assert len(openrouter.requests_to("/api/v1/chat/completions")) == 1
        assert len(r.anthropic.main_requests()) == 1
        [row] = r.rows(1)
        assert (row["provider"], row["outcome"], row["fallback_from"]) == (
            "anthropic",
            "fallback",
            "ollama",
        )


def test_openrouter_short_retry_after_is_waited_out_on_the_same_link(router_home: Path) -> None:
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, openrouter=openrouter, ollama_down=True) as r,
    ):
        _refreshed(r)
        openrouter.rate_limit_minute(retry_after=0.3, times=1)
        started = time.monotonic()
        response = r.post(body(stream=True))
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
        assert len(openrouter.requests_to("/api/v1/chat/completions")) == 2
        assert r.anthropic.requests == []
        [row] = r.rows(1)
        assert row["provider"] == "openrouter"


# -- Anthropic -------------------------------------------------------------------------------

BETA = (
    "interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "fine-grained-tool-streaming-2025-05-14"
)


def _odd_bytes(payload: dict[str, Any]) -> bytes:
    """JSON as no re-serialisation would write it: odd spacing, raw UTF-8, escapes kept."""
    text = json.dumps(payload, ensure_ascii=False, indent=1, separators=(" ,", " : "))
    return text.replace("injection", "inj\\u0065ction").encode()


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_passthrough_is_byte_faithful(router_home: Path, stream: bool) -> None:
    payload = claude_code_body(SECURITY_PROMPT + " — café ✓", stream=stream)
    payload["unknown_future_field"] = {"kept": [1, 2.50, None]}
    raw = _odd_bytes(payload)
    headers = {
        "anthropic-beta": BETA,
        "anthropic-version": "2023-06-01",
        "x-app": "cli",
        "user-agent": "claude-cli/2.1.197 (external, sdk-cli)",
        "authorization": "Bearer client-oauth-token",
        "X-Claude-Code-Session-Id": "s-1",
    }
    with rig(router_home) as r:
        response = r.post(raw, path="/v1/messages?beta=true", headers=headers)
        assert response.status_code == 200, response.text
        if stream:
            assert_anthropic_sse(response.text)
        else:
            assert response.json()["content"][0]["text"] == "Hello from the fake Anthropic API."
        [sent] = r.anthropic.main_requests()
        assert sent.raw == raw
        assert sent.header("anthropic-beta") == BETA
        assert sent.header("anthropic-version") == "2023-06-01"
        assert sent.header("x-api-key") == CLIENT_KEY  # no key configured: the client's own auth
        assert sent.header("authorization") == "Bearer client-oauth-token"
        assert sent.header("x-app") == "cli"
        assert sent.header("user-agent") == headers["user-agent"]


def test_anthropic_gets_the_configured_key_instead_of_the_clients(router_home: Path) -> None:
    with rig(router_home, env={"ANTHROPIC_API_KEY": "sk-ant-proxy-key"}) as r:
        response = r.post(body(SECURITY_PROMPT), headers={"authorization": "Bearer client-oauth"})
        assert response.status_code == 200
        [sent] = r.anthropic.main_requests()
        assert sent.header("x-api-key") == "sk-ant-proxy-key"
        assert sent.header("authorization") is None
        assert sent.header("anthropic-version") == "2023-06-01"


def test_anthropic_gets_a_changed_model_only_when_the_route_says_so(router_home: Path) -> None:
    payload = body(
        SECURITY_PROMPT,
        model="my-gateway-alias",
        metadata={"user_id": "u-1"},
        thinking={"type": "adaptive"},
        temperature=0.3,
    )
    with rig(router_home) as r:
        r.anthropic.enqueue(anthropic_text("changed"))
        response = r.post(payload, headers={"anthropic-beta": BETA})
        assert response.status_code == 200
        [sent] = r.anthropic.main_requests()
        expected = copy.deepcopy(payload)
        expected["model"] = "claude-sonnet-5"  # the premium tier's model
        assert sent.body == expected
        assert list(sent.body) == list(payload)  # same fields, same order
        assert sent.header("anthropic-beta") == BETA
