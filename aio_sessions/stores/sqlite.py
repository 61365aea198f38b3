"""SQLite store: durable sessions in one file, with no server to run.

Several processes may share the file: every merge runs in an ``IMMEDIATE`` transaction, so
concurrent writers of one session keep each other's keys across processes too.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from .._checks import check_path, check_positive, refuse_options
from ._blocking import BlockingStore
from ._codec import Decoder, Encoder, make_codec
from ._json import dump_record, load_record
from .base import SessionRecord

log = logging.getLogger("aio_sessions")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires REAL NOT NULL,
    user TEXT
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user);
"""


class SQLiteStore(BlockingStore):
    """Sessions in a SQLite database file; they survive restarts.

    Expired rows are deleted at most every ``sweep_interval`` seconds, on a write.
    ``lock_timeout`` is how many seconds an operation waits while another process holds the
    database's write lock; then it fails with StoreUnavailable (a 503). ``encoder``/
    ``decoder``: aiohttp-session's, for the text in the ``data`` column.
    """

    _unavailable = (sqlite3.OperationalError,)

    def __init__(
        self,
        path: str | Path,
        *,
        sweep_interval: float = 60.0,
        lock_timeout: float = 10.0,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **setup_options: NoReturn,
    ) -> None:
        # setup_options: cookie options passed here by habit, refused with the fix.
        refuse_options(
            "SQLiteStore(path)",
            setup_options,
            ("sweep_interval", "lock_timeout", "encoder", "decoder"),
        )
        check_path("path", path, "SQLiteStore('sessions.db')")
        check_positive(
            "lock_timeout",
            lock_timeout,
            whole=False,
            unit="seconds",
            example="SQLiteStore('sessions.db', lock_timeout=10)",
            optional=False,
        )
        self.lock_timeout = lock_timeout
        codec = make_codec("SQLiteStore(path)", encoder, decoder)
        super().__init__("aio-sessions-sqlite", "SQLiteStore(path)", sweep_interval, codec)
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection, opened on first use, in the worker thread."""
        if self._db is None:
            db = sqlite3.connect(
                self.path,
                timeout=self.lock_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _read(self, session_id: str) -> SessionRecord | None:
        # As bytes: SQLite keeps whatever it was given, and text that is not UTF-8 would fail
        # inside fetchone() (an OperationalError, "unavailable") instead of being corrupt.
        row = self._conn.execute(
            "SELECT CAST(data AS BLOB) FROM sessions WHERE id = ? AND expires > ?",
            (session_id, time.time()),
        ).fetchone()
        if row is None:
            return None
        try:
            return load_record(session_id, row[0], self._codec)
        except ValueError:
            log.warning("ignoring a corrupt session record in sqlite")
            return None

    def _write(self, record: SessionRecord, ttl: float) -> None:
        now = time.time()
        self._conn.execute(
            "INSERT INTO sessions (id, data, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
            (record.id, dump_record(record, codec=self._codec), now + ttl),
        )
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            self._conn.execute("DELETE FROM sessions WHERE expires <= ?", (now,))

    def _delete(self, session_id: str) -> bool:
        cursor = self._conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cursor.rowcount > 0

    def _link(self, user: str, session_id: str) -> None:
        self._conn.execute("UPDATE sessions SET user = ? WHERE id = ?", (user, session_id))

    def _user_sessions(self, user: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM sessions WHERE user = ? AND expires > ? ORDER BY id",
            (user, time.time()),
        )
        return [row[0] for row in rows]

    def _count(self) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE expires > ?", (time.time(),)
        ).fetchone()
        return int(row[0])

    def _clear(self) -> None:
        self._conn.execute("DELETE FROM sessions")

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
