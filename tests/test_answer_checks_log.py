"""What the log says about checked answers: `stats` (text and JSON), the dashboard (its summary
and the page) and `doctor` (each local model's failure rate), over rows as the proxy writes
them (failed_provider, failed_model, answer_checked; the check as the error class)."""

from __future__ import annotations

import json
import re
import time
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from proxy_server import config_data, free_port
from test_dashboard import elements, run_chromium, serving

from hybrid_router.cli import cli
from hybrid_router.cli.doctor import checked_answers_report
from hybrid_router.config.loading import parse_config
from hybrid_router.dashboard import create_dashboard_app, summary
from hybrid_router.log.database import connect
from hybrid_router.log.report import stats_text
from hybrid_router.log.rows import DecisionRow, record_many
from hybrid_router.log.stats import compute_stats, model_checks

FAST = "qwen2.5-coder:7b"
CODER = "deepseek-coder:33b"
FREE = "qwen/qwen3-coder:free"


def passed(model: str, ts: float, provider: str = "ollama") -> DecisionRow:
    return DecisionRow(
        source="proxy",
        rule="code-generation",
        provider=provider,
        model=model,
        outcome="ok",
        ts=ts,
        answer_checked=1,
    )


def failed(model: str, check: str, ts: float, *, answered_by: str = "openrouter") -> DecisionRow:
    return DecisionRow(
        source="proxy",
        rule="code-generation",
        provider=answered_by,
        model=FREE if answered_by == "openrouter" else "claude-sonnet-5",
        outcome="fallback",
        ts=ts,
        error_class=check,
        fallback_from="ollama",
        failed_provider="ollama",
        failed_model=model,
        answer_checked=1 if answered_by == "openrouter" else None,
    )


def seed(path: Path, now: float) -> None:
    """CODER: 8 passed, 2 failed (invalid-tool-input, unknown-tool); FAST: 9 passed and 6
    failed (empty x4, tool-loop x2) in the last day; an old failure of FAST 40 days ago; and
    rows that were never checked (a hook, an unchecked answer)."""
    rows = [passed(CODER, now - 60 * i) for i in range(8)]
    rows += [failed(CODER, "invalid-tool-input", now - 30), failed(CODER, "unknown-tool", now - 40)]
    rows += [passed(FAST, now - 70 * i) for i in range(9)]
    rows += [failed(FAST, "empty", now - 50 * i, answered_by="anthropic") for i in range(4)]
    rows += [failed(FAST, "tool-loop", now - 55 * i) for i in range(2)]
    rows.append(failed(FAST, "empty", now - 40 * 86400))
    rows.append(DecisionRow(source="hook", rule="r", provider="ollama", model=FAST, ts=now))
    rows.append(
        DecisionRow(source="proxy", rule="r", provider="ollama", model=FAST, outcome="ok", ts=now)
    )
    with closing(connect(path)) as conn:
        record_many(conn, rows)


def test_stats_count_checked_failures_per_model(router_home: Path) -> None:
    now = time.time()
    seed(router_home / "decisions.db", now)
    with closing(connect(router_home / "decisions.db")) as conn:
        day = compute_stats(conn, since=now - 86400, until=now + 1)
        everything = compute_stats(conn, until=now + 1)
        rates = {(m.provider, m.model): m for m in model_checks(conn, now - 86400, now + 1)}
    assert [e.to_dict() for e in day.checked_failures] == [
        {"provider": "ollama", "model": FAST, "failed": 6, "checks": {"empty": 4, "tool-loop": 2}},
        {
            "provider": "ollama",
            "model": CODER,
            "failed": 2,
            "checks": {"invalid-tool-input": 1, "unknown-tool": 1},
        },
    ]
    assert everything.checked_failures[0].checks == {"empty": 5, "tool-loop": 2}
    # With the answers that passed: the failure rate per model (what doctor reports).
    assert (rates["ollama", FAST].checked, rates["ollama", FAST].failed) == (15, 6)
    assert rates["ollama", CODER].failure_rate == pytest.approx(0.2)
    assert rates["openrouter", FREE].failed == 0  # its checked answers passed
    text = stats_text(day)
    assert "Answers that failed a check (the next link answered instead):" in text
    assert re.search(rf"ollama/{re.escape(FAST)}\s+6\s+empty 4, tool-loop 2", text)
    assert re.search(rf"ollama/{re.escape(CODER)}\s+2\s+invalid-tool-input 1, unknown-tool 1", text)


def test_stats_json_from_the_cli(router_home: Path) -> None:
    seed(router_home / "decisions.db", time.time())
    result = CliRunner().invoke(cli, ["stats", "--since", "24h", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(e["model"], e["failed"]) for e in data["checked_failures"]] == [(FAST, 6), (CODER, 2)]
    plain = CliRunner().invoke(cli, ["stats", "--since", "24h"])
    assert "empty 4, tool-loop 2" in plain.output


def test_the_dashboard_shows_checked_failures_per_model(tmp_path: Path) -> None:
    now = time.time()
    seed(tmp_path / "d.db", now)
    with closing(connect(tmp_path / "d.db")) as conn:
        data = summary(conn, "24h", now=now + 1)
    assert [(e["model"], e["failed"]) for e in data["checked_failures"]] == [(FAST, 6), (CODER, 2)]
    with serving(create_dashboard_app(str(tmp_path / "d.db"))) as base:
        dom = run_chromium(tmp_path, "--dump-dom", f"{base}/dashboard?since=24h&refresh=0")
    bars = {r["data-model"]: r["data-value"] for r in elements(dom, "rect", data_model="*")}
    assert bars == {f"ollama/{FAST}": "6", f"ollama/{CODER}": "2"}
    chips = {li["data-check"]: li["data-value"] for li in elements(dom, "li", data_check="*")}
    assert chips == {"empty": "4", "tool-loop": "2", "invalid-tool-input": "1", "unknown-tool": "1"}
    assert re.search(r'id="chart-checks"[^>]*data-failed="8"', dom)


def test_doctor_reports_each_local_models_failure_rate(
    router_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    seed(router_home / "decisions.db", now)
    data = config_data()
    (router_home / "router-config.json").write_text(json.dumps(data))
    lines, report = checked_answers_report(parse_config(data, "test"), now=now + 1)
    text = "\n".join(lines)
    assert f"ollama/{FAST}: 6 of 15 failed (40.0%): empty 4, tool-loop 2" in text
    assert f"ollama/{CODER}: 2 of 10 failed (20.0%): invalid-tool-input 1, unknown-tool 1" in text
    assert "ollama/llama3:70b: no checked answers logged" in text  # a local tier never checked
    assert f"openrouter/{FREE}: 0 of 4 failed (0.0%)" in text
    assert f"warning: ollama/{FAST} failed 40% of its checked answers" in text
    assert f"warning: ollama/{CODER} failed 20%" in text
    models = {m["model"]: m for m in report["models"]}
    assert (models[FAST]["checked"], models[FAST]["failure_rate"]) == (15, 0.4)
    # Through the command (every backend down: the probe fails fast, the report still comes).
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OLLAMA_HOST", dead)
    monkeypatch.setenv("HYBRID_ROUTER_ANTHROPIC_URL", dead)
    result = CliRunner().invoke(cli, ["doctor", "--no-tools"])
    assert f"ollama/{FAST}: 6 of 15 failed (40.0%)" in result.output, result.output
    as_json = json.loads(CliRunner().invoke(cli, ["doctor", "--no-tools", "--json"]).output)
    assert as_json["checked_answers"]["days"] == 30
    assert {m["model"] for m in as_json["checked_answers"]["models"]} >= {FAST, CODER}


def test_doctor_without_a_log_says_so(router_home: Path) -> None:
    lines, report = checked_answers_report(parse_config(config_data(), "test"))
    assert f"  ollama/{FAST}: no checked answers logged" in lines
    assert not (router_home / "decisions.db").exists()  # doctor does not create the log
    assert all(m["checked"] == 0 for m in report["models"])
