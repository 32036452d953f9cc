"""The backend probe (providers/probe.py) and `hybrid-router doctor`.

Against the fake Ollama (present/missing models, capabilities, scripted tool calls, versions,
down), the real llama.cpp server with SmolLM2 (which never emits tool calls), an in-memory
OpenRouter (httpx MockTransport), the fake Anthropic API, the cache file, and the CLI.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from click.testing import CliRunner
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_ollama import FakeModel, FakeOllama, Reply, ToolCall

from hybrid_router.cli import cli
from hybrid_router.config.loading import parse_config
from hybrid_router.config.schema import Provider
from hybrid_router.providers import probe
from hybrid_router.providers.probe import (
    BackendReport,
    ModelReport,
    load_reports,
    probe_all,
    probe_backend,
    save_reports,
    tool_capable,
)

TOOLY, CHATTY, ABSENT = "qwen2.5-coder:7b", "gemma3:1b", "llama3:70b"
WEATHER_CALL = Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
OLLAMA = Provider(kind="ollama", base_url="http://127.0.0.1:11434", connect_timeout=2.0)
OPENROUTER_KEY = "sk-or-v1-probe-secret-0123456789"
ANTHROPIC_KEY = "sk-ant-probe-secret-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _ollama_models() -> list[FakeModel]:
    return [
        FakeModel(
            TOOLY, context_length=32768, capabilities=["completion", "tools"], reply=WEATHER_CALL
        ),
        FakeModel(
            CHATTY,
            context_length=8192,
            family="gemma3",
            capabilities=["completion"],
            reply="It is sunny in Paris, probably.",
        ),
    ]


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models=_ollama_models()) as server:
        yield server


async def _probe(server: FakeOllama, models: list[str], **kwargs: Any) -> BackendReport:
    async with httpx.AsyncClient(trust_env=False) as client:
        return await probe_backend(client, "ollama", OLLAMA, server.url, None, models, **kwargs)


# --------------------------------------------------------------------------------------------
# Ollama
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_ollama_models_context_and_tool_round_trip(ollama: FakeOllama) -> None:
    report = await _probe(ollama, [TOOLY, CHATTY, ABSENT])

    assert report.reachable is True and report.error is None
    assert report.version == "0.14.2" and report.messages_api is True
    tooly, chatty, absent = report.models
    assert (tooly.status, tooly.present, tooly.context_window) == ("ok", True, 32768)
    assert (tooly.tools, tooly.tools_hint, tooly.detail) == (True, True, None)
    assert (chatty.status, chatty.present, chatty.context_window) == ("ok", True, 8192)
    assert chatty.tools is False and chatty.tools_hint is False
    assert chatty.detail is not None and "answered with text" in chatty.detail
    assert (absent.status, absent.present, absent.tools, absent.context_window) == (
        "missing",
        False,
        None,
        None,
    )

    chats = ollama.requests_to("/api/chat")
    assert [c.body["model"] for c in chats] == [TOOLY, CHATTY]  # never the missing model
    body = chats[0].body
    assert body["stream"] is False
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert body["options"]["temperature"] == 0 and body["options"]["num_predict"] <= 256
    assert [r.body["model"] for r in ollama.requests_to("/api/show")] == [TOOLY, CHATTY]
    json.dumps(report.to_dict())  # serializable as is


@pytest.mark.anyio
async def test_ollama_name_without_tag_matches_latest(ollama: FakeOllama) -> None:
    ollama.add_model(FakeModel("mistral", reply=WEATHER_CALL))
    report = await _probe(ollama, ["mistral"])
    assert report.models[0].present is True and report.models[0].tools is True
    assert ollama.requests_to("/api/chat")[0].body["model"] == "mistral:latest"


@pytest.mark.anyio
async def test_ollama_capabilities_are_a_hint_the_round_trip_decides(ollama: FakeOllama) -> None:
    # claims tools but answers with text; claims none but calls the tool
    ollama.script(TOOLY, "I would call a tool here.")
    ollama.script(CHATTY, WEATHER_CALL)
    tooly, chatty = (await _probe(ollama, [TOOLY, CHATTY])).models
    assert (tooly.tools_hint, tooly.tools) == (True, False)
    assert (chatty.tools_hint, chatty.tools) == (False, True)


@pytest.mark.anyio
async def test_ollama_wrong_tool_or_refusal_is_not_a_pass(ollama: FakeOllama) -> None:
    ollama.script(TOOLY, Reply(tool_calls=[ToolCall("get_time", {})]))
    tooly = (await _probe(ollama, [TOOLY])).models[0]
    assert tooly.tools is False
    assert tooly.detail == "called get_time instead of a well-formed get_weather call"

    ollama.fail(
        400,
        f"registry.ollama.ai/library/{CHATTY} does not support tools",
        path="/api/chat",
        times=1,
    )
    chatty = (await _probe(ollama, [CHATTY])).models[0]
    assert chatty.tools is False
    assert chatty.detail is not None and "does not support tools" in chatty.detail


@pytest.mark.anyio
async def test_ollama_thinking_models_are_asked_not_to_think(ollama: FakeOllama) -> None:
    ollama.add_model(
        FakeModel(
            "qwen3:8b",
            capabilities=["completion", "tools", "thinking"],
            reply=Reply(thinking="Let me think. " * 100),
        )
    )
    thinker, tooly = (await _probe(ollama, ["qwen3:8b", TOOLY])).models
    first, second = ollama.requests_to("/api/chat")
    assert first.body["think"] is False and "think" not in second.body
    # all of the budget went on thinking (it ignored think=false): inconclusive, not a failure
    assert thinker.tools is None
    assert thinker.detail is not None and "thinking" in thinker.detail
    assert tooly.tools is True


@pytest.mark.anyio
async def test_ollama_server_error_in_tool_probe_is_inconclusive(ollama: FakeOllama) -> None:
    ollama.fail(500, "out of memory", path="/api/chat")
    tooly = (await _probe(ollama, [TOOLY])).models[0]
    assert tooly.status == "ok" and tooly.tools is None
    assert tooly.detail is not None and "HTTP 500" in tooly.detail


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.13.5", False),
        ("0.14.0", True),
        ("0.14.0-rc1", True),
        ("0.15.2", True),
        ("1.0.0", True),
        ("0.0.0", None),
        ("dev", None),
    ],
)
async def test_ollama_messages_api_follows_the_version(version: str, expected: bool | None) -> None:
    with FakeOllama(models=_ollama_models(), version=version) as server:
        report = await _probe(server, [TOOLY], tools=False)
    assert report.version == version and report.messages_api is expected


@pytest.mark.anyio
async def test_ollama_down_is_unreachable() -> None:
    server = FakeOllama(models=_ollama_models()).start()
    server.down()
    report = await _probe(server, [TOOLY, ABSENT])
    assert report.reachable is False
    assert report.error == f"cannot connect to {server.url}"
    assert [m.status for m in report.models] == ["unreachable", "unreachable"]
    assert all(m.present is None and m.tools is None for m in report.models)


@pytest.mark.anyio
async def test_ollama_slow_tool_probe_is_capped(ollama: FakeOllama) -> None:
    ollama.delay(3.0, path="/api/chat")
    started = time.monotonic()
    tooly = (await _probe(ollama, [TOOLY], tool_timeout=0.5)).models[0]
    assert time.monotonic() - started < 2.5
    assert tooly.status == "ok" and tooly.tools is None
    assert tooly.detail is not None and "0.5 s" in tooly.detail


@pytest.mark.anyio
async def test_no_tools_skips_the_round_trip(ollama: FakeOllama) -> None:
    report = await _probe(ollama, [TOOLY, CHATTY], tools=False)
    assert [m.tools for m in report.models] == [None, None]
    assert [m.tools_hint for m in report.models] == [True, False]
    assert ollama.requests_to("/api/chat") == []


@pytest.mark.anyio
async def test_something_else_on_the_ollama_port(ollama: FakeOllama) -> None:
    ollama.fail(404, "page not found", path="/api/version")
    report = await _probe(ollama, [TOOLY])
    assert report.reachable is True and report.error is not None
    assert "is this Ollama?" in report.error
    assert report.models[0].status == "error"


# --------------------------------------------------------------------------------------------
# The real llama.cpp server (OpenAI-compatible)
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_real_llama_cpp_server(llama_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # SmolLM2 answers the probe with ~64 tokens of prose; 16 tell as much and keep the test quick
    # on a busy 2-CPU machine (where it drops from ~100 to a few tokens/s), as does the cap of 90 s
    monkeypatch.setattr("hybrid_router.providers.probe.tools.TOOL_PROBE_MAX_TOKENS", 16)
    provider = Provider(kind="openai", base_url=llama_server.v1_url, connect_timeout=2.0)
    async with httpx.AsyncClient(trust_env=False) as client:
        report = await probe_backend(
            client,
            "llamacpp",
            provider,
            llama_server.v1_url,
            None,
            [llama_server.model, "not-loaded"],
            tool_timeout=90,
        )
    assert report.reachable is True and report.error is None
    assert report.version is not None and report.version.startswith("llama.cpp ")
    assert report.messages_api is None
    smol, other = report.models
    assert (smol.status, smol.present, smol.context_window) == ("ok", True, 2048)
    # SmolLM2 accepts `tools` but never emits a tool call
    assert smol.tools is False
    assert smol.detail is not None and smol.detail.startswith("answered with text")
    assert (other.status, other.present, other.tools) == ("missing", False, None)


# --------------------------------------------------------------------------------------------
# OpenRouter (in memory) and Anthropic (fake)
# --------------------------------------------------------------------------------------------

OPENROUTER = Provider(
    kind="openrouter", base_url="https://openrouter.test/api/v1", api_key_env="OPENROUTER_API_KEY"
)
OR_MODELS = [
    {
        "id": "qwen/qwen3-coder:free",
        "context_length": 262144,
        "supported_parameters": ["tools", "tool_choice", "max_tokens"],
    },
    {
        "id": "meta-llama/llama-3.3-70b-instruct:free",
        "context_length": 65536,
        "supported_parameters": ["max_tokens"],
    },
    {"id": "openai/gpt-5", "context_length": 400000, "supported_parameters": ["tools"]},
]


def _openrouter(seen: list[httpx.Request], *, status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if status != 200:
            return httpx.Response(
                status,
                json={
                    "error": {"message": f"invalid key {request.headers.get('authorization', '')}"}
                },
            )
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": OR_MODELS})
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        return httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                    }
                ]
            },
        )

    return httpx.MockTransport(handler)


@pytest.mark.anyio
async def test_openrouter_models_windows_and_free_tool_probe() -> None:
    seen: list[httpx.Request] = []
    models = [
        "qwen/qwen3-coder:free",
        "meta-llama/llama-3.3-70b-instruct:free",
        "openai/gpt-5",
        "gone/model:free",
    ]
    async with httpx.AsyncClient(transport=_openrouter(seen)) as client:
        report = await probe_backend(
            client, "openrouter", OPENROUTER, OPENROUTER.base_url, OPENROUTER_KEY, models
        )
    qwen, llama, paid, gone = report.models
    assert report.reachable is True
    assert (qwen.context_window, qwen.tools_hint, qwen.tools) == (262144, True, True)
    assert (llama.context_window, llama.tools_hint, llama.tools) == (65536, False, False)
    assert (paid.context_window, paid.tools) == (400000, None)  # never a paid round trip
    assert (gone.status, gone.present) == ("missing", False)
    posts = [r for r in seen if r.method == "POST"]
    assert len(posts) == 1
    sent = json.loads(posts[0].content)
    assert sent["tool_choice"] == "auto" and sent["temperature"] == 0 and not sent["stream"]
    assert posts[0].headers["authorization"] == f"Bearer {OPENROUTER_KEY}"
    assert OPENROUTER_KEY not in json.dumps(report.to_dict())


@pytest.mark.anyio
async def test_openrouter_error_echoing_the_key_is_scrubbed() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_openrouter(seen, status=401)) as client:
        report = await probe_backend(
            client,
            "openrouter",
            OPENROUTER,
            OPENROUTER.base_url,
            OPENROUTER_KEY,
            ["qwen/qwen3-coder:free"],
        )
    assert report.error is not None and "HTTP 401" in report.error
    assert report.models[0].status == "error"
    assert OPENROUTER_KEY not in json.dumps(report.to_dict())


@pytest.mark.anyio
async def test_keyless_cloud_backends_are_skipped_without_a_request() -> None:
    seen: list[httpx.Request] = []
    anthropic = Provider(
        kind="anthropic", base_url="https://anthropic.test", api_key_env="ANTHROPIC_API_KEY"
    )
    async with httpx.AsyncClient(transport=_openrouter(seen)) as client:
        reports = [
            await probe_backend(
                client,
                "openrouter",
                OPENROUTER,
                OPENROUTER.base_url,
                None,
                ["qwen/qwen3-coder:free"],
            ),
            await probe_backend(
                client, "anthropic", anthropic, anthropic.base_url, None, ["claude-sonnet-5"]
            ),
        ]
    assert seen == []
    assert [r.skipped for r in reports] == [
        "OPENROUTER_API_KEY not set",
        "ANTHROPIC_API_KEY not set",
    ]
    assert [r.reachable for r in reports] == [None, None]
    assert [r.models[0].status for r in reports] == ["skipped", "skipped"]


@pytest.mark.anyio
async def test_anthropic_with_a_key_lists_models_and_never_sends_a_message() -> None:
    provider = Provider(kind="anthropic", base_url="http://x", api_key_env="ANTHROPIC_API_KEY")
    with FakeAnthropic() as fake:
        async with httpx.AsyncClient(trust_env=False) as client:
            report = await probe_backend(
                client,
                "anthropic",
                provider,
                fake.url,
                ANTHROPIC_KEY,
                ["claude-sonnet-5", "claude-sonnet-latest"],
            )
        requests = list(fake.requests)
    assert report.reachable is True and report.error is None
    listed, alias = report.models
    assert (listed.status, listed.present, listed.tools) == ("ok", True, None)
    assert (alias.status, alias.present) == ("ok", None)
    assert [(r.method, r.path) for r in requests] == [("GET", "/v1/models")]
    assert requests[0].header("x-api-key") == ANTHROPIC_KEY
    assert requests[0].header("anthropic-version")
    assert ANTHROPIC_KEY not in json.dumps(report.to_dict())


# --------------------------------------------------------------------------------------------
# probe_all, tool_capable, the cache
# --------------------------------------------------------------------------------------------


def _config(
    ollama_url: str = "http://127.0.0.1:11434",
    *,
    openrouter_url: str = "https://openrouter.test/api/v1",
    anthropic_url: str = "https://api.anthropic.com",
    coder: str = CHATTY,
    coder_window: int = 8192,
) -> dict[str, Any]:
    return {
        "providers": {
            "ollama": {
                "kind": "ollama",
                "baseUrl": ollama_url,
                "baseUrlEnv": "OLLAMA_HOST",
                "connectTimeout": 2,
            },
            "openrouter": {
                "kind": "openrouter",
                "baseUrl": openrouter_url,
                "baseUrlEnv": "HYBRID_ROUTER_OPENROUTER_URL",
                "apiKeyEnv": "OPENROUTER_API_KEY",
                "connectTimeout": 2,
            },
            "anthropic": {
                "kind": "anthropic",
                "baseUrl": anthropic_url,
                "baseUrlEnv": "HYBRID_ROUTER_ANTHROPIC_URL",
                "apiKeyEnv": "ANTHROPIC_API_KEY",
                "connectTimeout": 2,
            },
            "unused": {"kind": "openai", "baseUrl": "http://127.0.0.1:9"},
        },
        "tiers": {
            "fast": {
                "provider": "ollama",
                "model": TOOLY,
                "contextWindow": 32768,
                "fallbacks": [
                    {"provider": "openrouter", "model": "qwen/qwen3-coder:free"},
                    {"tier": "premium"},
                ],
            },
            "coder": {
                "provider": "ollama",
                "model": coder,
                "contextWindow": coder_window,
                "fallbacks": [{"provider": "openrouter", "model": "qwen/qwen3-coder:free"}],
            },
            "premium": {
                "provider": "anthropic",
                "model": "claude-sonnet-5",
                "contextWindow": 200000,
            },
        },
        "routes": [],
        "defaultRoute": {"name": "default", "target": {"tier": "fast"}},
    }


@pytest.mark.anyio
async def test_probe_all_covers_tiers_and_fallbacks(ollama: FakeOllama) -> None:
    config = parse_config(_config(), "test")
    assert probe.configured_backends(config) == {
        "ollama": [TOOLY, CHATTY],
        "anthropic": ["claude-sonnet-5"],
        "openrouter": ["qwen/qwen3-coder:free"],
    }
    environ = {"OLLAMA_HOST": ollama.url}  # no keys: the cloud backends are skipped
    async with httpx.AsyncClient(trust_env=False) as client:
        reports = await probe_all(config, environ, client)
    assert [r.provider for r in reports] == ["ollama", "anthropic", "openrouter"]
    assert reports[0].base_url == ollama.url
    assert [m.tools for m in reports[0].models] == [True, False]
    assert tool_capable(reports, "ollama", TOOLY) is True
    assert tool_capable(reports, "ollama", CHATTY) is False
    assert tool_capable(reports, "openrouter", "qwen/qwen3-coder:free") is None
    assert tool_capable(reports, "ollama", "never-probed:1b") is None
    assert tool_capable(reports, "nope", TOOLY) is None
    assert tool_capable([], "ollama", TOOLY) is None


def test_tool_capable_matches_ollama_latest_tag() -> None:
    reports = [
        BackendReport(
            "ollama",
            "ollama",
            "http://o",
            models=[ModelReport("mistral:latest", status="ok", tools=True)],
        )
    ]
    assert tool_capable(reports, "ollama", "mistral") is True
    assert tool_capable(reports, "ollama", "mistral:7b") is None


def _sample_reports() -> list[BackendReport]:
    return [
        BackendReport(
            "ollama",
            "ollama",
            "http://127.0.0.1:11434",
            reachable=True,
            version="0.14.2",
            messages_api=True,
            models=[
                ModelReport(TOOLY, "ok", True, 32768, True, True),
                ModelReport(CHATTY, "ok", True, 8192, False, False, "text"),
                ModelReport(ABSENT, "missing", False),
            ],
        ),
        BackendReport(
            "openrouter",
            "openrouter",
            "https://openrouter.ai/api/v1",
            skipped="OPENROUTER_API_KEY not set",
            models=[ModelReport("qwen/qwen3-coder:free", "skipped")],
        ),
    ]


def test_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "probe.json"
    reports = _sample_reports()
    save_reports(path, reports)
    assert load_reports(path, 60) == reports
    assert os.listdir(path.parent) == ["probe.json"]  # no temporary file left behind
    assert tool_capable(load_reports(path, 60), "ollama", CHATTY) is False


def test_cache_path_is_under_the_home(router_home: Path) -> None:
    assert probe.cache_path() == router_home / "state" / "probe.json"
    assert load_reports(probe.cache_path()) == []  # missing: no reports


def test_cache_expires(tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    save_reports(path, _sample_reports())
    payload = json.loads(path.read_text())
    payload["saved_at"] = time.time() - 3600
    path.write_text(json.dumps(payload))
    assert load_reports(path, 1800) == []
    assert len(load_reports(path, 7200)) == 2
    assert len(load_reports(path, None)) == 2
    payload["saved_at"] = time.time() + 86400  # from the future: a clock went wrong
    path.write_text(json.dumps(payload))
    assert load_reports(path, 7200) == []


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "[]",
        '{"version": 1}',
        '{"version": 99, "saved_at": 0, "reports": []}',
        '{"version": 1, "saved_at": "soon", "reports": []}',
        f'{{"version": 1, "saved_at": {time.time()}, "reports": {{}}}}',
        f'{{"version": 1, "saved_at": {time.time()}, "reports": [{{"kind": "ollama"}}]}}',
        f'{{"version": 1, "saved_at": {time.time()}, "reports": [42]}}',
        (
            f'{{"version": 1, "saved_at": {time.time()}, "reports": '
            f'[{{"provider": "o", "kind": "ollama", "models": 3}}]}}'
        ),
    ],
)
def test_corrupt_cache_is_no_cache(tmp_path: Path, content: str) -> None:
    path = tmp_path / "probe.json"
    path.write_text(content)
    assert load_reports(path, 3600) == []


def test_corrupt_cache_is_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    path.write_bytes(b"\xff\xfe garbage")
    assert load_reports(path) == []
    save_reports(path, _sample_reports())
    assert len(load_reports(path)) == 2


def test_carry_over_keeps_earlier_tool_results() -> None:
    fresh = _sample_reports()
    for entry in fresh[0].models:
        entry.tools = None
    probe.carry_over_tools(fresh, _sample_reports())
    assert [m.tools for m in fresh[0].models] == [True, False, None]


# --------------------------------------------------------------------------------------------
# hybrid-router doctor
# --------------------------------------------------------------------------------------------


@pytest.fixture
def doctor_env(
    router_home: Path, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A home whose config points at the fakes: Ollama, an OpenAI-style "OpenRouter" (a second
    fake Ollama's /v1) and the fake Anthropic API, with both keys set."""
    with (
        FakeOllama(models=[FakeModel("qwen/qwen3-coder:free", reply=WEATHER_CALL)]) as cloud,
        FakeAnthropic() as anthropic,
    ):
        router_home.mkdir(parents=True, exist_ok=True)
        (router_home / "router-config.json").write_text(json.dumps(_config()))
        monkeypatch.setenv("OLLAMA_HOST", ollama.url)
        monkeypatch.setenv("HYBRID_ROUTER_OPENROUTER_URL", f"{cloud.url}/v1")
        monkeypatch.setenv("HYBRID_ROUTER_ANTHROPIC_URL", anthropic.url)
        monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_KEY)
        (router_home / ".env").write_text(f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\n")  # from .env
        yield {"home": router_home, "ollama": ollama, "cloud": cloud, "anthropic": anthropic}


def _doctor(*args: str) -> Any:
    return CliRunner().invoke(cli, ["doctor", *args], catch_exceptions=False)


def _rows(output: str) -> dict[str, list[str]]:
    """Table rows by model name (first column)."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and "MODEL" not in line:
            cells = line.split()
            rows[cells[0]] = cells[1:]
    return rows


def test_doctor_all_usable(doctor_env: dict[str, Any]) -> None:
    result = _doctor()
    out = result.output
    assert result.exit_code == 0, out
    assert (
        f"ollama (ollama) {doctor_env['ollama'].url}: reachable, Ollama 0.14.2, "
        "native /api/chat (the window is set per request)" in out
    )
    # MODEL STATUS CONTEXT (the model's maximum) WINDOW (the tier's) RUNNING AT TOOLS USED BY
    assert "RUNNING AT" in out
    rows = _rows(out)
    # status, the model's maximum, the tier's window, the window Ollama runs it at now, tools
    assert rows[TOOLY][:5] == ["OK", "32768", "32768", "unloaded", "yes"]
    assert rows[CHATTY][:5] == ["OK", "8192", "8192", "unloaded", "no"]
    assert rows["qwen/qwen3-coder:free"][:5] == ["OK", "\u2014", "\u2014", "\u2014", "yes"]
    assert rows["claude-sonnet-5"][:5] == ["OK", "\u2014", "200000", "\u2014", "\u2014"]
    assert "All 3 tiers usable." in out
    assert f"model {CHATTY} did not call a tool" in out
    assert OPENROUTER_KEY not in out and ANTHROPIC_KEY not in out
    # the keys went where they belong, and nowhere into the saved cache
    assert doctor_env["anthropic"].requests[0].header("x-api-key") == ANTHROPIC_KEY
    cache = (doctor_env["home"] / "state" / "probe.json").read_text()
    assert OPENROUTER_KEY not in cache and ANTHROPIC_KEY not in cache
    assert tool_capable(load_reports(probe.cache_path()), "ollama", TOOLY) is True


def test_doctor_missing_primary_fails_with_hint(doctor_env: dict[str, Any]) -> None:
    (doctor_env["home"] / "router-config.json").write_text(json.dumps(_config(coder=ABSENT)))
    result = _doctor()
    assert result.exit_code == 1
    assert _rows(result.output)[ABSENT][0] == "missing"
    assert "2 of 3 tiers usable; not usable: coder" in result.output
    assert (
        f"model {ABSENT} not installed: `hybrid-router` MCP pull_model or "
        f"`ollama pull {ABSENT}`" in result.output
    )


def test_doctor_ollama_down_and_no_keys(
    doctor_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor_env["ollama"].down()
    monkeypatch.delenv("OPENROUTER_API_KEY")
    (doctor_env["home"] / ".env").unlink()
    result = _doctor()
    out = result.output
    assert result.exit_code == 1
    url = doctor_env["ollama"].url
    assert f"ollama not reachable at {url}: start `ollama serve` or set OLLAMA_HOST" in out
    assert "OPENROUTER_API_KEY not set: OpenRouter fallbacks are skipped" in out
    assert _rows(out)[TOOLY][0] == "unreachable"
    assert _rows(out)["qwen/qwen3-coder:free"][0] == "skipped"
    assert "1 of 3 tiers usable; not usable: fast, coder" in out  # premium: Claude Code's login
    assert doctor_env["cloud"].requests == [] and doctor_env["anthropic"].requests == []


def test_doctor_window_larger_than_the_model_is_a_hint(doctor_env: dict[str, Any]) -> None:
    (doctor_env["home"] / "router-config.json").write_text(json.dumps(_config(coder_window=65536)))
    result = _doctor("--no-tools")
    assert result.exit_code == 0
    assert (
        f"tier coder says contextWindow 65536 but ollama reports 8192 for {CHATTY}" in result.output
    )
    assert _rows(result.output)[TOOLY][4] == "\u2014"  # tools untested


def test_doctor_json_and_no_tools(doctor_env: dict[str, Any]) -> None:
    assert _doctor().exit_code == 0
    chats = len(doctor_env["ollama"].requests_to("/api/chat"))
    result = _doctor("--json", "--no-tools")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["ok"] is True
    assert [t["tier"] for t in data["tiers"]] == ["fast", "coder", "premium"]
    backends = {b["provider"]: b for b in data["backends"]}
    assert backends["ollama"]["version"] == "0.14.2"
    assert backends["ollama"]["models"][0]["model"] == TOOLY
    assert backends["ollama"]["models"][0]["context_window"] == 32768
    assert len(doctor_env["ollama"].requests_to("/api/chat")) == chats  # no new round trip
    # the earlier tool results survive a --no-tools run
    cached = load_reports(probe.cache_path())
    assert tool_capable(cached, "ollama", TOOLY) is True
    assert tool_capable(cached, "ollama", CHATTY) is False
    assert OPENROUTER_KEY not in result.output and ANTHROPIC_KEY not in result.output


def test_doctor_bad_config_is_one_line(router_home: Path) -> None:
    router_home.mkdir(parents=True, exist_ok=True)
    (router_home / "router-config.json").write_text("{oops")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "invalid JSON" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_doctor_shows_the_window_ollama_runs_a_model_at(doctor_env: dict[str, Any]) -> None:
    """A model another client loaded at Ollama's default window shows it beside the tier's."""
    import httpx

    loaded = httpx.post(
        f"{doctor_env['ollama'].url}/api/chat",
        json={"model": TOOLY, "messages": [{"role": "user", "content": "hi"}], "stream": False},
        timeout=10,
    )
    assert loaded.status_code == 200
    result = _doctor("--no-tools")
    assert _rows(result.output)[TOOLY][2:4] == ["32768", "4096"]
