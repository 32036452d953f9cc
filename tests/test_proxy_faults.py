"""Fallback and liveness (failures before the first byte move down the chain; failures after it
end the stream with an SSE `error` event; pings while an upstream is silent), Anthropic's own
errors as the last word, and the decision log (one row per answered request, no secrets)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from fakes.fake_anthropic import Reply as AnthropicReply
from fakes.fake_anthropic import error as anthropic_error_reply
from fakes.fake_anthropic import text as anthropic_text
from fakes.fake_ollama import Reply
from fakes.fake_openrouter import FakeOpenRouter
from test_proxy_support import (
    CLAUDE,
    CLIENT_KEY,
    CODE_PROMPT,
    CODER_MODEL,
    SECURITY_PROMPT,
    assert_anthropic_error,
    assert_anthropic_sse,
    body,
    config,
    database_bytes,
    home_bytes,
    rig,
    sse_events,
)

ANTHROPIC_TEXT = "Hello from the fake Anthropic API."


def _text_of(raw: str) -> str:
    return "".join(
        d["delta"].get("text", "") for n, d in sse_events(raw) if n == "content_block_delta"
    )


# -- failures before the first byte ----------------------------------------------------------

FAULTS = [
    "connection refused",
    "timeout",
    "500",
    "503",
    "529",
    "429 with a long retry-after",
    "broken before any content",
]


@pytest.mark.parametrize("fault", FAULTS)
def test_failures_before_the_first_byte_move_to_the_next_link(
    router_home: Path, fault: str
) -> None:
    data = config()
    data["providers"]["ollama"]["readTimeout"] = 0.4
    with rig(router_home, config_data=data, ollama_down=fault == "connection refused") as r:
        if fault == "timeout":
            r.ollama.delay(5, path="/api/chat")
        elif fault == "429 with a long retry-after":
            r.ollama.fail(429, "slow down", path="/api/chat", headers={"Retry-After": "30"})
        elif fault == "broken before any content":
            r.ollama.break_stream("/api/chat", after=0, times=None)
        elif fault != "connection refused":
            r.ollama.fail(int(fault), "injected", path="/api/chat")
        started = time.monotonic()
        if fault == "broken before any content":  # (only streams can break: FakeOllama's fault)
            plain = r.post(body(stream=True))
            assert _text_of(plain.text) == ANTHROPIC_TEXT
        else:
            plain = r.post(body())
            assert plain.status_code == 200, plain.text
            assert plain.json()["content"][0]["text"] == ANTHROPIC_TEXT
        streamed = r.post(body(stream=True))
        assert streamed.status_code == 200
        assert_anthropic_sse(streamed.text)
        assert "event: error" not in streamed.text and _text_of(streamed.text) == ANTHROPIC_TEXT
        assert time.monotonic() - started < 4  # no 30 s retry-after, no 5 s delay waited out
        expected_tries = 0 if fault == "connection refused" else 2
        assert len(r.ollama.requests_to("/api/chat")) == expected_tries
        assert [q.body["model"] for q in r.anthropic.main_requests()] == [CLAUDE, CLAUDE]
        rows = r.rows(2)
        for row in rows:
            assert (row["provider"], row["model"], row["outcome"]) == (
                "anthropic",
                CLAUDE,
                "fallback",
            )
            assert row["fallback_from"] == "ollama" and row["rule"] == "code-generation"
            assert row["output_tokens"] > 0 and row["cost"] > 0


def test_429_with_a_short_retry_after_is_retried_once_on_the_same_link(router_home: Path) -> None:
    with rig(router_home) as r:
        r.ollama.fail(429, "slow down", path="/api/chat", headers={"Retry-After": "0.3"}, times=1)
        started = time.monotonic()
        response = r.post(body(stream=True))
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
        assert _text_of(response.text) == "Hello from the fake Ollama."
        assert r.ollama_models() == [CODER_MODEL, CODER_MODEL] and r.anthropic.requests == []
        [row] = r.rows(1)
        assert (row["provider"], row["outcome"], row["fallback_from"]) == ("ollama", "ok", None)

        r.ollama.fail(429, "slow down", path="/api/chat", headers={"Retry-After": "0.1"}, times=2)
        again = r.post(body())  # a second 429 on the retry: the next link
        assert again.json()["content"][0]["text"] == ANTHROPIC_TEXT
        assert len(r.ollama.requests_to("/api/chat")) == 4


def test_anthropic_429_with_retry_after_zero_is_retried(router_home: Path) -> None:
    with rig(router_home) as r:
        r.anthropic.enqueue(anthropic_error_reply(429), anthropic_text("after the wait"))
        response = r.post(body(SECURITY_PROMPT))
        assert response.json()["content"][0]["text"] == "after the wait"
        assert len(r.anthropic.main_requests()) == 2


# -- Anthropic as the last word --------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_anthropics_own_error_bodies_reach_the_client_unchanged(
    router_home: Path, stream: bool
) -> None:
    message = "prompt is too long: 250000 tokens > 200000 maximum"
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        r.anthropic.enqueue(anthropic_error_reply(400, "invalid_request_error", message))
        response = r.post(body(SECURITY_PROMPT, stream=stream))
        error = assert_anthropic_error(response, 400, "invalid_request_error")
        assert error["error"]["message"] == message
        assert error["request_id"].startswith("req_fake_")  # Anthropic's body, not a rewrap

        # Ollama fails first, then Anthropic's 529 is the chain's last word.
        r.ollama.fail(500, "boom", path="/api/chat")
        r.anthropic.enqueue(anthropic_error_reply(529))
        overloaded = r.post(body(stream=stream))
        error = assert_anthropic_error(overloaded, 529, "overloaded_error")
        assert error["error"]["message"] == "Overloaded" and error["request_id"].startswith(
            "req_fake_"
        )

        r.anthropic.enqueue(anthropic_error_reply(400, "invalid_request_error", message))
        with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
            if stream:
                with client.messages.stream(
                    model=CLAUDE,
                    max_tokens=50,
                    messages=[{"role": "user", "content": SECURITY_PROMPT}],
                ) as s:
                    s.get_final_message()
            else:
                client.messages.create(
                    model=CLAUDE,
                    max_tokens=50,
                    messages=[{"role": "user", "content": SECURITY_PROMPT}],
                )
        rows = r.rows(3)
        # No link answered: the row names the routed provider, and the last failure's class.
        assert [(row["provider"], row["outcome"]) for row in rows] == [
            ("anthropic", "error"),
            ("ollama", "error"),
            ("anthropic", "error"),
        ]
        assert [row["error_class"] for row in rows] == ["http-400", "http-529", "http-400"]
        assert all(row["cost"] == 0 and row["output_tokens"] == 0 for row in rows)


def test_anthropics_retry_after_reaches_the_client(router_home: Path) -> None:
    """A 429 whose Retry-After is too long to wait out in the proxy: the client must see it."""
    with rig(router_home) as r:
        for stream in (False, True):
            r.anthropic.enqueue(anthropic_error_reply(429, retry_after="30"))
            response = r.post(body(SECURITY_PROMPT, stream=stream))
            assert_anthropic_error(response, 429, "rate_limit_error")
            assert response.headers.get("retry-after") == "30", dict(response.headers)


def test_nothing_answers_gives_an_anthropic_error_not_a_hang(router_home: Path) -> None:
    data = config()
    data["proxy"]["lastResort"] = None
    with rig(router_home, config_data=data, ollama_down=True) as r:
        for stream in (False, True):
            response = r.post(body(stream=stream))
            error = assert_anthropic_error(response, 529, "overloaded_error")
            assert "no upstream answered" in error["error"]["message"]
        rows = r.rows(2)
        assert [(row["outcome"], row["error_class"]) for row in rows] == [("error", "connect")] * 2


# -- failures after the first byte -----------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "fault"),
    [
        ("ollama", "break"),
        ("ollama", "stream_error"),
        ("anthropic", "break"),
        ("anthropic", "stream_error"),
        ("openai", "break"),
        ("openai", "stream_error"),
    ],
)
def test_a_failure_mid_stream_ends_with_an_sse_error(
    router_home: Path, protocol: str, fault: str
) -> None:
    path = {"ollama": "/api/chat", "anthropic": "/v1/messages", "openai": "/v1/chat/completions"}[
        protocol
    ]
    with (
        rig(router_home, ollama_protocol=protocol) as r,
        anthropic.Anthropic(
            base_url=r.url, api_key=CLIENT_KEY, max_retries=0, timeout=10
        ) as client,
    ):
        r.ollama.script(CODER_MODEL, "one two three four five six seven eight")
        if fault == "break":
            r.ollama.break_stream(path, after=4, times=None)
        else:
            r.ollama.stream_error(path, after=4, error="model runner crashed", times=None)
        raw = r.post(body(stream=True))
        assert raw.status_code == 200
        events = sse_events(raw.text)
        names = [n for n, _ in events]
        assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names
        assert events[-1][1]["type"] == "error" and events[-1][1]["error"]["message"]
        started = time.monotonic()
        with (
            pytest.raises(anthropic.APIStatusError),
            client.messages.stream(
                model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": CODE_PROMPT}]
            ) as stream,
        ):
            for _ in stream:
                pass
        assert time.monotonic() - started < 5
        assert r.anthropic.requests == []  # content was sent: no fallback after the first byte
        rows = r.rows(2)
        # a dropped connection is a broken stream; an error event is the upstream's own error
        error_class = "stream-broken" if fault == "break" else "upstream-error"
        assert [(row["provider"], row["outcome"], row["error_class"]) for row in rows] == [
            ("ollama", "error", error_class)
        ] * 2
        assert all(row["ttft_ms"] is not None for row in rows)


def test_anthropics_own_mid_stream_error_event_is_forwarded_unchanged(router_home: Path) -> None:
    with rig(router_home) as r:
        r.anthropic.enqueue(
            AnthropicReply(
                content=[{"type": "text", "text": "partial answer here"}],
                stream_error="overloaded_error",
            )
        )
        raw = r.post(body(SECURITY_PROMPT, stream=True))
        name, data = sse_events(raw.text)[-1]
        assert name == "error"
        assert data == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }


# -- pings -----------------------------------------------------------------------------------


def test_pings_flow_while_the_upstream_is_silent(router_home: Path) -> None:
    data = config(pingIntervalSeconds=0.2, firstByteGraceSeconds=0.2)
    with rig(router_home, config_data=data) as r:
        r.ollama.delay(1.2, path="/api/chat", times=1)
        r.ollama.script(CODER_MODEL, "slow words come one by one")
        r.ollama.line_delay = 0.35  # silence between the chunks too
        started = time.monotonic()
        lines = []
        with httpx.stream(
            "POST",
            r.url + "/v1/messages",
            json=body(stream=True),
            headers={"x-api-key": CLIENT_KEY},
            timeout=10,
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not lines:
                    first_byte = time.monotonic() - started
                lines.append(line)
        raw = "\n".join(lines)
        assert lines[0] == "event: ping" and first_byte < 0.8  # long before the upstream's 1.2 s
        names = assert_anthropic_sse(raw)
        all_names = [n for n, _ in sse_events(raw)]
        before = all_names.index("message_start")
        assert before >= 3, all_names  # 1.2 s of silence, a ping every 0.2 s after 0.2 s of grace
        assert all_names[before:].count("ping") >= 4, all_names  # the 0.35 s gaps between events
        assert _text_of(raw) == "slow words come one by one"
        assert names.count("content_block_delta") == 6


def test_pings_then_fallback_then_error_event(router_home: Path) -> None:
    """Once pings committed the response to 200, a later fallback still answers, and when the
    whole chain fails the stream ends with an `error` event."""
    data = config(pingIntervalSeconds=0.2, firstByteGraceSeconds=0.2)
    with (
        rig(router_home, config_data=data) as r,
        anthropic.Anthropic(
            base_url=r.url, api_key=CLIENT_KEY, max_retries=0, timeout=10
        ) as client,
    ):
        r.ollama.delay(0.8, path="/api/chat")
        r.ollama.fail(500, "crashed after loading", path="/api/chat")
        fallback = r.post(body(stream=True))
        assert fallback.status_code == 200
        names = assert_anthropic_sse(fallback.text)
        assert names[0] == "message_start" and sse_events(fallback.text)[0][0] == "ping"
        assert _text_of(fallback.text) == ANTHROPIC_TEXT

        r.anthropic.enqueue(anthropic_error_reply(529))
        failed = r.post(body(stream=True))
        assert failed.status_code == 200  # committed by the pings
        events = sse_events(failed.text)
        assert events[0][0] == "ping" and events[-1][0] == "error"
        assert "message_start" not in [n for n, _ in events]

        r.anthropic.enqueue(anthropic_error_reply(529))
        with (
            pytest.raises(anthropic.APIStatusError),
            client.messages.stream(
                model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": CODE_PROMPT}]
            ) as stream,
        ):
            stream.get_final_message()
        rows = r.rows(3)
        assert [(row["provider"], row["outcome"]) for row in rows] == [
            ("anthropic", "fallback"),
            ("ollama", "error"),
            ("ollama", "error"),
        ]


# -- the decision log ------------------------------------------------------------------------


def test_exactly_one_row_per_answered_request_with_usage_cost_and_timing(router_home: Path) -> None:
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        r.ollama.script(CODER_MODEL, Reply(text="a b c d e f g", prompt_tokens=321))
        r.anthropic.enqueue(
            AnthropicReply(
                content=[{"type": "text", "text": "premium"}], input_tokens=1000, output_tokens=200
            ),
            AnthropicReply(
                content=[{"type": "text", "text": "premium"}], input_tokens=1000, output_tokens=200
            ),
        )
        usages = []
        usages.append(
            client.messages.create(
                model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
            ).usage
        )
        with client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
        ) as stream:
            usages.append(stream.get_final_message().usage)
        usages.append(
            client.messages.create(
                model=CLAUDE,
                max_tokens=100,
                messages=[{"role": "user", "content": SECURITY_PROMPT}],
            ).usage
        )
        with client.messages.stream(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": SECURITY_PROMPT}]
        ) as stream:
            usages.append(stream.get_final_message().usage)
        r.ollama.fail(503, "loading", path="/api/chat", times=1)
        usages.append(
            client.messages.create(
                model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
            ).usage
        )
        r.ollama.fail(503, "loading", path="/api/chat", times=1)
        r.anthropic.enqueue(anthropic_error_reply(500))
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(
                model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": CODE_PROMPT}]
            )
        rows = r.rows(6)

    local, local_stream, premium, premium_stream, fallback, failed = rows
    for row, usage in zip(rows[:5], usages, strict=True):
        assert row["source"] == "proxy" and row["requested_model"] == CLAUDE
        assert (row["input_tokens"], row["output_tokens"]) == (
            usage.input_tokens,
            usage.output_tokens,
        )
        assert row["baseline_cost"] > 0  # what claude-opus-4-8 would have cost
        assert 0 < row["ttft_ms"] <= row["latency_ms"]
    assert (local["input_tokens"], local["output_tokens"]) == (321, 7)
    assert (local_stream["input_tokens"], local_stream["output_tokens"]) == (321, 7)
    assert local["cost"] == 0 and local["outcome"] == "ok" and local["provider"] == "ollama"
    for row in (premium, premium_stream):
        assert (row["input_tokens"], row["output_tokens"]) == (1000, 200)
        assert row["cost"] > 0 and row["cost"] == pytest.approx(row["baseline_cost"])  # same model
        assert (row["provider"], row["outcome"], row["fallback_from"]) == ("anthropic", "ok", None)
        assert row["rule"] == "security"
    assert premium["cost"] == pytest.approx(premium_stream["cost"])
    assert (fallback["provider"], fallback["outcome"], fallback["fallback_from"]) == (
        "anthropic",
        "fallback",
        "ollama",
    )
    assert fallback["cost"] > 0
    assert (failed["outcome"], failed["error_class"], failed["cost"], failed["ttft_ms"]) == (
        "error",
        "http-500",
        0,
        None,
    )
    assert failed["latency_ms"] > 0


def _hang_up_after_message_start(r: Any) -> None:
    r.ollama.script(CODER_MODEL, "one two three four five six seven eight nine ten")
    r.ollama.line_delay = 0.1
    with httpx.stream(
        "POST",
        r.url + "/v1/messages",
        json=body(stream=True),
        headers={"x-api-key": CLIENT_KEY},
        timeout=10,
    ) as response:
        assert next(response.iter_lines()) == "event: message_start"


def test_a_client_that_hangs_up_mid_stream_still_gets_one_row(router_home: Path) -> None:
    with rig(router_home) as r:
        _hang_up_after_message_start(r)
        [row] = r.rows(1)
        assert row["provider"] == "ollama" and row["session_id"] is None


def test_a_client_hang_up_stops_the_upstream_and_is_logged_cancelled(router_home: Path) -> None:
    with rig(router_home) as r:
        _hang_up_after_message_start(r)
        [row] = r.rows(1)
        assert row["outcome"] == "cancelled" and row["error_class"] == "client-closed"
        assert row["output_tokens"] < 10  # the upstream was not read to its end


@pytest.mark.parametrize("store_prompts", [False, True])
def test_no_keys_and_no_prompt_text_in_the_database(router_home: Path, store_prompts: bool) -> None:
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-api03-SECRETproxykey",
        "HYBRID_ROUTER_TOKEN": "hr-SECRET-token",
    }
    client_key = "sk-ant-SECRETclientkey"
    marker = "zebracorn-quux-marker"
    prompt = f"write a function named {marker} that adds numbers"
    data = config()
    data["storePrompts"] = store_prompts
    with (
        FakeOpenRouter() as openrouter,
        rig(router_home, config_data=data, env=secrets, openrouter=openrouter) as r,
    ):
        auth = {
            "x-api-key": secrets["HYBRID_ROUTER_TOKEN"],
            "authorization": f"Bearer {client_key}",
        }
        assert r.post(body(prompt), headers=auth).status_code == 200  # Ollama
        assert (
            r.post(body(prompt + " " + SECURITY_PROMPT, stream=True), headers=auth).status_code
            == 200
        )
        r.ollama.fail(500, "down", path="/api/chat", times=1)
        assert r.post(body(prompt), headers=auth).status_code == 200  # OpenRouter
        rows = r.rows(3)
        assert [row["provider"] for row in rows] == ["ollama", "anthropic", "openrouter"]
        everything = database_bytes(router_home)
        for secret in (*secrets.values(), client_key, openrouter.api_key):
            assert secret.encode() not in everything
            assert secret.encode() not in home_bytes(router_home)
        assert (marker.encode() in everything) is store_prompts
        assert all(row["prompt_hash"] and row["prompt_chars"] >= len(prompt) for row in rows)
        if store_prompts:
            assert all(marker in row["prompt_text"] for row in rows)
        else:
            assert all(row["prompt_text"] is None for row in rows)


def test_concurrent_requests_each_get_one_row(router_home: Path) -> None:
    with rig(router_home) as r:
        r.ollama.line_delay = 0.05
        results: list[Any] = []

        def one(i: int) -> None:
            results.append(r.post(body(f"{CODE_PROMPT} {i}", stream=i % 2 == 0)).status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert results == [200] * 8
        rows = r.rows(8)
        assert sorted(json.loads(json.dumps(row["outcome"])) for row in rows) == ["ok"] * 8
