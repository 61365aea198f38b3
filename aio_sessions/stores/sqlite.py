"""SQLite store: durable sessions in one file, with no server to run.

Several processes may share the file: every merge runs in an ``IMMEDIATE`` transaction, so
concurrent writers of one session keep each other's keys across processes too. Loads and
merges run on the event loop when they need not wait for a lock (see ``SQLiteStore``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar

from .._checks import check_path, check_positive, refuse_options
from ..errors import StoreUnavailable
from ._blocking import BlockingStore, Busy, WouldBlock
from ._codec import Decoder, Encoder, make_codec
from ._json import dump_record, load_record
from .base import SessionRecord

log = logging.getLogger("aio_sessions")
T = TypeVar("T")

#: Merges committed on the loop between two checkpoints, which the worker thread runs. A
#: merge appends 2-4 pages to the WAL (the row's page and index pages; more for a record
#: over a page), so for usual sessions this stays within SQLite's own autocheckpoint
#: threshold of 1000 pages (4 MB).
_CHECKPOINT_EVERY = 250
#: SQLITE_BUSY and SQLITE_LOCKED: another connection holds the lock we asked for.
_BUSY_CODES = (5, 6)

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


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite said busy or locked: another connection holds the lock asked for."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)  # Python 3.11 and later
    if code is None:
        return "locked" in str(exc)
    return (code & 0xFF) in _BUSY_CODES


class SQLiteStore(BlockingStore):
    """Sessions in a SQLite database file; they survive restarts.

    Expired rows are deleted at most every ``sweep_interval`` seconds, by the worker thread.
    ``lock_timeout`` is how many seconds an operation waits while another process holds the
    database's write lock; then it fails with StoreUnavailable (a 503). ``encoder``/
    ``decoder``: aiohttp-session's, for the text in the ``data`` column.

    Loads, saves and touches run on the event loop, on a connection of its own that never
    waits: its busy timeout is 0, a primary-key lookup in WAL mode does not wait for
    writers, and a merge takes the write lock (``BEGIN IMMEDIATE``) at once or not at all.
    When another process holds the lock, the operation waits on the loop (growing pauses,
    up to ``lock_timeout``), so other processes are still serialised by the same lock and
    nothing is lost. Commits on the loop do not sync (WAL with ``synchronous=NORMAL``) and
    never checkpoint: every 250 of them the worker thread checkpoints (passive) and sweeps
    expired rows, while the loop's writers wait for it.
    Everything else (delete, the user index, count, clear) runs in the worker thread.
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
        self._db: sqlite3.Connection | None = None  # the worker thread's
        self._loop_db: sqlite3.Connection | None = None  # the event loop's, busy timeout 0
        self._loop_thread: int | None = None
        self._loop_commits = 0  # since the last checkpoint
        self._busy_wait = lock_timeout
        self._upkeep: asyncio.Task[None] | None = None

    def _connect(self, timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    @property
    def _conn(self) -> sqlite3.Connection:
        """The calling thread's connection: the loop's in ``_on_loop``, else the worker's
        (opened on first use)."""
        if self._loop_db is not None and threading.get_ident() == self._loop_thread:
            return self._loop_db
        if self._db is None:
            self._db = self._connect(self.lock_timeout)
        return self._db

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the loop's connection; Busy when SQLite says so."""
        try:
            if self._loop_db is None:
                db = self._connect(0)
                db.execute("PRAGMA wal_autocheckpoint=0")  # the worker thread checkpoints
                self._loop_db, self._loop_thread = db, threading.get_ident()
            elif threading.get_ident() != self._loop_thread:
                raise WouldBlock  # another thread's loop: its calls take the worker's path
            result = fn()
        except sqlite3.OperationalError as exc:
            if self._loop_db is not None and self._loop_db.in_transaction:
                self._loop_db.execute("ROLLBACK")  # a COMMIT that failed
            if _busy(exc):
                raise Busy from exc
            raise
        if self._upkeep is None and self._upkeep_due(time.time()):
            self._upkeep = asyncio.get_running_loop().create_task(self._keep_up())
        return result

    def _upkeep_due(self, now: float) -> bool:
        """Time to sweep expired rows or to checkpoint: jobs for the worker thread."""
        return now >= self._next_sweep or self._loop_commits >= _CHECKPOINT_EVERY

    async def _keep_up(self) -> None:
        """Sweep and checkpoint in the worker thread; the loop goes on reading meanwhile."""
        try:
            await self._run(self._sweep_and_checkpoint)
        except StoreUnavailable as exc:  # tried again when next due
            log.warning("sqlite upkeep (sweep, checkpoint) failed: %s", exc)
        finally:
            self._upkeep = None

    def _sweep_and_checkpoint(self) -> None:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            with self._transaction():
                self._conn.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
        # PASSIVE: waits for no one. With the loop's writers held off meanwhile it copies the
        # whole WAL back (unless another process writes), and the next write restarts the WAL.
        self._loop_commits = 0
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        db = self._conn
        if db is self._loop_db and self._upkeep is not None:
            # Writers on the loop wait for the checkpoint (a few ms): with writes landing
            # meanwhile it could never finish, and the WAL would grow without end.
            raise Busy(self._upkeep)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if db is self._loop_db:
            self._loop_commits += 1

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

    async def close(self) -> None:
        if self._upkeep is not None:
            await self._upkeep
        if self._loop_db is not None:
            self._loop_db.close()
            self._loop_db = self._loop_thread = None
        await super().close()
