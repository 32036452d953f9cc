"""The streaming dialects (one reader per wire format, shared by the proxy and the MCP delegate)
and the one family of backend failures: each client stack maps its own exceptions into it at
one boundary, keeping the cause, and no message carries a header value."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx2 as httpx
import pytest
from fakes.fake_ollama import FakeModel, FakeOllama, Reply, ToolCall

from hybrid_router.config.schema import Provider
from hybrid_router.providers.chat import ChatMessage, ChatRequest, chat
from hybrid_router.providers.errors import (
    BackendError,
    BadAnswer,
    BrokeOff,
    ConnectionLost,
    ErrorAnswer,
    ErrorStatus,
    InvalidHeader,
    TimedOut,
    Unreachable,
)
from hybrid_router.providers.httpx_errors import boundary, mapped
from hybrid_router.providers.translate import OllamaChatStream, OpenAIChatStream, StreamDialect
from hybrid_router.proxy.http1 import BadHeader, ConnectFailed, ConnectionBroken, UpstreamTimeout
from hybrid_router.proxy.upstream import _mapped

Events = list[tuple[str, dict[str, Any]]]


def sse(*chunks: dict[str, Any] | str) -> bytes:
    lines = [b": OPENROUTER PROCESSING\n\n"]
    for item in chunks:
        data = item if isinstance(item, str) else json.dumps(item)
        lines.append(f"data: {data}\r\n\r\n".encode())
    return b"".join(lines)


def ndjson(*items: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


OPENAI_BODY = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Héllo"}),
    chunk({"content": " wörld"}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "Read"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a.py"}'}}]}),
    chunk({}, "tool_calls"),
    {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 7}},
    "[DONE]",
)
OLLAMA_BODY = ndjson(
    {"model": "m", "message": {"role": "assistant", "content": "", "thinking": "Hmm."}},
    {"model": "m", "message": {"role": "assistant", "content": "Héllo"}},
    {"model": "m", "message": {"role": "assistant", "content": " wörld"}},
    {
        "model": "m",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "Read", "arguments": {"path": "a.py"}}}],
        },
    },
    {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 30,
        "eval_count": 7,
    },
)


def read(dialect: StreamDialect, body: bytes, pieces: list[int]) -> Events:
    events: Events = []
    start = 0
    for end in [*pieces, len(body)]:
        events += dialect.feed(body[start:end])
        start = end
    return events + dialect.finish()


def picture(events: Events) -> list[Any]:
    """The events without their random ids."""
    out = []
    for name, payload in events:
        data = json.loads(json.dumps(payload))
        data.get("message", {}).pop("id", None)
        data.get("content_block", {}).pop("id", None)
        out.append((name, data))
    return out


@pytest.mark.parametrize(
    ("make", "body"),
    [
        (lambda: OpenAIChatStream("claude-x"), OPENAI_BODY),
        (lambda: OllamaChatStream("claude-x"), OLLAMA_BODY),
    ],
    ids=["openai-sse", "ollama-ndjson"],
)
def test_a_dialect_reads_the_same_events_however_the_bytes_are_split(
    make: Any, body: bytes
) -> None:
    whole = read(make(), body, [])
    assert [name for name, _ in whole] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    text = "".join(
        p["delta"]["text"] for n, p in whole if p.get("delta", {}).get("type") == "text_delta"
    )
    assert text == "Héllo wörld"  # a character split across reads arrives whole
    tool = [p["content_block"] for n, p in whole if n == "content_block_start"][1]
    assert tool["type"] == "tool_use" and tool["name"] == "Read"
    assert json.loads(
        [p for n, p in whole if n == "content_block_delta"][-1]["delta"]["partial_json"]
    ) == {"path": "a.py"}
    assert whole[-2][1]["delta"]["stop_reason"] == "tool_use"
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(body)), 12))
        assert picture(read(make(), body, cuts)) == picture(whole)
    one_byte_at_a_time = read(make(), body, list(range(1, len(body))))
    assert picture(one_byte_at_a_time) == picture(whole)


@pytest.mark.parametrize(
    ("dialect", "body"),
    [(OpenAIChatStream, OPENAI_BODY), (OllamaChatStream, OLLAMA_BODY)],
)
def test_the_dialect_keeps_usage_and_stop_reason(dialect: type[StreamDialect], body: bytes) -> None:
    reader = dialect("claude-x", input_tokens=25)
    first_line = body.index(b"\n", body.index(b"{")) + 1
    reader.feed(body[:first_line])
    assert (
        reader.usage.input_tokens == 25 and reader.stop_reason is None
    )  # message_start's estimate
    reader.feed(body[first_line:])
    reader.finish()
    assert (reader.usage.input_tokens, reader.usage.output_tokens) == (30, 7)
    assert reader.stop_reason == "tool_use" and reader.done and reader.complete


def test_openai_stream_ends_at_done_and_ignores_what_follows() -> None:
    reader = OpenAIChatStream("m")
    events = reader.feed(sse(chunk({"content": "a"}, "stop"), "[DONE]", chunk({"content": "late"})))
    assert reader.done
    assert all(p.get("delta", {}).get("text") != "late" for _, p in events)


def test_openai_stream_with_a_finish_reason_but_no_done_is_complete() -> None:
    reader = OpenAIChatStream("m")
    reader.feed(sse(chunk({"content": "a"}, "length")))
    assert reader.complete and not reader.done
    assert reader.finish()[-2][1]["delta"]["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("dialect", "body"),
    [
        (OpenAIChatStream, sse(chunk({"content": "a"}))),
        (OllamaChatStream, ndjson({"message": {"role": "assistant", "content": "a"}})),
    ],
)
def test_a_stream_that_never_says_it_is_complete_broke_off(
    dialect: type[StreamDialect], body: bytes
) -> None:
    reader = dialect("m")
    reader.feed(body)
    with pytest.raises(BrokeOff):
        reader.finish()


def test_openai_stream_skips_a_data_line_that_is_not_json_and_says_so() -> None:
    reader = OpenAIChatStream("m")
    events = reader.feed(sse("{oops", chunk({"content": "a"}, "stop")))
    assert any(p.get("delta", {}).get("text") == "a" for _, p in events)
    assert reader.problems and "not JSON" in reader.problems[0]


@pytest.mark.parametrize(
    ("dialect", "body"),
    [
        (OpenAIChatStream, sse({"error": {"code": 429, "message": "Rate limit exceeded"}})),
        (OllamaChatStream, ndjson({"error": "model runner has unexpectedly stopped"})),
    ],
)
def test_an_error_in_the_stream_becomes_an_error_event(
    dialect: type[StreamDialect], body: bytes
) -> None:
    events = dialect("m").feed(body)
    name, payload = events[-1]
    assert name == "error" and payload["type"] == "error" and payload["error"]["message"]


def test_ollama_stream_refuses_a_line_that_is_not_json() -> None:
    with pytest.raises(BadAnswer, match="not JSON"):
        OllamaChatStream("m").feed(b"<html>oops</html>\n")


def test_ollama_stream_length_and_several_tool_calls() -> None:
    reader = OllamaChatStream("m")
    calls = [
        {"function": {"name": "Read", "arguments": {"path": "a"}}},
        {"function": {"name": "Read", "arguments": {"path": "b"}}},
    ]
    events = reader.feed(
        ndjson(
            {"message": {"role": "assistant", "content": "", "tool_calls": calls[:1]}},
            {"message": {"role": "assistant", "content": "", "tool_calls": calls[1:]}},
            {
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "length",
            },
        )
    )
    events += reader.finish()
    inputs = [
        json.loads(p["delta"]["partial_json"])
        for n, p in events
        if n == "content_block_delta" and p["delta"]["type"] == "input_json_delta"
    ]
    assert inputs == [{"path": "a"}, {"path": "b"}]
    ids = [p["content_block"]["id"] for n, p in events if n == "content_block_start"]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)
    assert reader.stop_reason == "max_tokens"  # cut short: the calls may be incomplete


# --- the family of failures ---------------------------------------------------------------


def test_the_family() -> None:
    assert issubclass(Unreachable, BackendError) and issubclass(ErrorAnswer, BackendError)
    failure = ErrorStatus("HTTP 429: slow down", 429, retry_after=2.0)
    assert (failure.kind, failure.error_class, failure.retry_after) == (
        "rate-limited",
        "http-429",
        2.0,
    )
    assert ErrorStatus("gone", 404).kind == BackendError.MODEL_MISSING
    assert ErrorStatus("boom", 500).kind == BackendError.HTTP
    assert (
        Unreachable("x").kind == BackendError.UNREACHABLE
        and Unreachable("x").error_class == "connect"
    )


def test_httpx_errors_are_mapped_scrubbed_and_keep_their_cause() -> None:
    key = "sk-or-v1-0123456789abcdef0123456789abcdef"
    leaky = httpx.LocalProtocolError(f"Illegal header value b'Bearer {key}\\n'")
    with pytest.raises(ConnectionLost) as caught:
        with boundary("http://127.0.0.1:1", secrets=[f"Bearer {key}"]):
            raise leaky
    assert key not in str(caught.value) and "***" in str(caught.value)
    assert caught.value.__cause__ is leaky  # the cause reaches the log
    timeout = httpx.Timeout(3.0, connect=1.5)
    connect = mapped(httpx.ConnectTimeout("x"), "http://h", timeout=timeout)
    assert isinstance(connect, TimedOut) and connect.phase == "connect" and "1.5 s" in str(connect)
    read = mapped(httpx.ReadTimeout("x"), "http://h", timeout=timeout)
    assert isinstance(read, TimedOut) and read.phase == "read" and "3 s" in str(read)
    refused = mapped(httpx.ConnectError("[Errno 111] refused"), "http://h", detail=False)
    assert isinstance(refused, Unreachable) and str(refused) == "cannot connect to http://h"
    broken = mapped(httpx.ReadError("reset"), "http://h", began=True)
    assert isinstance(broken, BrokeOff)


def test_the_proxys_client_errors_are_mapped_at_its_boundary() -> None:
    assert isinstance(_mapped(ConnectFailed("cannot connect to h:1")), Unreachable)
    timed_out = _mapped(UpstreamTimeout("read", 300.0))
    assert isinstance(timed_out, TimedOut) and str(timed_out) == "no answer within 300 s"
    assert isinstance(_mapped(ConnectionBroken("closed")), ConnectionLost)
    assert isinstance(
        _mapped(BadHeader("the x-api-key header contains a line break")), InvalidHeader
    )
    assert isinstance(_mapped(UpstreamTimeout("read", 300.0), began=True), BrokeOff)


# --- the MCP delegate's chat reads through the same dialects ---------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _chat(
    provider: Provider, base_url: str, model: str, api_key: str | None = None, **kwargs: Any
) -> Any:
    request = ChatRequest(model, (ChatMessage("user", "hi"),), max_tokens=50, **kwargs)
    async with httpx.AsyncClient() as client:
        return await chat(client, provider, base_url, api_key, request)


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_chat_collects_text_usage_and_truncation(kind: str) -> None:
    with FakeOllama(models=[FakeModel("m")]) as server:
        server.script("m", Reply(text="Sure, here it is.", thinking="Let me see."))
        provider = Provider(kind=kind, base_url=server.url)
        base = server.url if kind == "ollama" else f"{server.url}/v1"
        result = asyncio.run(_chat(provider, base, "m"))
        assert result.text == "Sure, here it is." and not result.truncated
        assert result.input_tokens > 0 and result.output_tokens > 0 and result.ttft_ms is not None
        server.script("m", Reply(text=" ".join(["word"] * 80)))
        assert asyncio.run(_chat(provider, base, "m")).truncated  # 50 tokens allowed
        server.script("m", Reply(tool_calls=[ToolCall("Read", {"path": "a"})], text="ok"))
        assert asyncio.run(_chat(provider, base, "m")).text == "ok"


def test_chat_failures_are_the_family_with_their_cause() -> None:
    with FakeOllama(models=[FakeModel("m")]) as server:
        provider = Provider(kind="ollama", base_url=server.url, connect_timeout=2.0)
        server.stream_error("/api/chat", after=1, error="model runner crashed")
        with pytest.raises(ErrorAnswer, match="model runner crashed"):
            asyncio.run(_chat(provider, server.url, "m"))
        server.fail(404, "model 'm' not found", path="/api/chat", times=1)
        with pytest.raises(ErrorStatus) as missing:
            asyncio.run(_chat(provider, server.url, "m"))
        assert missing.value.kind == BackendError.MODEL_MISSING and missing.value.status == 404
        server.down()
        with pytest.raises(Unreachable) as down:
            asyncio.run(_chat(provider, server.url, "m"))
        assert isinstance(down.value.__cause__, httpx.ConnectError)


def test_a_key_the_backend_quotes_back_is_not_in_the_message() -> None:
    key = "lm-studio-0123456789abcdef"
    with FakeOllama(models=[FakeModel("m")]) as server:
        server.fail(401, f"Incorrect API key provided: {key}", path="/v1/chat/completions")
        provider = Provider(kind="openai", base_url=f"{server.url}/v1")
        with pytest.raises(ErrorStatus) as refused:
            asyncio.run(_chat(provider, f"{server.url}/v1", "m", api_key=key))
    assert refused.value.status == 401 and key not in str(refused.value)
    assert "Incorrect API key provided" in str(refused.value)


def test_a_key_with_a_line_break_is_scrubbed_in_every_form_an_error_quotes_it():
    from hybrid_router.providers.httpx_errors import scrub

    key = "sk-live-0123456789\nabcdefghijklmnop"
    quoted = f"Invalid header value {key!r}; raw {key}"
    cleaned = scrub(quoted, [key])
    assert "0123456789" not in cleaned and "abcdefghijklmnop" not in cleaned
