"""The fake Ollama server is faithful enough for the official clients (`ollama`, `anthropic`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import ollama
import pytest
from fakes.fake_ollama import FakeModel, FakeOllama, Reply, ToolCall

CODER = "qwen2.5-coder:7b"
SMALL = "llama3.2:3b"  # in the registry only: pullable, not installed
READ_TOOL = {
    "type": "function",
    "function": {
        "name": "Read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    models = [FakeModel(CODER, context_length=32768, capabilities=["completion", "tools"])]
    registry = [FakeModel(SMALL, family="llama", parameter_size="3.2B", size=40_000)]
    with FakeOllama(models=models, registry=registry, reply="Hello from the fake.") as fake:
        yield fake


@pytest.fixture
def client(server: FakeOllama) -> Iterator[ollama.Client]:
    with ollama.Client(host=server.url, verify=False) as c:  # plain HTTP: skip loading CAs
        yield c


@pytest.fixture
def http(server: FakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5, verify=False) as c:
        yield c


@pytest.fixture
def claude(server: FakeOllama) -> Iterator[anthropic.Anthropic]:
    http_client = anthropic.DefaultHttpxClient(verify=False)
    with anthropic.Anthropic(
        base_url=server.url, api_key="ollama", max_retries=0, http_client=http_client
    ) as c:
        yield c


def user(text: str = "hi") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def sse_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE event, in order."""
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, line.removeprefix("data: ")))
            name = None
    return events


# -- basics ----------------------------------------------------------------------------------


def test_root_and_version_answer_get_and_head(http: httpx.Client) -> None:
    assert http.get("/").text == "Ollama is running"
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""
    assert http.get("/api/version").json() == {"version": "0.14.2"}
    assert http.head("/api/version").status_code == 200
    assert http.get("/api/nothing").status_code == 404


def test_version_is_configurable() -> None:
    with (
        FakeOllama(version="0.33.0") as fake,
        httpx.Client(base_url=fake.url, verify=False) as http,
    ):
        assert http.get("/api/version").json() == {"version": "0.33.0"}


def test_list_and_show_through_the_official_client(client: ollama.Client) -> None:
    (model,) = client.list().models
    assert model.model == CODER and model.size == 4_683_087_332
    assert model.details is not None and model.details.family == "qwen2"
    assert model.details.quantization_level == "Q4_K_M" and model.details.format == "gguf"
    assert len(model.digest or "") == 64

    shown = client.show(CODER)
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo is not None and shown.modelinfo["qwen2.context_length"] == 32768
    assert "FROM qwen2.5-coder:7b" in (shown.modelfile or "")
    assert shown.template and shown.parameters


def test_unknown_model_is_a_404_response_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as show_err:
        client.show("nope")
    assert show_err.value.status_code == 404
    assert show_err.value.error == "model 'nope' not found"
    with pytest.raises(ollama.ResponseError) as chat_err:
        client.chat("nope:1b", messages=user())
    assert chat_err.value.status_code == 404


def test_model_names_default_to_the_latest_tag(server: FakeOllama, client: ollama.Client) -> None:
    server.add_model(FakeModel("mistral"))
    assert {m.model for m in client.list().models} == {CODER, "mistral:latest"}
    assert client.show("mistral").details is not None


# -- pull ------------------------------------------------------------------------------------


def test_pull_streams_documented_progress(server: FakeOllama, client: ollama.Client) -> None:
    lines = list(client.pull(SMALL, stream=True))
    statuses = [p.status for p in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]

    layers = [p for p in lines if p.digest]
    by_digest: dict[str, list[ollama.ProgressResponse]] = {}
    for p in layers:
        by_digest.setdefault(p.digest or "", []).append(p)
    assert len(by_digest) == 3
    for digest, progress in by_digest.items():
        assert progress[0].status == f"pulling {digest[7:19]}"
        assert progress[0].completed is None  # omitted until bytes arrive
        assert progress[-1].completed == progress[-1].total
        completed = [p.completed for p in progress[1:]]
        assert completed == sorted(completed)
    assert SMALL in {m.model for m in client.list().models}


def test_pull_without_streaming_and_of_an_installed_model(client: ollama.Client) -> None:
    assert client.pull(SMALL).status == "success"
    # Everything is on disk now: each layer is one cache-hit line with total == completed.
    layers = [p for p in client.pull(SMALL, stream=True) if p.digest]
    assert len(layers) == 3 and all(p.completed == p.total for p in layers)


def test_pull_of_an_unknown_model(client: ollama.Client, http: httpx.Client) -> None:
    # Streaming: status 200, "pulling manifest", then an NDJSON error line.
    with http.stream("POST", "/api/pull", json={"model": "nope"}) as r:
        assert r.status_code == 200
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        list(client.pull("nope", stream=True))
    # Not streaming: a 500 with the error body.
    with pytest.raises(ollama.ResponseError) as err:
        client.pull("nope")
    assert err.value.status_code == 500
    assert err.value.error == "pull model manifest: file does not exist"


def test_an_interrupted_pull_resumes_from_the_saved_bytes(
    server: FakeOllama, client: ollama.Client, http: httpx.Client
) -> None:
    server.break_stream("/api/pull", after=4)  # manifest, first line, 2 progress lines
    seen = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/api/pull", json={"model": SMALL}) as r,
    ):
        seen.extend(json.loads(line) for line in r.iter_lines() if line)
    assert len(seen) == 4
    saved = seen[-1]["completed"]
    assert 0 < saved < seen[-1]["total"]
    assert SMALL not in {m.model for m in client.list().models}

    resumed = [p for p in client.pull(SMALL, stream=True) if p.digest == seen[-1]["digest"]]
    assert resumed[0].completed == saved  # the layer starts where the broken pull stopped
    assert resumed[-1].completed == resumed[-1].total
    assert SMALL in {m.model for m in client.list().models}


def test_a_pull_the_client_abandons_keeps_its_bytes(
    server: FakeOllama, client: ollama.Client, http: httpx.Client
) -> None:
    server.line_delay = 0.01  # slow enough that the client leaves mid-download
    server.pull_steps = 50
    with http.stream("POST", "/api/pull", json={"model": SMALL}) as r:
        lines = r.iter_lines()
        seen = [json.loads(next(lines)) for _ in range(5)]
    server.wait_idle()
    server.line_delay = 0
    assert seen[-1]["completed"] > 0
    first = next(p for p in client.pull(SMALL, stream=True) if p.digest)
    assert first.digest == seen[-1]["digest"]
    assert seen[-1]["completed"] <= (first.completed or 0) < (first.total or 0)


# -- native chat -----------------------------------------------------------------------------


def test_chat_without_streaming(client: ollama.Client) -> None:
    r = client.chat(CODER, messages=user(), stream=False)
    assert r.message.role == "assistant" and r.message.content == "Hello from the fake."
    assert r.done and r.done_reason == "stop"
    assert r.eval_count == 4 and (r.prompt_eval_count or 0) > 0
    assert all(
        isinstance(d, int) and d > 0
        for d in (r.total_duration, r.load_duration, r.prompt_eval_duration, r.eval_duration)
    )


def test_chat_streaming(client: ollama.Client) -> None:
    chunks = list(client.chat(CODER, messages=user(), stream=True))
    assert "".join(c.message.content or "" for c in chunks) == "Hello from the fake."
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].done_reason == "stop" and chunks[-1].eval_count == 4
    assert chunks[0].created_at and chunks[0].model == CODER


def test_num_predict_cuts_the_answer_with_done_reason_length(client: ollama.Client) -> None:
    r = client.chat(CODER, messages=user(), options={"num_predict": 2})
    assert r.message.content == "Hello from"
    assert r.done_reason == "length" and r.eval_count == 2


def test_scripted_tool_calls_carry_object_arguments(
    server: FakeOllama, client: ollama.Client
) -> None:
    server.script(CODER, Reply(tool_calls=[ToolCall("Read", {"path": "a.py"})]))
    r = client.chat(CODER, messages=user("read a.py"), tools=[READ_TOOL])
    (call,) = r.message.tool_calls or []
    assert call.function.name == "Read" and call.function.arguments == {"path": "a.py"}
    raw = server.requests_to("/api/chat")[-1].body
    assert raw["tools"][0]["function"]["name"] == "Read"

    streamed = [
        c
        for c in client.chat(CODER, messages=user(), tools=[READ_TOOL], stream=True)
        if c.message.tool_calls
    ]
    assert len(streamed) == 1  # native tool calls arrive whole, in one chunk


def test_a_callable_script_sees_the_request_body(server: FakeOllama, client: ollama.Client) -> None:
    server.script(CODER, lambda body: f"you said {body['messages'][-1]['content']}")
    assert client.chat(CODER, messages=user("ping")).message.content == "you said ping"


def test_every_request_is_recorded(server: FakeOllama, client: ollama.Client) -> None:
    client.chat(CODER, messages=user(), options={"num_ctx": 8192})
    (rec,) = server.requests_to("/api/chat", "POST")
    assert rec.body["options"] == {"num_ctx": 8192}
    assert (rec.header("user-agent") or "").startswith("ollama-python/")


def test_ps_shows_the_loaded_model_and_its_context(client: ollama.Client) -> None:
    assert client.ps().models == []
    client.chat(CODER, messages=user(), options={"num_ctx": 16384})
    (loaded,) = client.ps().models
    assert loaded.model == CODER and loaded.context_length == 16384
    assert loaded.expires_at is not None


def test_prompt_tokens_are_capped_by_the_context_window(client: ollama.Client) -> None:
    long = user("word " * 20_000)
    assert client.chat(CODER, messages=long).prompt_eval_count == 4096  # default num_ctx
    r = client.chat(CODER, messages=long, options={"num_ctx": 65536})
    assert (r.prompt_eval_count or 0) > 4096


# -- OpenAI-compatible /v1 -------------------------------------------------------------------


def openai_stream(http: httpx.Client, **body: Any) -> list[Any]:
    payload = {"model": CODER, "messages": user(), "stream": True, **body}
    with http.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == (None, "[DONE]")
    return [json.loads(data) for _, data in events[:-1]]


def test_openai_streaming_with_usage(http: httpx.Client) -> None:
    chunks = openai_stream(http, stream_options={"include_usage": True})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello from the fake."
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert chunks[-1]["usage"]["total_tokens"] == sum(
        chunks[-1]["usage"][k] for k in ("prompt_tokens", "completion_tokens")
    )


def test_openai_tool_calls_and_length(server: FakeOllama, http: httpx.Client) -> None:
    server.enqueue(Reply(tool_calls=[ToolCall("Read", {"path": "a.py"})]))
    chunks = openai_stream(http, tools=[READ_TOOL])
    (call,) = next(c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"])[
        "choices"
    ][0]["delta"]["tool_calls"]
    assert call["index"] == 0 and call["id"].startswith("call_") and call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"path": "a.py"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in chunks[-1]  # no include_usage, no usage chunk

    body = http.post(
        "/v1/chat/completions", json={"model": CODER, "messages": user(), "max_tokens": 1}
    ).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Hello"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 1


def test_openai_models_and_errors(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == CODER
    assert http.get(f"/v1/models/{CODER}").json()["owned_by"] == "library"
    r = http.post("/v1/chat/completions", json={"model": "nope", "messages": user()})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "model 'nope' not found"


# -- Anthropic-compatible /v1/messages -------------------------------------------------------


def test_anthropic_create(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model=CODER, max_tokens=100, messages=user())
    assert msg.role == "assistant" and msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from the fake."
    assert msg.usage.output_tokens == 4 and msg.usage.input_tokens > 0
    short = claude.messages.create(model=CODER, max_tokens=2, messages=user())
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2


def test_anthropic_stream_and_final_message(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=CODER, max_tokens=100, messages=user(), system="Be brief."
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake."
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4


def test_anthropic_event_sequence_is_exact(server: FakeOllama, http: httpx.Client) -> None:
    server.enqueue(Reply(text="Checking.", tool_calls=[ToolCall("Read", {"path": "a.py"})]))
    body = {"model": CODER, "max_tokens": 100, "messages": user(), "stream": True}
    with http.stream("POST", "/v1/messages?beta=true", json=body) as r:
        events = sse_events(r)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(d) for _, d in events]
    assert all(d["type"] == name for name, d in zip(names, data, strict=True))
    assert data[5]["content_block"] == {
        "type": "tool_use",
        "id": data[5]["content_block"]["id"],
        "name": "Read",
        "input": {},
    }
    assert data[-2]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_tool_use(server: FakeOllama, claude: anthropic.Anthropic) -> None:
    tools: Any = [{"name": "Read", "input_schema": {"type": "object"}}]
    server.script(CODER, Reply(tool_calls=[ToolCall("Read", {"path": "a.py"})]))
    msg = claude.messages.create(model=CODER, max_tokens=100, messages=user(), tools=tools)
    (block,) = msg.content
    assert block.type == "tool_use" and block.input == {"path": "a.py"}
    assert msg.stop_reason == "tool_use"
    with claude.messages.stream(
        model=CODER, max_tokens=100, messages=user(), tools=tools
    ) as stream:
        final = stream.get_final_message()
    (block,) = final.content
    assert block.type == "tool_use" and block.name == "Read" and block.input == {"path": "a.py"}


def test_anthropic_errors_have_anthropic_shape(
    server: FakeOllama, claude: anthropic.Anthropic
) -> None:
    with pytest.raises(anthropic.NotFoundError, match="model 'nope' not found"):
        claude.messages.create(model="nope", max_tokens=10, messages=user())
    server.fail(429, "too many requests", path="/v1/messages", times=1)
    with pytest.raises(anthropic.RateLimitError) as err:
        claude.messages.create(model=CODER, max_tokens=10, messages=user())
    assert err.value.body == {
        "type": "error",
        "request_id": err.value.body["request_id"],
        "error": {"type": "rate_limit_error", "message": "too many requests"},
    }
    assert claude.messages.create(model=CODER, max_tokens=10, messages=user()).content


# -- faults ----------------------------------------------------------------------------------


def test_http_error_fault(server: FakeOllama, client: ollama.Client) -> None:
    server.fail(500, "llama runner process has terminated", path="/api/chat", times=1)
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(CODER, messages=user())
    assert err.value.status_code == 500
    assert err.value.error == "llama runner process has terminated"
    assert client.chat(CODER, messages=user()).done  # `times=1`: only the first request
    assert client.show(CODER).capabilities  # other paths were never affected


def test_global_fault_and_clear(server: FakeOllama, client: ollama.Client) -> None:
    server.fail(503, "server busy")
    with pytest.raises(ollama.ResponseError) as err:
        client.list()
    assert err.value.status_code == 503
    server.clear_faults()
    assert client.list().models


def test_delay_before_the_first_byte(server: FakeOllama, http: httpx.Client) -> None:
    server.delay(0.3, path="/api/tags", times=1)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/api/tags", timeout=0.05)
    server.wait_idle()
    assert http.get("/api/tags").status_code == 200


def test_a_broken_chat_stream(server: FakeOllama, http: httpx.Client) -> None:
    server.break_stream("/api/chat", after=2)
    seen = []
    body = {"model": CODER, "messages": user()}
    with pytest.raises(httpx.RemoteProtocolError), http.stream("POST", "/api/chat", json=body) as r:
        seen.extend(line for line in r.iter_lines() if line)
    assert len(seen) == 2 and not json.loads(seen[-1])["done"]


def test_an_in_stream_error(
    server: FakeOllama, client: ollama.Client, claude: anthropic.Anthropic
) -> None:
    server.stream_error("/api/chat", after=1, error="an error was encountered while running")
    chunks: list[ollama.ChatResponse] = []
    with pytest.raises(ollama.ResponseError, match="an error was encountered"):
        chunks.extend(client.chat(CODER, messages=user(), stream=True))
    assert len(chunks) == 1

    server.stream_error("/v1/messages", after=2, error="Overloaded")
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        claude.messages.stream(model=CODER, max_tokens=10, messages=user()) as stream,
    ):
        stream.get_final_message()


def test_down_refuses_connections_until_up(server: FakeOllama, client: ollama.Client) -> None:
    url = server.url
    server.down()
    assert not server.is_up
    with httpx.Client(base_url=url, verify=False) as fresh, pytest.raises(httpx.ConnectError):
        fresh.get("/")
    with ollama.Client(host=url, verify=False) as fresh_client, pytest.raises(ConnectionError):
        fresh_client.list()
    server.up()
    assert server.url == url
    assert client.list().models  # same models, same port
