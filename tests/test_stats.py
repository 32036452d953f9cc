from datetime import datetime

import pytest

from hybrid_router.log.database import connect
from hybrid_router.log.report import stats_text
from hybrid_router.log.rows import DecisionRow, record_many
from hybrid_router.log.stats import PeriodError, compute_stats, parse_since

NOW = 1_800_000_000.0
HOUR = 3600.0


def row(
    provider,
    *,
    ts,
    cost=0.0,
    baseline=0.0,
    outcome="ok",
    source="proxy",
    fallback_from=None,
    tokens=(0, 0),
):
    return DecisionRow(
        source=source,
        rule="r",
        provider=provider,
        model="m",
        outcome=outcome,
        ts=ts,
        cost=cost,
        baseline_cost=baseline,
        fallback_from=fallback_from,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


@pytest.fixture
def seeded(router_home):
    conn = connect(router_home / "decisions.db")
    record_many(
        conn,
        [
            row("ollama", ts=NOW - 1 * HOUR, baseline=0.30, tokens=(1000, 100)),
            row("ollama", ts=NOW - 2 * HOUR, baseline=0.20, tokens=(2000, 200)),
            row("ollama", ts=NOW - 30 * HOUR, baseline=0.50, tokens=(500, 50), source="mcp"),
            row(
                "openrouter",
                ts=NOW - 3 * HOUR,
                baseline=0.10,
                outcome="fallback",
                fallback_from="ollama",
            ),
            row("anthropic", ts=NOW - 4 * HOUR, cost=0.40, baseline=0.40, tokens=(4000, 400)),
            row("anthropic", ts=NOW - 5 * HOUR, outcome="error"),
            row("ollama", ts=NOW - 6 * HOUR, outcome="routed", source="hook"),
        ],
    )
    return conn


def test_all_time_totals_savings_and_shares(seeded):
    stats = compute_stats(seeded, until=NOW)
    assert stats.decisions == 7
    # the hook's decision-only row is a classified prompt, not a request
    assert stats.requests == 6 and stats.classified == {"ollama": 1}
    assert stats.cost == pytest.approx(0.40)
    assert stats.baseline_cost == pytest.approx(1.50)
    assert stats.savings == pytest.approx(1.10)
    assert stats.savings_percent == pytest.approx(100 * 1.10 / 1.50)
    assert (stats.fallbacks, stats.errors) == (1, 1)
    by_name = {p.provider: p for p in stats.providers}
    assert [p.provider for p in stats.providers] == ["ollama", "anthropic", "openrouter"]
    assert by_name["ollama"].requests == 3
    assert by_name["ollama"].share == pytest.approx(3 / 6)
    assert by_name["ollama"].input_tokens == 3500
    assert by_name["ollama"].savings == pytest.approx(1.0)
    assert by_name["anthropic"].cost == pytest.approx(0.40)
    assert stats.outcomes == {"ok": 4, "fallback": 1, "error": 1, "routed": 1}


def test_period_and_source_filters(seeded):
    day = compute_stats(seeded, since=NOW - 24 * HOUR, until=NOW)
    assert (day.decisions, day.requests) == (6, 5)
    assert day.baseline_cost == pytest.approx(1.00)
    mcp = compute_stats(seeded, until=NOW, source="mcp")
    assert mcp.requests == 1 and mcp.providers[0].provider == "ollama"


def test_empty_log_reads_as_zero_not_an_error(router_home):
    conn = connect(router_home / "decisions.db")
    stats = compute_stats(conn)
    assert stats.requests == 0 and stats.savings_percent == 0.0
    assert "No decisions logged" in stats_text(stats)


def test_text_report_shows_the_numbers_a_user_looks_for(seeded):
    text = stats_text(compute_stats(seeded, until=NOW))
    assert "7 decisions" in text
    assert "Prompts classified without calling a model: 1 (ollama 1)" in text
    assert "Cost without router  $1.5000" in text
    assert "Saved                $1.1000 (73.3%)" in text
    assert "Fallbacks 1   Errors 1" in text


@pytest.mark.parametrize(
    ("text", "seconds_back"),
    [
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        ("90s", 90),
        ("1.5h", 5400),
    ],
)
def test_relative_periods(text, seconds_back):
    assert parse_since(text, now=NOW) == NOW - seconds_back


def test_absolute_and_open_periods():
    assert parse_since("all") is None and parse_since(None) is None
    assert (
        parse_since("2026-11-01T00:00:00+00:00")
        == datetime.fromisoformat("2026-11-01T00:00:00+00:00").timestamp()
    )
    today = parse_since("today", now=NOW)
    assert NOW - 86400 < today <= NOW
    with pytest.raises(PeriodError, match="invalid period 'yesterday-ish'"):
        parse_since("yesterday-ish")


def test_period_sums_match_a_row_by_row_count_at_any_boundary(router_home):
    # Whole days come from the daily totals and partial days from the rows: the seams must not
    # drop or double-count a row, wherever the period starts and ends.
    import random

    rng = random.Random(3)
    conn = connect(router_home / "decisions.db")
    start = 1_799_000_000.0
    rows = [
        row(
            rng.choice(["ollama", "anthropic", "openrouter"]),
            ts=start + rng.random() * 9 * 86400,
            cost=rng.random(),
            baseline=rng.random() * 2,
            tokens=(rng.randint(0, 99), 1),
            outcome=rng.choice(["ok", "ok", "fallback", "error"]),
            source=rng.choice(["proxy", "hook"]),
        )
        for _ in range(600)
    ]
    record_many(conn, rows)
    # boundaries: arbitrary instants, exact midnights (UTC), and a row's own timestamp
    instants = [start + rng.random() * 9 * 86400 for _ in range(12)]
    instants += [(start // 86400 + k) * 86400 for k in (1, 3, 5)] + [rows[0].ts, rows[1].ts]
    for _ in range(40):
        since, until = sorted(rng.sample(instants, 2))
        for source in (None, "hook"):
            expected = [r for r in rows if since <= r.ts <= until and source in (None, r.source)]
            stats = compute_stats(conn, since=since, until=until, source=source)
            assert stats.requests == len(expected)
            assert stats.cost == pytest.approx(sum(r.cost for r in expected))
            assert stats.baseline_cost == pytest.approx(sum(r.baseline_cost for r in expected))
            assert stats.errors == sum(r.outcome == "error" for r in expected)
            assert sum(p.input_tokens for p in stats.providers) == sum(
                r.input_tokens for r in expected
            )
    everything = compute_stats(conn, until=start + 10 * 86400)
    assert everything.requests == 600
