"""Crash-safe rows (issue 13, point 8): a row is journaled when it is submitted, so a writer
killed before its rows reached SQLite loses none of them; the next writer replays the journal,
without writing a row twice, and never takes a live writer's journal."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hybrid_router.log.rows import DecisionRow
from hybrid_router.log.writer import JOURNAL_SUFFIX, LogWriter

ROOT = Path(__file__).resolve().parent.parent


def _rows(database: Path) -> list[dict[str, object]]:
    if not database.exists():
        return []
    conn = sqlite3.connect(database)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM decisions ORDER BY id")]
    finally:
        conn.close()


def _row(model: str) -> DecisionRow:
    return DecisionRow(source="proxy", rule="code-generation", provider="ollama", model=model)


def _killed_writer(database: Path, count: int, flush_first: int = 0) -> None:
    """A process that submits `count` rows (flushing the first `flush_first` to SQLite) and is
    killed with SIGKILL at once: its writer thread never got to the rest."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from hybrid_router.log.rows import DecisionRow
        from hybrid_router.log.writer import LogWriter
        writer = LogWriter({str(database)!r})
        def row(i):
            return DecisionRow(source="proxy", rule="code-generation", provider="ollama",
                               model=f"m{{i}}")
        for i in range({flush_first}):
            writer.submit(row(i))
        writer.flush()
        for i in range({flush_first}, {count}):
            writer.submit(lambda i=i: row(i))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True)
    assert done.returncode == -9, done.stderr


def test_rows_of_a_killed_writer_are_replayed_once(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    _killed_writer(database, 200, flush_first=50)
    before = _rows(database)
    assert 50 <= len(before) < 200  # the kill lost rows from SQLite...
    journal = Path(str(database) + JOURNAL_SUFFIX)
    assert list(journal.iterdir())  # ...but not from the journal

    writer = LogWriter(str(database))
    assert writer.replayed == 200 - len(before)
    writer.close()
    models = [str(r["model"]) for r in _rows(database)]
    assert sorted(models) == sorted(f"m{i}" for i in range(200))  # each once
    assert not list(journal.iterdir())  # replayed and closed: nothing left to replay

    again = LogWriter(str(database))  # a second start-up finds nothing to add
    assert again.replayed == 0
    again.close()
    assert len(_rows(database)) == 200


def test_a_journal_whose_rows_are_already_logged_adds_nothing(tmp_path: Path) -> None:
    """Killed after its commit but before it deleted the journal file: the replay skips rows
    the log already holds."""
    database = tmp_path / "log.db"
    writer = LogWriter(str(database))
    for index in range(20):
        writer.submit(_row(f"m{index}"))
    writer.flush()
    journal = Path(str(database) + JOURNAL_SUFFIX)
    (current,) = journal.iterdir()
    kept = current.read_bytes()
    writer.close()
    (journal / "12345-1.jsonl").write_bytes(kept + b'{"cut short by the kill')
    replaying = LogWriter(str(database))
    assert replaying.replayed == 0
    replaying.close()
    assert len(_rows(database)) == 20


def test_a_live_writers_journal_is_left_alone(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    first = LogWriter(str(database))
    first.submit(_row("first"))  # journaled, and (for a moment) not yet written
    second = LogWriter(str(database))  # another proxy on the same log
    assert second.replayed == 0
    first.close()
    second.close()
    assert [r["model"] for r in _rows(database)] == ["first"]


def test_a_row_is_journaled_as_it_is_submitted(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    writer = LogWriter(str(database))
    try:
        writer.submit(lambda: _row("built now"))
        journal = Path(str(database) + JOURNAL_SUFFIX)
        data = b"".join(path.read_bytes() for path in journal.iterdir())
        assert b'"built now"' in data  # before the writer thread woke
    finally:
        writer.close()


def test_closing_leaves_no_journal(tmp_path: Path) -> None:
    database = tmp_path / "log.db"
    writer = LogWriter(str(database))
    for index in range(1000):
        writer.submit(_row(f"m{index}"))
        if index % 300 == 0:
            time.sleep(0.06)  # a few batches, a few journal files
    writer.close()
    assert len(_rows(database)) == 1000
    assert not os.listdir(str(database) + JOURNAL_SUFFIX)


def test_the_proxy_killed_under_load_keeps_the_row_of_every_answered_request() -> None:
    """bench/faults.py's SIGKILL run, scaled down: the real proxy (a subprocess) killed with
    SIGKILL part-way through 600 requests at concurrency 16, restarted on the same home."""
    sys.path.insert(0, str(ROOT / "bench"))
    import faults  # type: ignore[import-not-found, unused-ignore]

    for seed in (1, 2):
        run = faults.kill_run(600, 16, seed=seed)
        assert run.answered > 100
        assert run.rows == run.answered, run
