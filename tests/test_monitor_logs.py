"""`hybrid-router monitor`, `hybrid-router logs` and `hybrid-router stats --format csv|json`,
over a log seeded with record_many (every test has its own home: conftest.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from hybrid_router.cli import cli
from hybrid_router.cli import monitor as mon
from hybrid_router.core.outcomes import OUTCOMES, SOURCES
from hybrid_router.log.database import connect
from hybrid_router.log.export import PROVIDER_COLUMNS
from hybrid_router.log.rows import COLUMNS, DecisionRow, record, record_many

SECRET_PROMPT = "please refactor the payroll module, password hunter2"
HOUR = 3600.0
SCRIPT = Path(sys.executable).parent / "hybrid-router"


def _row(provider: str, model: str, *, ago: float, **fields: Any) -> DecisionRow:
    values: dict[str, Any] = {
        "source": "proxy",
        "rule": "code-generation",
        "outcome": "ok",
        "session_id": "s-1",
    }
    values.update(fields)
    return DecisionRow(provider=provider, model=model, ts=time.time() - ago, **values)


def _seed_rows() -> list[DecisionRow]:
    return [
        # two days ago: outside --since 24h
        _row(
            "ollama",
            "qwen2.5-coder:7b",
            ago=48 * HOUR,
            rule="file-operations",
            source="mcp",
            session_id="s-old",
            input_tokens=500,
            output_tokens=50,
            baseline_cost=0.5,
        ),
        _row(
            "ollama",
            "qwen2.5-coder:7b",
            ago=50 * 60,
            rule="file-operations",
            input_tokens=1000,
            output_tokens=100,
            baseline_cost=0.3,
            latency_ms=420.0,
        ),
        _row(
            "ollama",
            "deepseek-coder:33b",
            ago=40 * 60,
            input_tokens=2000,
            output_tokens=200,
            baseline_cost=0.2,
            prompt_text=SECRET_PROMPT,
            prompt_chars=len(SECRET_PROMPT),
        ),
        _row(
            "openrouter",
            "qwen/qwen3-coder:free",
            ago=30 * 60,
            outcome="fallback",
            fallback_from="ollama",
            baseline_cost=0.1,
            session_id="s-2",
        ),
        _row(
            "anthropic",
            "claude-sonnet-5",
            ago=20 * 60,
            rule="security",
            cost=0.4,
            baseline_cost=0.4,
            input_tokens=4000,
            output_tokens=400,
        ),
        _row(
            "anthropic",
            "claude-sonnet-5",
            ago=10 * 60,
            rule="critical",
            outcome="error",
            error_class="overloaded",
            session_id="s-2",
        ),
        _row(
            "ollama",
            "qwen2.5-coder:7b",
            ago=5 * 60,
            rule="file-operations",
            outcome="routed",
            source="hook",
        ),
    ]


@pytest.fixture
def seeded(router_home: Path) -> Iterator[Path]:
    db = router_home / "decisions.db"
    conn = connect(db)
    try:
        record_many(conn, _seed_rows())
    finally:
        conn.close()
    yield db


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --- monitor -----------------------------------------------------------------------------------


def test_monitor_once_frame(seeded: Path) -> None:
    result = run("monitor", "--once")
    out = result.output
    assert result.exit_code == 0, out
    assert "\x1b[" not in out  # one frame: no screen clearing
    assert "hybrid-router monitor | all time |" in out
    # 7 rows; the hook row only classified a prompt: 6 requests, of which 3 ran on ollama
    assert "Requests 6   Decisions 7   Classified only 1" in out
    assert "Local 50.0% (3 of 6 requests)" in out
    assert "Cost $0.4000   Without router $1.5000   Saved $1.1000 (73.3%)" in out
    assert "Fallbacks 1   Errors 1" in out
    lines = out.splitlines()
    providers = {
        line.split()[0]: line.split()
        for line in lines
        if line.startswith("  ") and line.split()[0] in ("ollama", "openrouter", "anthropic")
    }
    assert providers["ollama"][1:3] == ["3", "50.0%"]
    assert providers["anthropic"][1:3] == ["2", "33.3%"]
    assert providers["openrouter"][1:3] == ["1", "16.7%"]
    recent = out.split("Recent decisions", 1)[1]
    assert recent.index("critical") < recent.index("security")  # newest first
    assert "ollama/qwen2.5-coder:7b" in recent
    assert SECRET_PROMPT not in out


def test_monitor_since_and_source(seeded: Path) -> None:
    out = run("monitor", "--once", "--since", "24h").output
    assert "Requests 5   Decisions 6" in out
    assert "Without router $1.0000" in out
    out = run("monitor", "--once", "--source", "hook", "--recent", "3").output
    assert "source hook" in out
    assert "Requests 0   Decisions 1   Classified only 1" in out
    assert "No requests in this period yet." in out
    recent = out.split("Recent decisions", 1)[1]
    assert "hook" in recent and "proxy" not in recent


def test_monitor_empty_log_and_bad_period() -> None:
    result = run("monitor", "--once")
    assert result.exit_code == 0
    assert "Requests 0   Decisions 0" in result.output
    assert "No recent decisions." in result.output
    bad = CliRunner().invoke(cli, ["monitor", "--once", "--since", "someday"])
    assert bad.exit_code == 2 and "invalid period" in bad.output


def test_monitor_live_redraws_with_ansi(seeded: Path) -> None:
    result = run("monitor", "--interval", "0.1", "--frames", "2")
    out = result.output
    assert result.exit_code == 0
    assert out.count(mon.CLEAR) == 2
    assert out.startswith(mon.HIDE_CURSOR) and out.endswith(mon.SHOW_CURSOR)
    assert "refresh 0.1s, Ctrl-C to quit" in out


def test_monitor_live_stops_cleanly_on_ctrl_c() -> None:
    written: list[str] = []
    calls = 0

    def draw() -> str:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return f"frame {calls}"

    drawn = mon.run_live(draw, written.append, interval=5, sleep=lambda _s: None)
    assert drawn == 2
    assert written[-1] == mon.SHOW_CURSOR
    assert "".join(written).count(mon.CLEAR) == 2


# --- logs --------------------------------------------------------------------------------------


def _json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_logs_default_newest_last_and_limit(seeded: Path) -> None:
    result = run("logs")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert len(lines) == 7
    assert "#1 " in lines[0] and "#7 " in lines[-1]  # oldest first, as tail
    assert "ollama/qwen2.5-coder:7b" in lines[-1] and "routed" in lines[-1]
    assert "fallback from ollama" in lines[3]
    assert "error overloaded" in lines[5]
    assert "420 ms" in lines[1]
    limited = run("logs", "--limit", "2").stdout.splitlines()
    assert len(limited) == 2 and "#6 " in limited[0] and "#7 " in limited[1]
    assert SECRET_PROMPT not in result.output


def test_logs_filters(seeded: Path) -> None:
    def ids(*args: str) -> list[int]:
        return [row["id"] for row in _json_lines(run("logs", "--json", *args))]

    assert ids("--provider", "anthropic") == [5, 6]
    assert ids("--provider", "anthropic", "--provider", "openrouter") == [4, 5, 6]
    assert ids("--rule", "file-operations") == [1, 2, 7]
    assert ids("--outcome", "error") == [6]
    assert ids("--outcome", "ok", "--rule", "code-generation") == [3]
    assert ids("--session", "s-2") == [4, 6]
    assert ids("--source", "mcp") == [1]
    assert ids("--source", "hook", "--source", "mcp") == [1, 7]
    assert ids("--since", "24h") == [2, 3, 4, 5, 6, 7]
    assert ids("--since", "24h", "--provider", "ollama", "--limit", "1") == [7]
    assert ids("--provider", "nobody") == []
    empty = run("logs", "--provider", "nobody")
    assert empty.stdout == "" and "No matching decisions." in empty.stderr
    bad = CliRunner().invoke(cli, ["logs", "--outcome", "splendid"])
    assert bad.exit_code == 2


def test_logs_outcome_takes_rejected_and_cancelled(seeded: Path) -> None:
    """Both were refused once, by a stale copy of the outcome list in the CLI."""
    conn = connect(seeded)
    try:
        record_many(
            conn,
            [
                _row("none", "none", ago=3 * 60, rule="none", outcome="rejected", session_id=None),
                _row("ollama", "qwen2.5-coder:7b", ago=2 * 60, outcome="cancelled"),
                _row("none", "none", ago=60, rule="none", outcome="rejected", session_id=None),
            ],
        )
    finally:
        conn.close()

    def rows(*args: str) -> list[dict[str, Any]]:
        return _json_lines(run("logs", "--json", *args))

    assert [(r["id"], r["outcome"]) for r in rows("--outcome", "rejected")] == [
        (8, "rejected"),
        (10, "rejected"),
    ]
    assert [(r["id"], r["outcome"]) for r in rows("--outcome", "cancelled")] == [(9, "cancelled")]
    both = rows("--outcome", "cancelled", "--outcome", "rejected", "--outcome", "error")
    assert [r["id"] for r in both] == [6, 8, 9, 10]
    text = run("logs", "--outcome", "rejected")
    assert text.exit_code == 0 and len(text.stdout.splitlines()) == 2


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_logs_accepts_every_outcome_a_row_can_record(seeded: Path, outcome: str) -> None:
    result = run("logs", "--json", "--outcome", outcome)
    assert result.exit_code == 0, result.output
    assert {row["outcome"] for row in _json_lines(result)} <= {outcome}


@pytest.mark.parametrize("source", SOURCES)
def test_logs_accepts_every_source(seeded: Path, source: str) -> None:
    result = run("logs", "--json", "--source", source)
    assert result.exit_code == 0, result.output
    assert {row["source"] for row in _json_lines(result)} <= {source}


def test_logs_json_lines(seeded: Path) -> None:
    rows = _json_lines(run("logs", "--json"))
    assert len(rows) == 7
    first = rows[0]
    expected = {"id", "time", *(c for c in COLUMNS if c != "prompt_text")}
    assert set(first) == expected
    assert first["time"].endswith("+00:00")
    assert rows[3]["fallback_from"] == "ollama"
    assert all("prompt_text" not in row for row in rows)


def test_logs_prompts_only_with_show_prompts(seeded: Path) -> None:
    assert SECRET_PROMPT not in run("logs").output
    assert SECRET_PROMPT not in run("logs", "--json").output
    rows = _json_lines(run("logs", "--json", "--show-prompts"))
    with_text = [row for row in rows if "prompt_text" in row]
    assert [row["id"] for row in with_text] == [3]  # only the row that stored it
    assert with_text[0]["prompt_text"] == SECRET_PROMPT
    text = run("logs", "--show-prompts").stdout.splitlines()
    index = next(i for i, line in enumerate(text) if "#3 " in line)
    assert text[index + 1] == f"    prompt: {SECRET_PROMPT}"
    assert sum("prompt:" in line for line in text) == 1


def test_logs_follow_picks_up_new_rows(seeded: Path) -> None:
    def writer() -> None:
        time.sleep(0.4)
        conn = connect(seeded)
        try:
            record(conn, _row("ollama", "qwen2.5-coder:7b", ago=0, rule="follow-me"))
            record(conn, _row("anthropic", "claude-sonnet-5", ago=0, rule="follow-me"))
            time.sleep(0.2)
            record(conn, _row("ollama", "llama3:70b", ago=0, rule="follow-me-too"))
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = run(
            "logs",
            "--json",
            "--follow",
            "--provider",
            "ollama",
            "--limit",
            "1",
            "--poll-interval",
            "0.05",
            "--follow-seconds",
            "1.5",
        )
    finally:
        thread.join()
    rows = _json_lines(result)
    assert [row["id"] for row in rows] == [7, 8, 10]  # the last old row, then the new ones
    assert [row["rule"] for row in rows[1:]] == ["follow-me", "follow-me-too"]


def test_logs_follow_subprocess_ctrl_c(seeded: Path) -> None:
    """The installed console script follows until SIGINT, then exits 0 without a traceback."""
    process = subprocess.Popen(
        [str(SCRIPT), "logs", "-f", "--limit", "1", "--poll-interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        assert "#7 " in process.stdout.readline()  # the newest old row: it is following now
        conn = connect(seeded)
        try:
            record(conn, _row("ollama", "qwen2.5-coder:7b", ago=0, rule="live-row"))
        finally:
            conn.close()
        line = process.stdout.readline()  # blocks until the follower prints the row
        assert "#8 " in line and "live-row" in line
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err and out == ""


# --- stats --format ----------------------------------------------------------------------------


def test_stats_format_csv_matches_json(seeded: Path) -> None:
    result = run("stats", "--format", "csv")
    assert result.exit_code == 0
    reader = csv.DictReader(io.StringIO(result.stdout))
    rows = list(reader)
    data = json.loads(run("stats", "--json").stdout)
    assert tuple(reader.fieldnames or ()) == PROVIDER_COLUMNS
    assert list(PROVIDER_COLUMNS) == list(data["providers"][0])
    assert [row["provider"] for row in rows] == [p["provider"] for p in data["providers"]]
    for row, entry in zip(rows, data["providers"], strict=True):
        assert int(row["requests"]) == entry["requests"]
        assert int(row["input_tokens"]) == entry["input_tokens"]
        for name in ("share", "cost", "baseline_cost", "savings"):
            assert float(row[name]) == pytest.approx(entry[name])


def test_stats_format_json_is_json_and_options(seeded: Path) -> None:
    as_json = run("stats", "--json", "--since", "24h").stdout
    as_format = run("stats", "--format", "json", "--since", "24h").stdout
    drop = ("until",)  # the clock moves between the two runs
    assert {k: v for k, v in json.loads(as_json).items() if k not in drop} == {
        k: v for k, v in json.loads(as_format).items() if k not in drop
    }
    assert run("stats", "--json", "--format", "json").exit_code == 0
    assert "Routing stats" in run("stats", "--format", "text").stdout
    csv_rows = list(
        csv.DictReader(io.StringIO(run("stats", "--format", "csv", "--source", "hook").stdout))
    )
    assert csv_rows == []  # classified only: no provider rows
    clash = CliRunner().invoke(cli, ["stats", "--json", "--format", "csv"])
    assert clash.exit_code == 2 and "disagree" in clash.output
    recent = CliRunner().invoke(cli, ["stats", "--format", "csv", "--recent", "3"])
    assert recent.exit_code == 2


def test_stats_csv_empty_log_is_header_only() -> None:
    result = run("stats", "--format", "csv")
    assert result.stdout == ",".join(PROVIDER_COLUMNS) + "\n"
