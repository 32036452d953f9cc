import multiprocessing
import sqlite3

import pytest

from hybrid_router.config.compile import routing_table
from hybrid_router.config.loading import load_config
from hybrid_router.config.pricing import baseline_cost, request_cost
from hybrid_router.core.outcomes import OUTCOME_OK
from hybrid_router.core.routing import decide
from hybrid_router.core.signals import signals_from_prompt
from hybrid_router.core.usage import Usage
from hybrid_router.log.database import connect
from hybrid_router.log.migrations import MIGRATIONS, migrate
from hybrid_router.log.queries import recent
from hybrid_router.log.rows import COLUMNS, DecisionRow, decision_row, record


def test_migrations_on_an_empty_database_are_recorded_and_idempotent():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    applied = migrate(conn)
    assert applied == [
        "m001_create_decisions",
        "m002_index_decisions",
        "m003_daily_totals",
        "m004_pins_and_sessions",
        "m005_index_error_classes",
        "m006_checked_answers",
    ]
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == applied
    assert migrate(conn) == []
    columns = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
    assert set(COLUMNS) <= columns
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(decisions)")}
    assert {"idx_decisions_ts", "idx_decisions_session"} <= indexes


def test_connect_creates_a_wal_database_in_the_home(router_home):
    conn = connect(router_home / "decisions.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    row_id = record(conn, DecisionRow(source="cli", rule="r", provider="ollama", model="m"))
    assert row_id == 1
    conn.close()
    again = connect(router_home / "decisions.db")
    assert again.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


def test_prompt_text_is_not_stored_unless_opted_in(router_home):
    table = routing_table(load_config().config)
    prompt = "refactor the billing module"
    signals = signals_from_prompt(prompt)
    row = decision_row(decide(signals, table), signals, source="hook", store_prompts=False)
    assert row.prompt_text is None
    assert row.prompt_chars == len(prompt)
    assert len(row.prompt_hash) == 64 and prompt not in row.prompt_hash
    opted_in = decision_row(decide(signals, table), signals, source="hook", store_prompts=True)
    assert opted_in.prompt_text == prompt
    conn = connect(router_home / "decisions.db")
    record(conn, row)
    dump = "\n".join(conn.iterdump())
    assert prompt not in dump


def test_decision_row_carries_the_decision_the_usage_and_the_prices():
    config = load_config().config
    signals = signals_from_prompt("write tests")
    decision = decide(signals, routing_table(config))
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    row = decision_row(
        decision,
        signals,
        source="cli",
        store_prompts=False,
        outcome=OUTCOME_OK,
        usage=usage,
        cost=request_cost(decision.provider, decision.model, usage, config),
        baseline_cost=baseline_cost(None, usage, config),
    )
    assert row.provider == "ollama" and row.cost == 0.0
    assert row.baseline_cost == pytest.approx(3.0)  # premium sonnet input rate
    assert row.input_tokens == 1_000_000
    assert (row.rule, row.complexity, row.outcome) == ("code-generation", "low", "ok")


def test_a_row_without_a_decision_names_what_happened():
    row = decision_row(
        None,
        None,
        source="proxy",
        store_prompts=False,
        outcome="rejected",
        rule="rejected",
        session_id="s1",
        error_class="too-large",
    )
    assert (row.provider, row.model, row.rule, row.session_id) == ("none", "none", "rejected", "s1")
    assert row.prompt_hash is None and row.estimated_tokens is None


def _writer(path: str, worker: int, count: int) -> None:
    conn = connect(path)
    for index in range(count):
        record(
            conn,
            DecisionRow(
                source="proxy",
                rule=f"w{worker}",
                provider="ollama",
                model="m",
                session_id=str(index),
            ),
        )
    conn.close()


def test_concurrent_writers_lose_nothing(router_home):
    path = str(router_home / "decisions.db")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, n, 150)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    conn = connect(path)
    counts = dict(conn.execute("SELECT rule, COUNT(*) FROM decisions GROUP BY rule").fetchall())
    assert counts == {"w0": 150, "w1": 150, "w2": 150, "w3": 150}
    assert conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_recent_lists_newest_first_without_prompt_text(router_home):
    conn = connect(router_home / "decisions.db")
    for second in (1.0, 3.0, 2.0):
        record(
            conn,
            DecisionRow(
                source="mcp",
                rule=str(second),
                provider="p",
                model="m",
                ts=second,
                prompt_text="secret words",
            ),
        )
    rows = recent(conn, limit=2)
    assert [row["rule"] for row in rows] == ["3.0", "2.0"]
    assert all("prompt_text" not in row for row in rows)
    assert [row["rule"] for row in recent(conn, 10, since=2.0)] == ["3.0", "2.0"]


def _totals(conn):
    return conn.execute(
        "SELECT day, provider, outcome, source, requests, input_tokens, ROUND(cost, 9), fallbacks "
        "FROM decision_totals WHERE requests != 0 ORDER BY 1, 2, 3, 4"
    ).fetchall()


def _totals_from_raw(conn):
    return conn.execute(
        "SELECT CAST(ts / 86400 AS INTEGER) AS d, provider, outcome, source, COUNT(*), "
        "SUM(input_tokens), ROUND(TOTAL(cost), 9), COUNT(fallback_from) FROM decisions "
        "GROUP BY d, provider, outcome, source ORDER BY 1, 2, 3, 4"
    ).fetchall()


def test_daily_totals_follow_inserts_updates_and_deletes(router_home):
    conn = connect(router_home / "decisions.db")
    for index in range(40):
        record(
            conn,
            DecisionRow(
                source=("proxy", "hook")[index % 2],
                rule="r",
                provider=("ollama", "anthropic")[index % 3 == 0],
                model="m",
                outcome="ok",
                ts=1_700_000_000 + index * 20_000,
                input_tokens=index,
                cost=index / 100,
                fallback_from="ollama" if index % 5 == 0 else None,
            ),
        )
    assert _totals(conn) == _totals_from_raw(conn)
    conn.execute("UPDATE decisions SET outcome = 'error', input_tokens = 999 WHERE id % 7 = 0")
    conn.execute("UPDATE decisions SET ts = ts + 86400 WHERE id % 11 = 0")
    conn.execute("DELETE FROM decisions WHERE id % 4 = 0")
    assert _totals(conn) == _totals_from_raw(conn)


def test_daily_totals_migration_backfills_an_existing_log():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, MIGRATIONS[:2])  # a log written by a version before the daily totals
    conn.executemany(
        "INSERT INTO decisions (ts, source, rule, provider, model, outcome, cost) "
        "VALUES (?, 'cli', 'r', ?, 'm', 'ok', ?)",
        [(1_700_000_000 + i * 30_000, ("a", "b")[i % 2], 0.5) for i in range(30)],
    )
    assert migrate(conn) == [
        "m003_daily_totals",
        "m004_pins_and_sessions",
        "m005_index_error_classes",
        "m006_checked_answers",
    ]
    assert _totals(conn) == _totals_from_raw(conn)
