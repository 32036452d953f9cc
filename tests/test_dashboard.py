"""The web dashboard: its JSON summary over seeded rows, and the page itself rendered from a real
server in headless Chromium (Debian's `chromium` package), DOM read and a screenshot taken."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from hybrid_router.cli import cli
from hybrid_router.dashboard import create_dashboard_app, dashboard_routes, summary
from hybrid_router.dashboard.app import STATIC_DIR
from hybrid_router.dashboard.data import RuleHitCache, percentile, rule_hits, timeline
from hybrid_router.log.database import connect
from hybrid_router.log.rows import DecisionRow, record, record_many

HOUR = 3600.0
DAY = 86400.0
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def _row(
    provider,
    rule,
    ts,
    *,
    outcome="ok",
    cost=0.0,
    baseline=0.0,
    latency=None,
    ttft=None,
    fallback_from=None,
    source="proxy",
):
    return DecisionRow(
        source=source,
        rule=rule,
        provider=provider,
        model=f"{provider}-model",
        outcome=outcome,
        ts=ts,
        cost=cost,
        baseline_cost=baseline,
        latency_ms=latency,
        ttft_ms=ttft,
        fallback_from=fallback_from,
        prompt_text="SECRET PROMPT TEXT",
        prompt_hash="h" * 64,
        prompt_chars=18,
    )


def seed(path: Path, now: float) -> None:
    """8 decisions in the last 24 hours (7 requests, 1 hook classification) and one 10 days old."""
    with closing(connect(path)) as conn:
        record_many(
            conn,
            [
                _row(
                    "ollama", "code-generation", now - 1 * HOUR, baseline=0.30, latency=100, ttft=50
                ),
                _row(
                    "ollama", "code-generation", now - 2 * HOUR, baseline=0.30, latency=200, ttft=50
                ),
                _row(
                    "ollama", "code-generation", now - 3 * HOUR, baseline=0.30, latency=300, ttft=50
                ),
                _row(
                    "openrouter",
                    "architecture",
                    now - 4 * HOUR,
                    outcome="fallback",
                    baseline=0.10,
                    latency=900,
                    fallback_from="ollama",
                ),
                _row(
                    "anthropic", "security", now - 5 * HOUR, cost=0.40, baseline=0.40, latency=1500
                ),
                _row(
                    "anthropic", "security", now - 6 * HOUR, cost=0.40, baseline=0.40, latency=2500
                ),
                _row("anthropic", "security", now - 7 * HOUR, outcome="error"),
                _row("ollama", "file-operations", now - 8 * HOUR, outcome="routed", source="hook"),
                _row("ollama", "default", now - 10 * DAY, baseline=1.00, latency=400),
            ],
        )


# --- (a) the JSON summary --------------------------------------------------------------------


def test_summary_numbers_for_24h(tmp_path):
    now = time.time()
    seed(tmp_path / "d.db", now)
    with closing(connect(tmp_path / "d.db")) as conn:
        data = summary(conn, "24h", now=now)
    totals = data["totals"]
    assert totals["decisions"] == 8 and totals["requests"] == 7
    assert totals["cost"] == pytest.approx(0.80)
    assert totals["baseline_cost"] == pytest.approx(1.80)
    assert totals["savings"] == pytest.approx(1.00)
    assert totals["savings_percent"] == pytest.approx(55.56)
    assert (totals["fallbacks"], totals["errors"]) == (1, 1)
    assert [(p["provider"], p["requests"]) for p in data["providers"]] == [
        ("anthropic", 3),
        ("ollama", 3),
        ("openrouter", 1),
    ]
    assert data["classified"] == {"total": 1, "providers": {"ollama": 1}}
    assert data["rules"] == [
        {"rule": "code-generation", "hits": 3},
        {"rule": "security", "hits": 3},
        {"rule": "architecture", "hits": 1},
        {"rule": "file-operations", "hits": 1},
    ]
    assert data["outcomes"] == {"ok": 5, "fallback": 1, "error": 1, "routed": 1}
    latency = data["latency"]
    assert latency["latency_ms"] == {"count": 6, "p50": 300.0, "p90": 2500.0, "p99": 2500.0}
    assert latency["ttft_ms"] == {"count": 3, "p50": 50.0, "p90": 50.0, "p99": 50.0}
    assert latency["sampled"] is False
    by_provider = {p["provider"]: p for p in latency["providers"]}
    assert by_provider["anthropic"]["latency_ms"]["p50"] == 1500.0
    # hourly buckets over 24 hours, every hour present, summing to the totals
    assert data["period"]["bucket"] == "hour"
    points = data["timeline"]
    assert len(points) in (24, 25)
    assert all(b["t"] - a["t"] == HOUR for a, b in itertools.pairwise(points))
    assert sum(p["savings"] for p in points) == pytest.approx(1.00)
    assert sum(p["requests"] for p in points) == 7
    assert sum(p["fallbacks"] for p in points) == 1 and sum(p["errors"] for p in points) == 1
    # recent decisions: newest first, no prompt in any form
    assert [r["rule"] for r in data["recent"][:2]] == ["code-generation", "code-generation"]
    assert len(data["recent"]) == 8
    assert not {"prompt_text", "prompt_hash", "prompt_chars"} & set(data["recent"][0])
    assert "SECRET" not in json.dumps(data)


def test_summary_daily_buckets_and_all_time(tmp_path):
    now = time.time()
    seed(tmp_path / "d.db", now)
    with closing(connect(tmp_path / "d.db")) as conn:
        month = summary(conn, "30d", now=now)
        everything = summary(conn, "all", now=now)
        week = summary(conn, "7d", now=now)
    assert month["period"]["bucket"] == "day" and len(month["timeline"]) == 31
    assert month["totals"]["requests"] == 8 and month["totals"]["savings"] == pytest.approx(2.0)
    assert sum(p["savings"] for p in month["timeline"]) == pytest.approx(2.0)
    assert {"rule": "default", "hits": 1} in month["rules"]
    assert everything["totals"]["decisions"] == 9
    assert everything["timeline"][0]["t"] == int((now - 10 * DAY) // DAY) * DAY
    assert sum(p["requests"] for p in everything["timeline"]) == 8
    assert week["totals"]["decisions"] == 8  # the 10-day-old row is out
    assert everything["latency"]["latency_ms"]["count"] == 7


def test_rule_cache_rereads_a_day_that_changed(tmp_path):
    now = time.time()
    path = tmp_path / "d.db"
    seed(path, now)
    cache = RuleHitCache()
    with closing(connect(path)) as conn:
        first = rule_hits(conn, now - 30 * DAY, now, cache)
        record(conn, _row("ollama", "default", now - 10 * DAY + 1))
        again = rule_hits(conn, now - 30 * DAY, now, cache)
        assert again == rule_hits(conn, now - 30 * DAY, now)  # same as without a cache
    assert {"rule": "default", "hits": 1} in first and {"rule": "default", "hits": 2} in again


def test_daily_timeline_and_rule_hits_match_a_row_by_row_count_at_any_boundary(tmp_path):
    # Whole days come from the daily totals (the rule counts from the per-day cache), partial
    # days from the rows: the seams must not drop or double-count a row.
    import random

    rng = random.Random(4)
    start = 1_799_000_000.0
    rows = [
        _row(
            rng.choice(["ollama", "anthropic"]),
            rng.choice(["a", "b", "c"]),
            start + rng.random() * 9 * DAY,
            outcome=rng.choice(["ok", "fallback", "error", "routed"]),
            cost=rng.random(),
        )
        for _ in range(500)
    ]
    instants = [start + rng.random() * 9 * DAY for _ in range(10)]
    instants += [(start // DAY + k) * DAY for k in (1, 4, 6)] + [rows[0].ts, rows[1].ts]
    cache = RuleHitCache()
    with closing(connect(tmp_path / "d.db")) as conn:
        record_many(conn, rows)
        for _ in range(30):
            since, until = sorted(rng.sample(instants, 2))
            since = None if rng.random() < 0.2 else since
            inside = [r for r in rows if (since is None or since <= r.ts) and r.ts <= until]
            rules: dict[str, int] = {}
            for r in inside:
                rules[r.rule] = rules.get(r.rule, 0) + 1
            expected_rules = sorted(rules.items(), key=lambda item: (-item[1], item[0]))
            for hits in (rule_hits(conn, since, until), rule_hits(conn, since, until, cache)):
                assert [(h["rule"], h["hits"]) for h in hits] == expected_rules
            bucket, points = timeline(conn, since, until)
            if since is None or until - since > 2 * DAY:
                assert bucket == "day"
            per_day = {int(p["t"] // DAY): p for p in points}
            requests = [r for r in inside if r.outcome != "routed"]
            for day in {int(r.ts // DAY) for r in requests} if bucket == "day" else ():
                today = [r for r in requests if int(r.ts // DAY) == day]
                assert per_day[day]["requests"] == len(today)
                assert per_day[day]["cost"] == pytest.approx(sum(r.cost for r in today), abs=1e-5)
                assert per_day[day]["errors"] == sum(r.outcome == "error" for r in today)
            assert sum(p["requests"] for p in points) == len(requests)


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert percentile(list(map(float, range(1, 101))), 90) == 90.0


# --- a real server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_http_api_page_static_and_errors(tmp_path):
    now = time.time()
    seed(tmp_path / "d.db", now)
    with serving(create_dashboard_app(str(tmp_path / "d.db"))) as base:
        status, headers, body = _get(f"{base}/dashboard/api/summary?since=24h")
        assert status == 200 and headers["cache-control"] == "no-store"
        data = json.loads(body)
        assert data["totals"]["requests"] == 7 and data["totals"]["savings"] == pytest.approx(1.0)
        status, _, body = _get(f"{base}/dashboard/api/summary?since=yesterdayish")
        assert status == 400 and "invalid period" in json.loads(body)["error"]
        status, headers, body = _get(f"{base}/dashboard")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in headers["content-security-policy"]
        assert b'id="chart-providers"' in body
        for name in ("dashboard.js", "dashboard.css"):
            assert _get(f"{base}/dashboard/static/{name}")[0] == 200
        assert _get(f"{base}/dashboard/static/../app.py")[0] == 404
        assert _get(f"{base}/")[0] == 200  # redirected to the page


def test_token_guards_the_page_and_the_api(tmp_path):
    seed(tmp_path / "d.db", time.time())
    with serving(create_dashboard_app(str(tmp_path / "d.db"), token="s3cret")) as base:
        assert _get(f"{base}/dashboard")[0] == 401
        assert _get(f"{base}/dashboard/api/summary")[0] == 401
        assert _get(f"{base}/dashboard?token=s3cret")[0] == 200
        assert _get(f"{base}/dashboard/api/summary", {"x-api-key": "s3cret"})[0] == 200
        assert _get(f"{base}/dashboard/api/summary", {"authorization": "Bearer s3cret"})[0] == 200
        assert _get(f"{base}/dashboard/api/summary", {"x-api-key": "wrong"})[0] == 401
        assert _get(f"{base}/dashboard/static/dashboard.js")[0] == 200  # no data in it


def test_a_missing_log_reads_as_empty_and_is_not_created(tmp_path):
    missing = tmp_path / "nowhere" / "decisions.db"
    with serving(create_dashboard_app(str(missing))) as base:
        status, _, body = _get(f"{base}/dashboard/api/summary?since=all")
    assert status == 200 and json.loads(body)["totals"]["decisions"] == 0
    assert not missing.exists()


def test_routes_mount_into_another_starlette_app(tmp_path):
    from starlette.applications import Starlette

    seed(tmp_path / "d.db", time.time())
    app = Starlette(routes=dashboard_routes(str(tmp_path / "d.db")))
    with serving(app) as base:
        status, _, body = _get(f"{base}/dashboard/api/summary?since=7d")
    assert status == 200 and json.loads(body)["totals"]["decisions"] == 8


def test_cli_refuses_a_public_address_without_a_token():
    result = CliRunner().invoke(cli, ["dashboard", "--host", "0.0.0.0", "--no-open"])
    assert result.exit_code != 0 and "HYBRID_ROUTER_TOKEN" in result.output


# --- (d) no external resources ---------------------------------------------------------------


def test_the_page_references_no_external_url():
    for name in sorted(os.listdir(STATIC_DIR)):
        text = Path(STATIC_DIR, name).read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), name
        assert "@import" not in text and "url(" not in text, name
    html = Path(STATIC_DIR, "index.html").read_text(encoding="utf-8")
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith(("/dashboard/static/", "data:")), ref


# --- (b, c, e) headless Chromium -------------------------------------------------------------


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "headless Chromium not found (install Debian's package: apt-get install -y chromium)"
    )


def run_chromium(tmp_path: Path, *args: str, budget_ms: int = 5000) -> str:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    profile.mkdir()
    command = [
        chromium_binary(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def elements(dom: str, tag: str, **wanted: str) -> list[dict[str, str]]:
    """The attributes of every <tag> in the DOM dump that has the attributes `wanted` names
    (data_provider="*" means: has data-provider at all)."""
    found = []
    for attrs in re.findall(rf"<{tag}\b([^>]*)>", dom):
        parsed = dict(re.findall(r'([\w:-]+)="([^"]*)"', attrs))
        if all(
            name.replace("_", "-") in parsed and value in ("*", parsed[name.replace("_", "-")])
            for name, value in wanted.items()
        ):
            found.append(parsed)
    return found


def test_page_renders_charts_from_real_rows(tmp_path):
    now = time.time()
    seed(tmp_path / "d.db", now)
    with serving(create_dashboard_app(str(tmp_path / "d.db"))) as base:
        dom = run_chromium(
            tmp_path, "--dump-dom", f"{base}/dashboard?since=24h&refresh=2", budget_ms=7000
        )
    assert 'data-state="ready"' in dom
    # auto-refresh: the summary was fetched again without reloading the page
    loads = int(re.search(r'data-loads="(\d+)"', dom).group(1))
    assert loads >= 2
    providers = {
        r["data-provider"]: r["data-value"] for r in elements(dom, "rect", data_provider="*")
    }
    assert providers == {"ollama": "3", "anthropic": "3", "openrouter": "1"}
    rules = {r["data-rule"]: r["data-value"] for r in elements(dom, "rect", data_rule="*")}
    assert rules == {
        "code-generation": "3",
        "security": "3",
        "architecture": "1",
        "file-operations": "1",
    }
    savings = [float(r["data-value"]) for r in elements(dom, "rect", data_cost="*")]
    assert len(savings) in (24, 25) and sum(savings) == pytest.approx(1.0)
    assert re.search(r'id="chart-savings"[^>]*data-bucket="hour"', dom)
    assert [r["data-value"] for r in elements(dom, "rect", data_series="fallbacks")] == ["1"]
    assert [r["data-value"] for r in elements(dom, "rect", data_series="errors")] == ["1"]
    latency = {
        r["data-percentile"]: r["data-value"]
        for r in elements(dom, "rect", data_metric="latency_ms")
    }
    assert latency == {"p50": "300", "p90": "2500", "p99": "2500"}
    kpi = re.search(
        r'id="kpi-savings" data-value="([^"]+)">.*?class="value">([^<]+)<', dom, re.DOTALL
    )
    assert float(kpi.group(1)) == pytest.approx(1.0) and kpi.group(2) == "$1.00"
    assert re.search(r'id="kpi-requests" data-value="7"', dom)
    assert len(re.findall(r'<tr data-id="', dom)) == 8
    assert re.search(r'<section id="empty"[^>]*hidden', dom)
    assert "SECRET" not in dom


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshot_of_the_dashboard(tmp_path):
    now = time.time()
    seed(tmp_path / "d.db", now)
    shot = tmp_path / "dashboard.png"
    with serving(create_dashboard_app(str(tmp_path / "d.db"))) as base:
        run_chromium(
            tmp_path,
            f"--screenshot={shot}",
            "--window-size=1280,1500",
            f"{base}/dashboard?since=24h",
        )
    assert shot.stat().st_size > 20_000  # charts and text, not a blank page
    assert _png_size(shot) == (1280, 1500)


def test_empty_log_renders_the_empty_state(tmp_path):
    with closing(connect(tmp_path / "empty.db")):
        pass
    with serving(create_dashboard_app(str(tmp_path / "empty.db"))) as base:
        dom = run_chromium(tmp_path, "--dump-dom", f"{base}/dashboard?since=all")
    assert 'data-state="empty"' in dom
    assert re.search(r'<section id="empty"(?![^>]*hidden)[^>]*>', dom)
    assert "No decisions logged in this period yet" in dom
    for chart in ("savings", "providers", "rules", "reliability", "latency"):
        assert re.search(rf'<svg id="chart-{chart}"[^>]*data-empty="true"', dom), chart
    assert "<rect" not in dom


def test_the_proxy_serves_the_dashboard(router_home):
    """`hybrid-router proxy` mounts the same dashboard at /dashboard, next to the Messages API."""
    import httpx2
    from proxy_server import running_proxy

    with running_proxy({"HYBRID_ROUTER_HOME": str(router_home)}) as proxy:
        page = httpx2.get(f"{proxy.url}/dashboard")
        summary = httpx2.get(f"{proxy.url}/dashboard/api/summary", params={"since": "24h"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert summary.status_code == 200 and summary.json()["totals"]["decisions"] == 0
