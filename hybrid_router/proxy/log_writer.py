"""Writing decision rows off the request path: a queue and one writer thread."""

from __future__ import annotations

import logging
import queue
import threading

from .. import store

log = logging.getLogger("hybrid_router.proxy")
_STOP = object()


class LogWriter:
    """Rows go on a queue and a thread writes them, so a slow disk never delays an answer.

    `close()` drains the queue: rows of answered requests are not lost on shutdown.
    """

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self._queue: queue.Queue[object] = queue.Queue()
        self._written = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hybrid-router-log", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        with self._lock:
            return self._written

    def submit(self, row: store.DecisionRow) -> None:
        self._queue.put(row)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every row submitted so far is written."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                if conn is None:
                    conn = store.connect(self.database_path)
                store.record(conn, item)  # type: ignore[arg-type]
                with self._lock:
                    self._written += 1
            except Exception as exc:  # noqa: BLE001 - a broken log must not stop the proxy
                log.warning("could not write a decision row: %s", exc)
                conn = None
        if conn is not None:
            conn.close()
