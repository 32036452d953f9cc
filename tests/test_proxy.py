"""The proxy's HTTP surface, per-request routing and turn pins, over real HTTP on 127.0.0.1.

Clients: the official `anthropic` SDK where it fits, raw httpx where the wire matters (SSE
`event:` lines, exact status codes, malformed bodies). Backends: FakeOllama and FakeAnthropic
(see test_proxy_support.py). Upstream behaviour: test_proxy_upstreams.py; fallback, liveness and
the decision log: test_proxy_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from fakes.fake_ollama import Reply, ToolCall
from proxy_server import running_proxy
from test_proxy_support import (
    CLAUDE,
    CLIENT_KEY,
    CODE_PROMPT,
    CODER_MODEL,
    FAST_MODEL,
    HAIKU,
    SECURITY_PROMPT,
    Rig,
    assert_anthropic_error,
    assert_anthropic_sse,
    body,
    config,
    rig,
    session_id,
    tool,
)

from hybrid_router.config.loading import parse_config
from hybrid_router.log.database import connect
from hybrid_router.log.pins import Pin, write_pin
from hybrid_router.proxy.app import create_app

TOKEN = "hr-token-4d1f0b7e9c2a"

# -- endpoints -------------------------------------------------------------------------------


def test_health_models_and_unknown_paths(router_home: Path) -> None:
    with rig(router_home) as r:
        head = httpx.head(r.url + "/")
        assert head.status_code == 200
        health = httpx.get(r.url + "/")
        assert health.status_code == 200 and health.json()["status"] == "ok"

        models = httpx.get(r.url + "/v1/models").json()
        ids = [m["id"] for m in models["data"]]
        assert {CODER_MODEL, FAST_MODEL, "claude-sonnet-5"} <= set(ids)
        assert all(m["type"] == "model" for m in models["data"])
        assert models["first_id"] == ids[0] and models["has_more"] is False

        for method, path in [
            ("GET", "/v1/complete"),
            ("POST", "/v1/complete"),
            ("GET", "/api/hello"),
            ("DELETE", "/v1/messages/batches"),
            ("GET", "/v1/messages"),
        ]:
            response = httpx.request(method, r.url + path)
            assert_anthropic_error(response, 404, "not_found_error")
            assert response.headers["request-id"].startswith("req_")
        assert r.ollama.requests_to("/api/chat") == [] and r.anthropic.requests == []


def test_messages_non_streaming_with_the_sdk(router_home: Path) -> None:
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        message = client.messages.create(
            model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": CODE_PROMPT}]
        )
        assert message.type == "message" and message.role == "assistant"
        assert message.content[0].type == "text" and message.content[0].text
        assert message.stop_reason == "end_turn"
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
        assert r.ollama_models() == [CODER_MODEL]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages?beta=true"])
def test_streaming_emits_the_exact_anthropic_sse_sequence(router_home: Path, path: str) -> None:
    with rig(router_home) as r:
        r.ollama.script(
            CODER_MODEL, Reply(text="Here it is.", tool_calls=[ToolCall("Bash", {"command": "ls"})])
        )
        response = r.post(body(stream=True, tools=[tool()]), path=path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_")
        names = assert_anthropic_sse(response.text)
        assert names.count("content_block_start") == 2  # text, then tool_use
        assert r.ollama_models() == [CODER_MODEL]


def test_streaming_with_the_sdk_and_beta_messages(router_home: Path) -> None:
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        with client.messages.stream(
            model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": CODE_PROMPT}]
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "Hello from the fake Ollama."
        assert final.usage.output_tokens == 5
        beta = client.beta.messages.create(
            model=CLAUDE,
            max_tokens=200,
            betas=["context-1m-2025-08-07"],
            messages=[{"role": "user", "content": CODE_PROMPT}],
        )
        assert beta.content[0].text == "Hello from the fake Ollama."
        assert r.ollama.requests_to("/api/chat")[-1].query == {}  # ?beta=true is the proxy's


def test_count_tokens_is_an_estimate_without_an_anthropic_key(router_home: Path) -> None:
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        small = client.messages.count_tokens(
            model=CLAUDE, messages=[{"role": "user", "content": "hi"}]
        )
        large = client.messages.count_tokens(
            model=CLAUDE, messages=[{"role": "user", "content": "hi " * 3000}]
        )
        assert 0 < small.input_tokens < large.input_tokens
        assert r.anthropic.requests == []  # the client's key alone does not buy a passthrough
        bad = r.post(b"{not json", path="/v1/messages/count_tokens")
        assert_anthropic_error(bad, 400, "invalid_request_error")
        missing = r.post({"model": CLAUDE}, path="/v1/messages/count_tokens?beta=true")
        assert_anthropic_error(missing, 400)


def test_count_tokens_passes_through_to_anthropic_with_a_key(router_home: Path) -> None:
    with rig(router_home, env={"ANTHROPIC_API_KEY": "sk-ant-proxy-key"}) as r:
        payload = body(tools=[tool()])
        del payload["max_tokens"]
        response = r.post(
            payload,
            path="/v1/messages/count_tokens?beta=true",
            headers={"anthropic-beta": "token-counting-2024-11-01"},
        )
        assert response.status_code == 200
        [sent] = [q for q in r.anthropic.requests if q.path == "/v1/messages/count_tokens"]
        assert response.json()["input_tokens"] == max(
            1,
            sum(len(json.dumps(payload[k], ensure_ascii=False)) for k in ("messages", "tools"))
            // 4,
        )
        assert sent.header("x-api-key") == "sk-ant-proxy-key"
        assert sent.header("anthropic-beta") == "token-counting-2024-11-01"
        assert sent.body == payload


# -- binding and the token -------------------------------------------------------------------


def test_non_loopback_host_needs_a_token(router_home: Path) -> None:
    parsed = parse_config(config(), "test-config.json")
    environ = {"HYBRID_ROUTER_HOME": str(router_home)}
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(ValueError, match="HYBRID_ROUTER_TOKEN"):
            create_app(environ=environ, host=host, config=parsed)
    create_app(environ={**environ, "HYBRID_ROUTER_TOKEN": TOKEN}, host="0.0.0.0", config=parsed)
    create_app(environ=environ, host="127.0.0.1", config=parsed)
    (router_home / ".env").parent.mkdir(parents=True, exist_ok=True)
    (router_home / ".env").write_text(f"HYBRID_ROUTER_TOKEN={TOKEN}\n")  # the home .env counts too
    create_app(environ=environ, host="0.0.0.0", config=parsed)


def test_token_is_required_on_the_api_and_never_forwarded(router_home: Path) -> None:
    env = {"HYBRID_ROUTER_TOKEN": TOKEN, "ANTHROPIC_API_KEY": "sk-ant-proxy-key"}
    with rig(router_home, env=env) as r:
        for path, payload in [("/v1/messages", body()), ("/v1/messages/count_tokens", body())]:
            for headers in (
                {"x-api-key": ""},
                {"x-api-key": "wrong"},
                {"x-api-key": "", "authorization": "Bearer wrong"},
                {"x-api-key": "", "authorization": f"Bearer {TOKEN}x"},
            ):
                assert_anthropic_error(
                    r.post(payload, path=path, headers=headers), 401, "authentication_error"
                )
        models = httpx.get(r.url + "/v1/models")
        assert_anthropic_error(models, 401, "authentication_error")
        assert httpx.get(r.url + "/v1/models", headers={"x-api-key": TOKEN}).status_code == 200
        assert r.ollama.requests_to("/api/chat") == [] and r.anthropic.requests == []

        with (
            anthropic.Anthropic(base_url=r.url, api_key="wrong", max_retries=0) as client,
            pytest.raises(anthropic.AuthenticationError),
        ):
            client.messages.create(
                model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
            )
        with anthropic.Anthropic(base_url=r.url, api_key=TOKEN, max_retries=0) as client:
            assert client.messages.create(
                model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": CODE_PROMPT}]
            ).content
        with anthropic.Anthropic(base_url=r.url, auth_token=TOKEN, max_retries=0) as client:
            client.messages.create(
                model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": SECURITY_PROMPT}]
            )
        [sent] = r.anthropic.main_requests()
        assert sent.header("x-api-key") == "sk-ant-proxy-key"
        assert sent.header("authorization") is None
        assert TOKEN.encode() not in json.dumps(sent.headers).encode() + sent.raw


def test_token_with_client_auth_forwards_only_the_clients_anthropic_key(router_home: Path) -> None:
    """No ANTHROPIC_API_KEY: the client's own key goes to Anthropic, the proxy token does not."""
    with rig(router_home, env={"HYBRID_ROUTER_TOKEN": TOKEN}) as r:
        response = r.post(body(SECURITY_PROMPT), headers={"authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        [sent] = r.anthropic.main_requests()
        assert sent.header("x-api-key") == CLIENT_KEY
        assert sent.header("authorization") is None


def test_token_is_required_on_every_request(router_home: Path) -> None:
    with rig(router_home, env={"HYBRID_ROUTER_TOKEN": TOKEN}) as r:
        assert httpx.get(r.url + "/", headers={"x-api-key": TOKEN}).status_code == 200
        for method, path in [("GET", "/"), ("HEAD", "/"), ("GET", "/v1/nothing-here")]:
            assert httpx.request(method, r.url + path).status_code == 401, (method, path)


# -- malformed bodies ------------------------------------------------------------------------

DEEP = (
    b'{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}],"metadata":'
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}"
)

MALFORMED: dict[str, bytes | dict] = {
    "not json": b'{"model": "claude", "max_tokens": ',
    "not utf-8": b'{"model": "\xff\xfe", "max_tokens": 5, "messages": []}',
    "empty": b"",
    "json array": b"[1, 2, 3]",
    "json string": b'"hello"',
    "deep nesting": DEEP,
    "deep nesting in content": b'{"model":"m","max_tokens":9,"messages":[{"role":"user","content":['
    + b"[" * 50_000
    + b"]" * 50_000
    + b"]}]}",
    "missing model": {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
    "model not a string": body(model=123),
    "empty model": body(model=" "),
    "missing max_tokens": {"model": CLAUDE, "messages": [{"role": "user", "content": "hi"}]},
    "max_tokens a string": body(max_tokens="100"),
    "max_tokens a bool": body(max_tokens=True),
    "max_tokens zero": body(max_tokens=0),
    "missing messages": {"model": CLAUDE, "max_tokens": 10},
    "messages empty": body(messages=[]),
    "messages an object": body(messages={"role": "user"}),
    "message a string": body(messages=["hi"]),
    "bad role": body(messages=[{"role": "robot", "content": "hi"}]),
    "content a number": body(messages=[{"role": "user", "content": 42}]),
    "content missing": body(messages=[{"role": "user"}]),
    "block without type": body(messages=[{"role": "user", "content": [{"text": "hi"}]}]),
    "block a string": body(messages=[{"role": "user", "content": ["hi"]}]),
    "system a number": body(system=5),
    "stream a string": {**body(), "stream": "yes"},
    "tools an object": body(tools={"name": "x"}),
    "tool without name": body(tools=[{"description": "x"}]),
    "temperature a string": body(temperature="hot"),
    "top_p a bool": body(top_p=True),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bodies_get_a_4xx_anthropic_error(shared_rig: Rig, case: str) -> None:
    proxy_rig = shared_rig
    payload = MALFORMED[case]
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    for path in ("/v1/messages", "/v1/messages?beta=true"):
        response = proxy_rig.post(raw, path=path)
        assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:200])
        assert_anthropic_error(response, 400, "invalid_request_error")
    if case not in ("not json", "not utf-8", "empty", "deep nesting", "deep nesting in content"):
        count = proxy_rig.post(raw, path="/v1/messages/count_tokens")
        assert 400 <= count.status_code < 500 or count.status_code == 200, count.text
    assert proxy_rig.ollama.requests_to("/api/chat") == []


@pytest.fixture(scope="module")
def shared_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One proxy for the many malformed-body cases (none of them reaches a backend)."""
    with rig(tmp_path_factory.mktemp("malformed-home")) as r:
        yield r


def test_bodies_over_max_body_bytes_get_413(router_home: Path) -> None:
    with rig(router_home, config_data=config(maxBodyBytes=4096)) as r:
        big = body("write " + "x" * 8000)
        declared = r.post(big)
        assert_anthropic_error(declared, 413, "request_too_large")

        def chunks():  # no content-length: the limit applies while reading
            raw = json.dumps(big).encode()
            for start in range(0, len(raw), 1000):
                yield raw[start : start + 1000]

        streamed = httpx.post(
            r.url + "/v1/messages",
            content=chunks(),
            headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"},
        )
        assert "content-length" not in streamed.request.headers
        assert_anthropic_error(streamed, 413, "request_too_large")
        counted = r.post(big, path="/v1/messages/count_tokens")
        assert_anthropic_error(counted, 413)
        assert r.post(body()).status_code == 200  # under the limit: answered
        assert len(r.ollama.requests_to("/api/chat")) == 1


WRONGLY_TYPED_BLOCKS = {
    "tool_result item a string": [
        {"type": "text", "text": "write x"},
        {"type": "tool_result", "tool_use_id": "t", "content": ["plain"]},
    ],
    "tool_result content a number": [{"type": "tool_result", "tool_use_id": "t", "content": 5}],
    "text a number": [{"type": "text", "text": 5}],
    "image source a string": [{"type": "image", "source": "not-an-object"}],
}


def test_wrongly_typed_blocks_on_the_openai_path_are_4xx(router_home: Path) -> None:
    """Valid JSON, valid top-level shape, wrong types inside blocks: still a 4xx, never a 5xx."""
    with rig(router_home, ollama_protocol="openai") as r:  # OpenAI chat completions
        statuses = {}
        for name, content in WRONGLY_TYPED_BLOCKS.items():
            for stream in (False, True):
                response = r.post(
                    body(stream=stream, messages=[{"role": "user", "content": content}])
                )
                statuses[name, stream] = response.status_code
        assert all(400 <= status < 500 for status in statuses.values()), statuses


# -- routing per request ---------------------------------------------------------------------


def test_each_request_is_routed_and_the_upstream_gets_the_routed_model(router_home: Path) -> None:
    with rig(router_home) as r:
        assert r.post(body(CODE_PROMPT)).status_code == 200  # code-generation -> coder tier
        assert r.post(body("hello there", model=HAIKU)).status_code == 200  # background -> fast
        assert (
            r.post(body("list the files in src", model="my-custom-model")).status_code == 200
        )  # -> fast
        assert r.ollama_models() == [CODER_MODEL, FAST_MODEL, FAST_MODEL]
        assert r.post(body(SECURITY_PROMPT)).status_code == 200  # security -> Anthropic
        assert r.post(body(SECURITY_PROMPT, model="my-custom-model")).status_code == 200
        models = [q.body["model"] for q in r.anthropic.main_requests()]
        assert models == [
            CLAUDE,
            "claude-sonnet-5",
        ]  # a Claude model is kept; others get the tier's
        rules = [(row["rule"], row["provider"], row["model"]) for row in r.rows(5)]
        assert rules == [
            ("code-generation", "ollama", CODER_MODEL),
            ("background", "ollama", FAST_MODEL),
            ("file-operations", "ollama", FAST_MODEL),
            ("security", "anthropic", CLAUDE),
            ("security", "anthropic", "claude-sonnet-5"),
        ]


def _pin(
    router_home: Path, session: str, tier: str, model: str, rule: str = "file-operations"
) -> None:
    conn = connect(router_home / "decisions.db")
    try:
        write_pin(
            conn,
            Pin(
                session, f"prompt-{session[:8]}", "ollama", model, tier, rule, "pinned by the test"
            ),
        )
    finally:
        conn.close()


def test_pinned_turn_keeps_its_route_through_tool_round_trips(router_home: Path) -> None:
    """The hook pinned the turn to the fast tier; the prompt alone would go to the coder tier."""
    session = session_id()
    with (
        rig(router_home) as r,
        anthropic.Anthropic(
            base_url=r.url,
            api_key=CLIENT_KEY,
            max_retries=0,
            default_headers={"X-Claude-Code-Session-Id": session},
        ) as client,
    ):
        _pin(router_home, session, "fast", FAST_MODEL)
        r.ollama.script(
            FAST_MODEL,
            lambda b: (
                Reply(text="done")
                if len(b["messages"]) > 1
                else Reply(tool_calls=[ToolCall("Bash", {"command": "ls -la"})])
            ),
        )
        messages = [{"role": "user", "content": CODE_PROMPT}]
        with client.messages.stream(
            model=CLAUDE, max_tokens=300, messages=messages, tools=[tool()]
        ) as stream:
            first = stream.get_final_message()
        assert first.stop_reason == "tool_use"
        [call] = [b for b in first.content if b.type == "tool_use"]
        assert call.name == "Bash" and call.input == {"command": "ls -la"}
        messages += [
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "a.py\nb.py"}
                ],
            },
        ]
        with client.messages.stream(
            model=CLAUDE, max_tokens=300, messages=messages, tools=[tool()]
        ) as stream:
            second = stream.get_final_message()
        assert second.content[0].text == "done" and second.stop_reason == "end_turn"

        requests = r.ollama.requests_to("/api/chat")
        assert [q.body["model"] for q in requests] == [FAST_MODEL, FAST_MODEL]
        continuation = requests[1].body["messages"]  # Ollama's native chat
        sent_call = continuation[1]["tool_calls"][0]["function"]
        assert (sent_call["name"], sent_call["arguments"]) == ("Bash", {"command": "ls -la"})
        assert continuation[2] == {"role": "tool", "content": "a.py\nb.py", "tool_name": "Bash"}
        rows = r.rows(2)
        assert [(row["rule"], row["model"], row["session_id"]) for row in rows] == [
            ("file-operations", FAST_MODEL, session)
        ] * 2
        assert {row["prompt_id"] for row in rows} == {f"prompt-{session[:8]}"}

        # Another session with no pin: the same prompt goes where the routes say.
        other = r.post(body(CODE_PROMPT), headers={"X-Claude-Code-Session-Id": session_id()})
        assert other.status_code == 200
        assert r.ollama_models()[-1] == CODER_MODEL


def test_unpinned_tool_round_trip_keeps_the_route_of_the_prompt(router_home: Path) -> None:
    """Without a pin the continuation carries the prompt's words, so it routes the same way."""
    with (
        rig(router_home) as r,
        anthropic.Anthropic(base_url=r.url, api_key=CLIENT_KEY, max_retries=0) as client,
    ):
        r.ollama.enqueue(Reply(tool_calls=[ToolCall("Read", {"command": "cat a.py"})]), "ok")
        messages = [{"role": "user", "content": CODE_PROMPT}]
        first = client.messages.create(
            model=CLAUDE, max_tokens=300, messages=messages, tools=[tool("Read")]
        )
        [call] = first.content
        assert call.type == "tool_use" and call.input == {"command": "cat a.py"}
        messages += [
            {"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "print(1)"}],
            },
        ]
        second = client.messages.create(
            model=CLAUDE, max_tokens=300, messages=messages, tools=[tool("Read")]
        )
        assert second.content[0].text == "ok"
        assert r.ollama_models() == [CODER_MODEL, CODER_MODEL]


@pytest.mark.parametrize("hard_rule", ["background", "web-tools", "context-window"])
def test_hard_rules_override_a_pin(router_home: Path, hard_rule: str) -> None:
    session = session_id()
    headers = {"X-Claude-Code-Session-Id": session}
    with rig(router_home) as r:
        _pin(router_home, session, "coder", CODER_MODEL, rule="code-generation")
        assert r.post(body(CODE_PROMPT), headers=headers).status_code == 200  # the pin holds
        if hard_rule == "background":
            payload = body(CODE_PROMPT, model=HAIKU)
        elif hard_rule == "web-tools":
            payload = body(
                CODE_PROMPT,
                tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
            )
        else:  # ~20k tokens: over the coder tier's 16k window
            payload = body(CODE_PROMPT + " " + "lorem ipsum dolor " * 4000, max_tokens=8000)
        response = r.post(payload, headers=headers)
        assert response.status_code == 200, response.text
        rows = r.rows(2)
        assert rows[0]["rule"] == "code-generation" and rows[0]["model"] == CODER_MODEL
        assert rows[1]["rule"] == hard_rule
        if hard_rule == "background":
            assert r.ollama_models() == [CODER_MODEL, FAST_MODEL]
        else:
            assert r.ollama_models() == [CODER_MODEL]
            [sent] = r.anthropic.main_requests()
            assert sent.body["model"] == CLAUDE and rows[1]["provider"] == "anthropic"


def test_no_reachable_upstream_fails_cleanly(router_home: Path) -> None:
    """running_proxy with no fakes at all: health answers, and a request fails cleanly (no hang)."""
    environ = {
        "HYBRID_ROUTER_HOME": str(router_home),
        "OLLAMA_HOST": "http://127.0.0.1:9",
        "HYBRID_ROUTER_ANTHROPIC_URL": "http://127.0.0.1:9",
    }
    with running_proxy(environ, config()) as proxy:
        assert httpx.get(proxy.url + "/").status_code == 200
        response = httpx.post(
            proxy.url + "/v1/messages", json=body(), headers={"x-api-key": CLIENT_KEY}, timeout=20
        )
        error = assert_anthropic_error(response)
        assert (
            response.status_code in (502, 529)
            and "no upstream answered" in error["error"]["message"]
        )


def test_refused_requests_are_logged_too(router_home: Path) -> None:
    """Every request the proxy answers has its row, a refused one included (outcome rejected)."""
    with running_proxy({"HYBRID_ROUTER_HOME": str(router_home)}) as proxy:
        bad = httpx.post(
            f"{proxy.url}/v1/messages",
            content=b'{"model": "x", "secret-ish": ',
            headers={"x-claude-code-session-id": "s-9"},
        )
        assert bad.status_code == 400
        proxy.flush_log()
    conn = connect(router_home / "decisions.db")
    rows = conn.execute(
        "SELECT outcome, error_class, session_id, provider, reason FROM decisions"
    ).fetchall()
    assert [row[:4] for row in rows] == [("rejected", "bad-request", "s-9", "none")]
    assert "not valid JSON" in rows[0][4] and "secret-ish" not in rows[0][4]
