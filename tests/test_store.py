import dataclasses
import multiprocessing
import sqlite3

import pytest

from hybrid_router import store
from hybrid_router.config import load_config
from hybrid_router.pricing import Usage
from hybrid_router.records import decision_row
from hybrid_router.routing import decide
from hybrid_router.signals import signals_from_prompt


def test_migrations_on_an_empty_database_are_recorded_and_idempotent():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    applied = store.migrate(conn)
    assert applied == [
        "m001_create_decisions", "m002_index_decisions", "m003_daily_totals", "m004_pins_and_sessions",
    ]
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == applied
    assert store.migrate(conn) == []
    columns = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
    assert set(store.COLUMNS) <= columns
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(decisions)")}
    assert {"idx_decisions_ts", "idx_decisions_session"} <= indexes


def test_connect_creates_a_wal_database_in_the_home(router_home):
    conn = store.connect(router_home / "decisions.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
    row_id = store.record(
        conn, store.DecisionRow(source="cli", rule="r", provider="ollama", model="m")
    )
    assert row_id == 1
    conn.close()
    again = store.connect(router_home / "decisions.db")
    assert again.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


def test_prompt_text_is_not_stored_unless_opted_in(router_home):
    config = load_config().config
    prompt = "refactor the billing module"
    signals = signals_from_prompt(prompt)
    row = decision_row(decide(signals, config), signals, config, source="hook")
    assert row.prompt_text is None
    assert row.prompt_chars == len(prompt)
    assert len(row.prompt_hash) == 64 and prompt not in row.prompt_hash
    opted_in = decision_row(
        decide(signals, config),
        signals,
        dataclasses.replace(config, store_prompts=True),
        source="hook",
    )
    assert opted_in.prompt_text == prompt
    conn = store.connect(router_home / "decisions.db")
    store.record(conn, row)
    dump = "\n".join(conn.iterdump())
    assert prompt not in dump


def test_decision_row_prices_usage_against_the_requested_model():
    config = load_config().config
    signals = signals_from_prompt("write tests")
    decision = decide(signals, config)
    row = decision_row(
        decision,
        signals,
        config,
        source="cli",
        outcome=store.OUTCOME_OK,
        usage=Usage(input_tokens=1_000_000, output_tokens=0),
    )
    assert row.provider == "ollama" and row.cost == 0.0
    assert row.baseline_cost == pytest.approx(3.0)  # premium sonnet input rate
    assert (row.rule, row.complexity, row.outcome) == ("code-generation", "low", "ok")


def _writer(path: str, worker: int, count: int) -> None:
    conn = store.connect(path)
    for index in range(count):
        store.record(
            conn,
            store.DecisionRow(
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
    conn = store.connect(path)
    counts = dict(conn.execute("SELECT rule, COUNT(*) FROM decisions GROUP BY rule").fetchall())
    assert counts == {"w0": 150, "w1": 150, "w2": 150, "w3": 150}
    assert conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(store.MIGRATIONS)


def test_recent_lists_newest_first_without_prompt_text(router_home):
    conn = store.connect(router_home / "decisions.db")
    for second in (1.0, 3.0, 2.0):
        store.record(
            conn,
            store.DecisionRow(
                source="mcp",
                rule=str(second),
                provider="p",
                model="m",
                ts=second,
                prompt_text="secret words",
            ),
        )
    rows = store.recent(conn, limit=2)
    assert [row["rule"] for row in rows] == ["3.0", "2.0"]
    assert all("prompt_text" not in row for row in rows)
    assert [row["rule"] for row in store.recent(conn, 10, since=2.0)] == ["3.0", "2.0"]


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
    conn = store.connect(router_home / "decisions.db")
    for index in range(40):
        store.record(
            conn,
            store.DecisionRow(
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


def test_daily_totals_migration_backfills_an_existing_log(monkeypatch):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    with monkeypatch.context() as older_version:
        older_version.setattr(store, "MIGRATIONS", store.MIGRATIONS[:2])
        store.migrate(conn)
    conn.executemany(
        "INSERT INTO decisions (ts, source, rule, provider, model, outcome, cost) VALUES (?, 'cli', 'r', ?, 'm', 'ok', ?)",
        [(1_700_000_000 + i * 30_000, ("a", "b")[i % 2], 0.5) for i in range(30)],
    )
    assert store.migrate(conn) == ["m003_daily_totals", "m004_pins_and_sessions"]
    assert _totals(conn) == _totals_from_raw(conn)
