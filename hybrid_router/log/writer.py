"""Writing decision rows off the request path: a journal, a queue and one writer thread.

A row submitted as a function is built when it is submitted, appended to a journal file and
queued. The proxy submits a request's row just before the last byte of its answer goes out, so
the row of every answered request is on disk — in the page cache, which outlives the process —
even if the proxy is killed (SIGKILL, the OOM killer) the next moment. The writer thread writes
the queued rows to SQLite in batches, then deletes the journal files they were appended to; at
start-up it replays the files a killed writer left behind, skipping rows already in the log.
"""

from __future__ import annotations

import logging
import operator
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .database import connect
from .rows import COLUMNS, MAX_REASON_CHARS, DecisionRow, capped, record_many

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: journal files are not locked
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("hybrid_router.proxy")
_STOP = object()
_values = operator.attrgetter(*COLUMNS)  # a row's values, in COLUMNS order, at C speed
_HEADER = orjson.dumps({"columns": COLUMNS}) + b"\n"
# The writer gathers rows for a moment before it writes them, in one transaction: one commit per
# batch instead of one per row, and the thread (with the GIL it takes) wakes once per batch, not
# in the middle of the next request. A row reaches the log at most this much later.
BATCH_WINDOW_SECONDS = 0.05
MAX_BATCH = 512
JOURNAL_SUFFIX = ".journal.d"  # beside the database: decisions.db.journal.d/
# HYBRID_ROUTER_JOURNAL=0: no journal; rows are then built on the writer thread and wait in
# memory until written (what a kill loses). For measuring what the journal costs.
JOURNAL_ENV = "HYBRID_ROUTER_JOURNAL"
# Rows a client can cause without a token (refusals on a token bind) are folded per address:
# the first of a minute is written, the rest of that minute counted in one more row.
FOLD_SECONDS = 60.0
MAX_FOLDS = 4096


@dataclass
class _Fold:
    started: float
    row: DecisionRow  # the first row of the minute, written
    count: int = 0  # the rows folded into it since
    last: float = 0.0


@dataclass
class _Journal:
    path: str
    fd: int
    rows: int = 0


class LogWriter:
    """Rows go on a queue and a thread writes them, so a slow disk never delays an answer.

    `close()` drains the queue: rows of answered requests are not lost on shutdown; the journal
    keeps them when the process is killed instead. `journal=False` (default: unless
    HYBRID_ROUTER_JOURNAL=0): no journal.
    """

    def __init__(self, database_path: str, *, journal: bool | None = None) -> None:
        if journal is None:
            journal = os.environ.get(JOURNAL_ENV, "1") != "0"
        self.database_path = database_path
        self.journal_dir: str | None = database_path + JOURNAL_SUFFIX if journal else None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._written = 0
        self._replayed = 0
        self._lock = threading.Lock()
        self._folds: dict[str, _Fold] = {}
        self._journal: _Journal | None = None
        self._journal_failed = False
        self._started = threading.Event()
        if self.journal_dir is not None:
            # Opened (and locked) before the thread replays: the replay never takes our own file.
            self._journal = self._open_journal()
        self._thread = threading.Thread(target=self._run, name="hybrid-router-log", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        with self._lock:
            return self._written

    @property
    def replayed(self) -> int:
        """Rows a killed writer had journaled and this one wrote at start-up."""
        self._started.wait(30)
        return self._replayed

    def submit(self, row: DecisionRow | Callable[[], DecisionRow]) -> None:
        """Build the row (if given as a function), journal it, queue it for the writer."""
        if self.journal_dir is None:  # built on the writer thread, stamped now
            self._queue.put((time.time(), row))
            return
        if not isinstance(row, DecisionRow):
            try:
                row = row()
            except Exception as exc:  # noqa: BLE001 - one broken row must not stop the others
                log.warning("could not build a decision row: %s", exc)
                return
        if not row.ts:
            row.ts = time.time()  # when the request ended, not when the thread got to it
        line = self._line(row) if self._journal is not None else None
        with self._lock:
            journal = self._journal
            if line is not None and journal is not None:
                try:
                    os.write(journal.fd, line)
                    journal.rows += 1
                except OSError as exc:
                    self._journal_problem(exc)
            self._queue.put(row)

    def submit_folded(self, key: str, row: DecisionRow) -> None:
        """Submit `row`, unless a row with the same `key` was submitted less than a minute ago:
        then it is only counted, and when that minute is over one more row (the first one's,
        its reason saying how many) stands for all it counted."""
        now = time.time()
        with self._lock:
            fold = self._folds.get(key)
            if fold is not None and now - fold.started < FOLD_SECONDS:
                fold.count += 1
                fold.last = now
                return
            if fold is not None or len(self._folds) >= MAX_FOLDS:
                # Its minute is over (or too many addresses are counted: all are settled).
                for settled in [fold] if fold is not None else list(self._folds.values()):
                    if settled.count:
                        self._queue.put(_folded_row(settled))
                if fold is None:
                    self._folds.clear()
            self._folds[key] = _Fold(now, row)
        self.submit(row)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every row submitted so far is written."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # -- the journal ------------------------------------------------------------------------------

    def _open_journal(self) -> _Journal | None:
        assert self.journal_dir is not None
        try:
            os.makedirs(self.journal_dir, exist_ok=True)
            path = os.path.join(self.journal_dir, f"{os.getpid()}-{time.time_ns()}.jsonl")
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            self._journal_problem(exc)
            return None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while this writer lives
        try:
            os.write(fd, _HEADER)  # the columns, once: each row is then a list of values
        except OSError as exc:
            self._journal_problem(exc)
        return _Journal(path, fd)

    def _journal_problem(self, exc: OSError) -> None:
        if not self._journal_failed:
            self._journal_failed = True
            log.warning("cannot journal decision rows (they are still written): %s", exc)

    @staticmethod
    def _line(row: DecisionRow) -> bytes | None:
        try:
            return orjson.dumps(_values(row)) + b"\n"
        except TypeError:  # a value JSON cannot hold: the row is still queued
            return None

    def _rotate(self) -> _Journal | None:
        """Start a new journal file if the current one has rows; return the old one, whose rows
        are all on the queue by now (a row is journaled and queued under the same lock)."""
        if self.journal_dir is None:
            return None
        with self._lock:
            old = self._journal
            if old is not None and not old.rows:
                return None
            self._journal = self._open_journal()
            return old

    @staticmethod
    def _retire(journal: _Journal) -> None:
        """Its rows are in the log: the file goes."""
        try:
            os.unlink(journal.path)
        except OSError:
            pass
        os.close(journal.fd)

    def _replay(self) -> sqlite3.Connection | None:
        """Write the rows of journal files left by writers that are gone (killed before their
        rows reached the log), skipping rows the log already holds; then delete the files."""
        if self.journal_dir is None:
            return None
        try:
            names = sorted(os.listdir(self.journal_dir))
        except OSError:
            return None
        conn: sqlite3.Connection | None = None
        own = self._journal.path if self._journal is not None else None
        for name in names:
            path = os.path.join(self.journal_dir, name)
            if path == own or not name.endswith(".jsonl"):
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a live writer's (another proxy on the same log)
                rows = _read_journal(fd)
                if conn is None:
                    conn = connect(self.database_path)
                fresh = [row for row in rows if not _already_logged(conn, row)]
                if fresh:
                    record_many(conn, fresh)
                    self._replayed += len(fresh)
                    self._count(len(fresh))
                os.unlink(path)
            except Exception as exc:  # noqa: BLE001 - a broken journal must not stop the proxy
                log.warning("could not replay the decision journal %s: %s", path, exc)
            finally:
                os.close(fd)
        if self._replayed:
            log.warning("wrote %d decision rows journaled before the last stop", self._replayed)
        return conn

    # -- folded rows ----------------------------------------------------------------------------

    def _due_folds(self, everything: bool = False) -> list[DecisionRow]:
        """The count rows of the folds whose minute is over (all of them with `everything`)."""
        now = time.time()
        due: list[DecisionRow] = []
        with self._lock:
            for key, fold in list(self._folds.items()):
                if everything or now - fold.started >= FOLD_SECONDS:
                    del self._folds[key]
                    if fold.count:
                        due.append(_folded_row(fold))
        return due

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = self._replay()
        finally:
            self._started.set()
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=FOLD_SECONDS / 4 if self._folds else None)
            except queue.Empty:
                conn = self._write(conn, self._due_folds())
                continue
            if isinstance(first, (DecisionRow, tuple)):
                time.sleep(BATCH_WINDOW_SECONDS)  # a flush or a stop goes at once
            retired = self._rotate()
            items = [first]
            while True:  # everything queued, so that the retired journal's rows are all written
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows: list[DecisionRow] = []
            flushed: list[threading.Event] = []
            for item in items:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    conn = self._write(conn, rows)  # what came before the flush, first
                    rows = []
                    flushed.append(item)
                elif isinstance(item, DecisionRow):
                    rows.append(item)
                elif isinstance(item, tuple):  # (submitted, row or function), without a journal
                    built = _built(*item)
                    if built is not None:
                        rows.append(built)
            rows.extend(self._due_folds(everything=stopping))
            conn = self._write(conn, rows)
            if retired is not None:
                self._retire(retired)
            # A flush returns once its rows are written and the journal that held them is gone:
            # released before the retire, a caller could still see the retired file.
            for event in flushed:
                event.set()
        if self._journal is not None:  # everything it holds is written
            self._retire(self._journal)
            self._journal = None
        if conn is not None:
            conn.close()

    def _write(
        self, conn: sqlite3.Connection | None, rows: list[DecisionRow]
    ) -> sqlite3.Connection | None:
        """Write `rows` in one transaction per MAX_BATCH; if that fails, row by row, so one bad
        row or a passing lock loses only itself. Returns the connection to use next (None:
        reopen)."""
        for start in range(0, len(rows), MAX_BATCH):
            conn = self._write_batch(conn, rows[start : start + MAX_BATCH])
        return conn

    def _write_batch(
        self, conn: sqlite3.Connection | None, rows: list[DecisionRow]
    ) -> sqlite3.Connection | None:
        if not rows:
            return conn
        try:
            if conn is None:
                conn = connect(self.database_path)
            record_many(conn, rows)
            self._count(len(rows))
            return conn
        except Exception as exc:  # noqa: BLE001 - a broken log must not stop the proxy
            if len(rows) == 1:
                log.warning("could not write a decision row: %s", exc)
                return None
        for row in rows:
            conn = self._write_batch(conn, [row])
        return conn

    def _count(self, written: int) -> None:
        with self._lock:
            self._written += written


def _built(submitted: float, row: DecisionRow | Callable[[], DecisionRow]) -> DecisionRow | None:
    try:
        built = row if isinstance(row, DecisionRow) else row()
    except Exception as exc:  # noqa: BLE001 - one broken row must not stop the others
        log.warning("could not build a decision row: %s", exc)
        return None
    if not built.ts:
        built.ts = submitted
    return built


def _folded_row(fold: _Fold) -> DecisionRow:
    row = fold.row.replace(ts=fold.last)
    what = f"{fold.count} more like it from the same client in the minute after the first"
    row.reason = capped(f"{row.reason or ''} ({what})", MAX_REASON_CHARS)
    return row


def _read_journal(fd: int) -> list[DecisionRow]:
    """The rows of a journal file; a line cut short by the kill, or not a row, is skipped."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    rows = []
    columns: list[str] = []
    for line in b"".join(chunks).splitlines():
        try:
            values = orjson.loads(line)
            if isinstance(values, dict):  # the header (columns of the version that wrote it)
                columns = values["columns"]
                continue
            fields = dict(zip(columns, values, strict=True))
            rows.append(DecisionRow(**{k: v for k, v in fields.items() if k in COLUMNS}))
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
            continue
    return rows


def _already_logged(conn: sqlite3.Connection, row: DecisionRow) -> bool:
    """Whether the log holds this row: the same submission time (to the microsecond and
    beyond), surface, rule and outcome."""
    found = conn.execute(
        "SELECT 1 FROM decisions WHERE ts = ? AND source = ? AND rule = ? AND outcome = ? LIMIT 1",
        (row.ts, row.source, row.rule, row.outcome),
    ).fetchone()
    return found is not None
