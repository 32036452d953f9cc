"""The OpenRouter free-tier tracker against the fake OpenRouter (tests/fakes/fake_openrouter.py)."""

from __future__ import annotations

import calendar
import json
import logging
import os
from pathlib import Path

import httpx2 as httpx
import pytest
from fakes.fake_openrouter import FakeModel, FakeOpenRouter, Reply, ToolCall

from hybrid_router.providers.openrouter import (
    FreeTierTracker,
    default_state_path,
    is_free_model,
    next_utc_midnight,
)

FREE = "qwen/qwen3-coder:free"
PAID = "openai/gpt-4o-mini"
NOON = float(calendar.timegm((2026, 3, 10, 12, 0, 0)))  # a Tuesday, 12:00 UTC
MIDNIGHT = next_utc_midnight(NOON)  # 2026-03-11 00:00 UTC
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake():
    with FakeOpenRouter(clock=lambda: NOON) as server:
        yield server


@pytest.fixture
def tracker(router_home: Path) -> FreeTierTracker:
    return FreeTierTracker(default_state_path())


def chat(fake: FakeOpenRouter, model: str, **body) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/chat/completions",
        headers=fake.auth_headers(),
        json={"model": model, "messages": USER, **body},
        timeout=10,
    )


def record(tracker: FreeTierTracker, response: httpx.Response, model: str, now: float) -> None:
    tracker.record_response(
        "openrouter", model, response.status_code, response.headers, response.content, now
    )


async def refresh(
    tracker: FreeTierTracker, fake: FakeOpenRouter, now: float = NOON, key: str | None = None
) -> bool:
    async with httpx.AsyncClient() as client:
        return await tracker.refresh(client, "openrouter", fake.base_url, key or fake.api_key, now)


# -- the tracker ---------------------------------------------------------------------------------


def test_state_lives_in_the_home(router_home: Path) -> None:
    assert default_state_path() == str(router_home / "state" / "openrouter.json")
    assert is_free_model(FREE) and is_free_model("openrouter/free") and not is_free_model(PAID)


def test_fresh_state_is_not_exhausted(tracker: FreeTierTracker) -> None:
    assert tracker.exhausted("openrouter", FREE, NOON) is None
    assert tracker.exhausted("openrouter", PAID, NOON) is None
    assert tracker.retry_after("openrouter", NOON) is None
    for _ in range(500):  # the ceiling is unknown until /key, a header or a 429 tells it
        tracker.count_request("openrouter", FREE, NOON)
    assert tracker.exhausted("openrouter", FREE, NOON) is None


@pytest.mark.anyio
async def test_key_refresh_populates_limits(tracker: FreeTierTracker, fake: FakeOpenRouter) -> None:
    fake.free_used = 48
    assert await refresh(tracker, fake)
    state = tracker.snapshot("openrouter", NOON)
    assert (state["free_limit"], state["free_used"], state["is_free_tier"]) == (50, 48, True)
    assert state["key_limit"] is None and state["key_usage"] == 0.0
    assert tracker.exhausted("openrouter", FREE, NOON) is None
    for _ in range(2):
        assert chat(fake, FREE).status_code == 200
        tracker.count_request("openrouter", FREE, NOON)
    reason = tracker.exhausted("openrouter", FREE, NOON)
    assert reason and "50/50" in reason and "00:00 UTC" in reason
    assert tracker.exhausted("openrouter", PAID, NOON) is None  # paid models have no such cap
    assert chat(fake, FREE).status_code == 429  # the tracker was right


@pytest.mark.anyio
async def test_key_refresh_with_credits_and_a_spent_key_cap(tracker: FreeTierTracker) -> None:
    with FakeOpenRouter(
        free_daily_limit=1000,
        is_free_tier=False,
        balance=20.0,
        key_limit=5.0,
        key_usage=5.0,
        key_limit_reset="daily",
    ) as fake:
        assert await refresh(tracker, fake)
        state = tracker.snapshot("openrouter", NOON)
        assert state["free_limit"] == 1000 and state["key_limit_remaining"] == 0.0
        reason = tracker.exhausted("openrouter", PAID, NOON)
        assert reason and "key credit limit" in reason
        assert tracker.exhausted("openrouter", PAID, MIDNIGHT) is None  # `limit_reset: daily`
        assert tracker.exhausted("openrouter", FREE, NOON) is None  # free models cost nothing
        fake.key_limit = 10.0  # the user raised the cap: the next refresh lifts the block
        assert await refresh(tracker, fake)
        assert tracker.exhausted("openrouter", PAID, NOON) is None


def test_daily_counter_exhausts_at_the_cap_and_resets_at_utc_midnight(tmp_path: Path) -> None:
    tracker = FreeTierTracker(str(tmp_path / "s.json"))
    late = MIDNIGHT - 60  # 23:59 UTC
    # A daily window's headers (reset far away) teach the ceiling; a success lifts nothing.
    tracker.record_response(
        "openrouter",
        FREE,
        200,
        {
            "X-RateLimit-Limit": "3",
            "X-RateLimit-Remaining": "3",
            "X-RateLimit-Reset": str(int(MIDNIGHT * 1000)),
        },
        None,
        NOON,
    )
    assert tracker.snapshot("openrouter", NOON)["free_limit"] == 3
    for _ in range(2):
        tracker.count_request("openrouter", FREE, late)
        tracker.count_request("openrouter", PAID, late)  # paid requests don't count
    assert tracker.exhausted("openrouter", FREE, late) is None
    tracker.count_request("openrouter", "openrouter/free", late)
    reason = tracker.exhausted("openrouter", FREE, late)
    assert reason and "3/3" in reason and "in 0h" not in reason and "1m 0s" in reason
    assert tracker.exhausted("openrouter", FREE, MIDNIGHT + 1) is None
    assert tracker.snapshot("openrouter", MIDNIGHT + 1)["free_used"] == 0


def test_daily_429_marks_the_free_tier_exhausted_until_the_reset(
    tracker: FreeTierTracker, fake: FakeOpenRouter
) -> None:
    fake.exhaust_free_daily()
    response = chat(fake, FREE)
    assert response.status_code == 429
    assert "free-models-per-day" in response.json()["error"]["message"]
    record(tracker, response, FREE, NOON)
    reason = tracker.exhausted("openrouter", FREE, NOON)
    assert reason and "daily limit" in reason and "00:00 UTC, in 12h 0m" in reason
    assert tracker.exhausted("openrouter", "meta-llama/llama-3.3-70b-instruct:free", NOON)
    assert tracker.exhausted("openrouter", PAID, NOON) is None
    assert tracker.retry_after("openrouter", NOON) is None
    assert tracker.exhausted("openrouter", FREE, MIDNIGHT - 1)
    assert tracker.exhausted("openrouter", FREE, MIDNIGHT) is None


def test_daily_429_without_headers_blocks_until_utc_midnight(tracker: FreeTierTracker) -> None:
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "message": "Rate limit exceeded: free-models-per-day."
                " Add 10 credits to unlock 1000 free model requests per day",
            }
        }
    )
    tracker.record_response("openrouter", FREE, 429, {}, body.encode(), NOON)
    assert tracker.exhausted("openrouter", FREE, MIDNIGHT - 1)
    assert tracker.exhausted("openrouter", FREE, MIDNIGHT) is None
    assert tracker.snapshot("openrouter", NOON)["free_limit"] == 50  # the lower tier, by its text


def test_per_minute_429_gives_a_short_retry_after_not_exhaustion(
    tracker: FreeTierTracker, fake: FakeOpenRouter
) -> None:
    fake.rate_limit_minute(retry_after=7)
    response = chat(fake, FREE)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    record(tracker, response, FREE, NOON)
    assert tracker.exhausted("openrouter", FREE, NOON) is None
    assert tracker.retry_after("openrouter", NOON) == pytest.approx(7)
    assert tracker.retry_after("openrouter", NOON + 8) is None
    # Without Retry-After, the window's own reset time (X-RateLimit-Reset) decides.
    fake.rate_limit_minute()
    record(tracker, chat(fake, FREE), FREE, NOON + 10)
    wait = tracker.retry_after("openrouter", NOON + 10)
    assert wait is not None and 0 < wait <= 60
    assert tracker.exhausted("openrouter", FREE, NOON + 10) is None


def test_the_fakes_minute_window_and_an_in_stream_rate_limit(tracker: FreeTierTracker) -> None:
    with FakeOpenRouter(free_per_minute=2) as fake:
        assert [chat(fake, FREE).status_code for _ in range(3)] == [200, 200, 429]
    event = (
        b'data: {"error":{"code":429,"message":"Rate limit exceeded"},"choices":[{"index":0,'
        b'"delta":{"content":""},"finish_reason":"error"}]}'
    )
    tracker.record_response("openrouter", FREE, 200, {}, event, NOON)
    assert tracker.retry_after("openrouter", NOON) == pytest.approx(60)
    assert tracker.exhausted("openrouter", FREE, NOON) is None


def test_upstream_429_skips_only_that_model(tracker: FreeTierTracker, fake: FakeOpenRouter) -> None:
    fake.fail(
        429,
        "Provider returned error",
        metadata={
            "raw": f"{FREE} is temporarily rate-limited upstream.",
            "provider_name": "Chutes",
        },
        headers={"Retry-After": "30"},
    )
    record(tracker, chat(fake, FREE), FREE, NOON)
    assert "upstream" in (tracker.exhausted("openrouter", FREE, NOON) or "")
    assert tracker.exhausted("openrouter", "meta-llama/llama-3.3-70b-instruct:free", NOON) is None
    assert tracker.exhausted("openrouter", FREE, NOON + 31) is None
    assert tracker.retry_after("openrouter", NOON) is None


def test_402_blocks_paid_models_and_free_ones_only_on_a_negative_balance(
    tracker: FreeTierTracker, fake: FakeOpenRouter
) -> None:
    response = chat(fake, PAID)  # balance 0: the paid model cannot be paid for
    assert response.status_code == 402
    assert response.json()["error"]["metadata"]["limit_source"] == "openrouter_credits"
    record(tracker, response, PAID, NOON)
    assert "insufficient credits" in (tracker.exhausted("openrouter", PAID, NOON) or "")
    # OpenRouter documents 402 on free models only for a negative balance: they stay usable.
    assert tracker.exhausted("openrouter", FREE, NOON) is None
    assert chat(fake, FREE).status_code == 200

    fake.balance = -0.5  # now the balance is negative: free models are refused too
    response = chat(fake, FREE)
    assert response.status_code == 402
    record(tracker, response, FREE, NOON)
    assert "balance is negative" in (tracker.exhausted("openrouter", FREE, NOON) or "")
    # No end time is given: look again an hour later (one refused request is cheap).
    assert tracker.exhausted("openrouter", FREE, NOON + 3601) is None

    fake.balance = 10.0
    ok = chat(fake, FREE)
    assert ok.status_code == 200
    record(tracker, ok, FREE, NOON + 10)  # a free model answered: the block is over
    assert tracker.exhausted("openrouter", FREE, NOON + 10) is None


@pytest.mark.anyio
async def test_402_key_limit_and_in_flight_budget(tracker: FreeTierTracker) -> None:
    with FakeOpenRouter(
        balance=5.0, key_limit=1.0, key_usage=1.0, key_limit_reset="weekly"
    ) as fake:
        response = chat(fake, PAID)
        assert response.json()["error"]["metadata"]["limit_source"] == "openrouter_key_limit"
        record(tracker, response, PAID, NOON)
        # The reset period is not known yet: look again in an hour.
        assert tracker.exhausted("openrouter", PAID, NOON + 3599)
        assert tracker.exhausted("openrouter", FREE, NOON) is None
        assert await refresh(tracker, fake)  # `limit_reset: weekly`: until Monday 00:00 UTC
    monday = float(calendar.timegm((2026, 3, 16, 0, 0, 0)))
    assert tracker.exhausted("openrouter", PAID, monday - 1)
    assert tracker.exhausted("openrouter", PAID, monday) is None
    body = json.dumps(
        {
            "error": {
                "code": 402,
                "message": "in-flight",
                "metadata": {
                    "reason": "in_flight_budget_exhausted",
                    "limit_source": "openrouter_in_flight_budget",
                },
            }
        }
    )
    tracker.record_response("other", PAID, 402, {"Retry-After": "5"}, body.encode(), NOON)
    assert tracker.exhausted("other", PAID, NOON + 4)
    assert tracker.exhausted("other", PAID, NOON + 6) is None
    assert tracker.exhausted("other", FREE, NOON) is None  # free models are exempt


def test_state_survives_a_new_tracker_and_a_corrupt_file_is_ignored(
    router_home: Path, fake: FakeOpenRouter
) -> None:
    first = FreeTierTracker(default_state_path())
    fake.exhaust_free_daily()
    record(first, chat(fake, FREE), FREE, NOON)
    second = FreeTierTracker(default_state_path())  # another process: the proxy, the CLI
    assert second.exhausted("openrouter", FREE, NOON)
    # Changes by one are seen by the other without restarting it.
    first.record_response(
        "openrouter",
        FREE,
        429,
        {"Retry-After": "9"},
        b'{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}',
        NOON,
    )
    assert second.retry_after("openrouter", NOON) == pytest.approx(9)

    path = Path(default_state_path())
    for garbage in ("{not json", "[]", '{"version": 1, "providers": {"openrouter": 5}}', "\xff"):
        path.write_text(garbage, encoding="latin-1")
        fresh = FreeTierTracker(str(path))
        assert fresh.exhausted("openrouter", FREE, NOON) is None
        fresh.count_request("openrouter", FREE, NOON)  # and it writes a good file over it
        assert json.loads(path.read_text())["providers"]["openrouter"]["free_used"] == 1
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_memory_only_tracker_writes_nothing(router_home: Path) -> None:
    tracker = FreeTierTracker(None)
    tracker.count_request("openrouter", FREE, NOON)
    assert tracker.snapshot("openrouter", NOON)["free_used"] == 1
    assert not os.path.exists(default_state_path())


@pytest.mark.anyio
async def test_the_api_key_never_reaches_the_state_file_or_the_log(
    tracker: FreeTierTracker, fake: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert await refresh(tracker, fake)
    assert not await refresh(tracker, fake, key="sk-or-v1-wrong-key-0123456789")
    text = Path(default_state_path()).read_text()
    assert fake.api_key not in text and "sk-or" not in text  # not even the key's label
    assert "sk-or" not in caplog.text
    sent = fake.requests_to("/api/v1/key")[0]
    assert sent.header("authorization") == f"Bearer {fake.api_key}"
    assert sent.header("x-title") == "claude-hybrid-router"  # attribution


@pytest.mark.anyio
async def test_refresh_errors_leave_the_state_unchanged(
    tracker: FreeTierTracker, fake: FakeOpenRouter
) -> None:
    fake.free_used = 12
    assert await refresh(tracker, fake)
    before = tracker.snapshot("openrouter", NOON)
    fake.free_used = 40
    assert not await refresh(tracker, fake, key="sk-or-v1-not-this-one")  # 401
    gone = FakeOpenRouter().start()
    dead_url = gone.base_url
    gone.stop()
    async with httpx.AsyncClient() as client:
        assert not await tracker.refresh(client, "openrouter", fake.base_url, None, NOON)  # no key
        # connection refused
        assert not await tracker.refresh(client, "openrouter", dead_url, fake.api_key, NOON)
        assert not await tracker.refresh(
            client, "openrouter", fake.url + "/nowhere", fake.api_key, NOON
        )  # 404
    assert tracker.snapshot("openrouter", NOON) == before


# -- the fake itself -----------------------------------------------------------------------------


def test_fake_streams_like_openrouter(fake: FakeOpenRouter) -> None:
    fake.script(FREE, Reply("Hello there", tool_calls=[ToolCall("Read", {"path": "a.py"})]))
    with httpx.stream(
        "POST",
        f"{fake.base_url}/chat/completions",
        headers={**fake.auth_headers(), "HTTP-Referer": "https://x", "X-Title": "t"},
        json={"model": FREE, "messages": USER, "stream": True},
        timeout=10,
    ) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[0] == ": OPENROUTER PROCESSING"
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[1:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello there"
    calls = [
        tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "Read"
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"path": "a.py"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] == 0.0
    recorded = fake.requests_to("/api/v1/chat/completions")[0]
    assert recorded.header("http-referer") == "https://x" and recorded.header("x-title") == "t"
    assert fake.free_used == 1


def test_fake_auth_models_key_and_paid_costs(fake: FakeOpenRouter) -> None:
    assert (
        httpx.post(
            f"{fake.base_url}/chat/completions", json={"model": FREE, "messages": USER}
        ).status_code
        == 401
    )
    assert httpx.get(f"{fake.base_url}/key").status_code == 401
    models = httpx.get(f"{fake.base_url}/models").json()["data"]  # public
    assert {m["id"] for m in models} >= {FREE, PAID}
    assert next(m for m in models if m["id"] == FREE)["pricing"]["prompt"] == "0"
    assert "tools" in models[0]["supported_parameters"]
    fake.balance = 1.0
    body = chat(fake, PAID, max_tokens=2).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["cost"] > 0 and fake.balance < 1.0
    assert chat(fake, "nope/unknown").status_code == 400


def test_fake_faults(fake: FakeOpenRouter) -> None:
    fake.fail(503, "No endpoints found")
    assert chat(fake, FREE).status_code == 503
    fake.delay(0.3)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{fake.base_url}/chat/completions",
            headers=fake.auth_headers(),
            json={"model": FREE, "messages": USER},
            timeout=httpx.Timeout(5, read=0.1),
        )
    fake.break_stream(after=1)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{fake.base_url}/chat/completions",
            headers=fake.auth_headers(),
            json={"model": FREE, "messages": USER, "stream": True},
            timeout=10,
        ) as r,
    ):
        list(r.iter_lines())
    fake.stream_error(after=1, status=429, message="Rate limit exceeded")
    with httpx.stream(
        "POST",
        f"{fake.base_url}/chat/completions",
        headers=fake.auth_headers(),
        json={"model": FREE, "messages": USER, "stream": True},
        timeout=10,
    ) as r:
        events = [line for line in r.iter_lines() if line.startswith("data: {")]
    assert r.status_code == 200 and json.loads(events[-1][6:])["error"]["code"] == 429
    fake.delay(0.2, keepalive=True)
    with httpx.stream(
        "POST",
        f"{fake.base_url}/chat/completions",
        headers=fake.auth_headers(),
        json={"model": FREE, "messages": USER, "stream": True},
        timeout=10,
    ) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines.count(": OPENROUTER PROCESSING") > 1 and lines[-1] == "data: [DONE]"
    fake.new_day()
    assert fake.free_used == 0


def test_fake_custom_models_and_headers_on_success() -> None:
    models = [FakeModel("z/tiny:free", reply="tiny answer")]
    with FakeOpenRouter(
        models, free_daily_limit=5, rate_limit_headers_on_success=True, clock=lambda: NOON
    ) as fake:
        response = chat(fake, "z/tiny:free")
    assert response.json()["choices"][0]["message"]["content"] == "tiny answer"
    assert response.headers["x-ratelimit-remaining"] == "4"
    tracker = FreeTierTracker(None)
    record(tracker, response, "z/tiny:free", NOON)
    state = tracker.snapshot("openrouter", NOON)
    assert (state["free_limit"], state["free_used"]) == (5, 1)
