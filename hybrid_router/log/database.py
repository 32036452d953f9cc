"""Opening the SQLite decision log: WAL mode, a busy timeout, migrated to the latest schema.

Opening it needs only the sqlite C module, because hooks open it from a fresh process on every
event and cannot afford more (not sqlite-utils, not even `sqlite3`'s datetime adapters).
Migrations (migrations.py) use sqlite-utils, imported only when one is due. WAL mode and a busy
timeout let the proxy, the MCP server and hooks write at once.
"""

from __future__ import annotations

import os

from .migrations import MIGRATIONS, migrate

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _sqlite3 as sqlite
    import sqlite3
    from pathlib import Path
else:
    try:  # the C module alone; `sqlite3` is a thin wrapper that also imports datetime, collections
        import _sqlite3 as sqlite
    except ImportError:  # pragma: no cover - interpreters without the private module
        import sqlite3 as sqlite


BUSY_TIMEOUT_MS = 5000


# --- connections and writes ------------------------------------------------------------------


def connect(path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open (creating if needed) the log at `path`, in WAL mode, migrated to the latest schema.

    Hooks pass a short busy timeout: a hook that waits long on a locked log delays the user.
    """
    if str(path) != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version < len(MIGRATIONS):
        migrate(conn)
    return conn
