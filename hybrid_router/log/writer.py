"""Writing decision rows off the request path: a queue and one writer thread.

A row can be submitted ready-made or as a function that builds it: the proxy submits the
latter, so pricing the usage and hashing the prompt happen on the writer thread, not between
the answer and the next request.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable

from .database import connect
from .rows import DecisionRow, record_many

log = logging.getLogger("hybrid_router.proxy")
_STOP = object()
# The writer gathers rows for a moment before it writes them, in one transaction: one commit per
# batch instead of one per row, and the thread (with the GIL it takes) wakes once per batch, not
# in the middle of the next request. A row reaches the log at most this much later.
BATCH_WINDOW_SECONDS = 0.05
MAX_BATCH = 512


class LogWriter:
    """Rows go on a queue and a thread writes them, so a slow disk never delays an answer.

    `close()` drains the queue: rows of answered requests are not lost on shutdown.
    """

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._written = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hybrid-router-log", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        with self._lock:
            return self._written

    def submit(self, row: DecisionRow | Callable[[], DecisionRow]) -> None:
        # Stamped now: when the request ended, not when the thread got to it.
        self._queue.put((time.time(), row))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every row submitted so far is written."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            if isinstance(items[0], tuple):
                time.sleep(BATCH_WINDOW_SECONDS)  # a flush or a stop goes at once
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows: list[DecisionRow] = []
            for item in items:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    conn = self._write(conn, rows)  # what came before the flush, first
                    rows = []
                    item.set()
                else:
                    row = self._built(item)  # type: ignore[arg-type]
                    if row is not None:
                        rows.append(row)
            conn = self._write(conn, rows)
        if conn is not None:
            conn.close()

    @staticmethod
    def _built(item: tuple[float, DecisionRow | Callable[[], DecisionRow]]) -> DecisionRow | None:
        submitted, row = item
        try:
            built = row if isinstance(row, DecisionRow) else row()
        except Exception as exc:  # noqa: BLE001 - one broken row must not stop the others
            log.warning("could not build a decision row: %s", exc)
            return None
        if not built.ts:
            built.ts = submitted
        return built

    def _write(
        self, conn: sqlite3.Connection | None, rows: list[DecisionRow]
    ) -> sqlite3.Connection | None:
        """Write `rows` in one transaction; if that fails, row by row, so one bad row or a
        passing lock loses only itself. Returns the connection to use next (None: reopen)."""
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
            conn = self._write(conn, [row])
        return conn

    def _count(self, written: int) -> None:
        with self._lock:
            self._written += written
