"""In-process session store: the zero-set-up default for one process."""

from __future__ import annotations

import logging
import time

from .._ids import valid_id
from ._json import dump_record, load_record
from .base import Changes, SessionRecord, Store, merge

log = logging.getLogger("aio_sessions")


class MemoryStore(Store):
    """Sessions in a dict of this process, kept as JSON like every other store.

    Records expire after their TTL. Expired entries are swept at most every
    ``sweep_interval`` seconds, so abandoned sessions do not pile up; ``max_sessions``
    additionally caps the number held, dropping the least recently written first.
    Data is lost when the process exits: use SQLiteStore, FileStore or RedisStore to keep it.
    """

    def __init__(self, *, max_sessions: int | None = None, sweep_interval: float = 60.0) -> None:
        if max_sessions is not None and max_sessions < 1:
            raise ValueError("max_sessions must be a positive integer or None")
        if sweep_interval <= 0:
            raise ValueError("sweep_interval must be positive")
        self._items: dict[str, tuple[float, str]] = {}
        self._users: dict[str, set[str]] = {}
        self._max_sessions = max_sessions
        self._sweep_interval = sweep_interval
        self._next_sweep = time.monotonic() + sweep_interval

    def _get(self, session_id: str) -> SessionRecord | None:
        item = self._items.get(session_id)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            del self._items[session_id]
            return None
        try:
            return load_record(session_id, item[1])
        except ValueError:
            log.warning("dropping a corrupt session record")
            del self._items[session_id]
            return None

    def _put(self, record: SessionRecord, ttl: float) -> str:
        raw = dump_record(record)
        now = time.monotonic()
        self._items.pop(record.id, None)
        self._items[record.id] = (now + ttl, raw)
        if now >= self._next_sweep:
            self._sweep(now)
        if self._max_sessions is not None:
            while len(self._items) > self._max_sessions:
                del self._items[next(iter(self._items))]
        return record.id

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_interval
        dead = [sid for sid, (expires, _) in self._items.items() if expires <= now]
        for sid in dead:
            del self._items[sid]
        for user, linked in list(self._users.items()):
            linked.intersection_update(self._items)
            if not linked:
                del self._users[user]

    async def load(self, token: str) -> SessionRecord | None:
        return self._get(token) if valid_id(token) else None

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: float) -> str | None:
        if changes is None:
            return self._put(record, ttl)
        current = self._get(record.id)
        if current is None:
            return None
        return self._put(merge(current, record, changes), ttl)

    async def touch(self, record: SessionRecord, ttl: float) -> str | None:
        current = self._get(record.id)
        if current is None:
            return None
        current.accessed = record.accessed
        current.max_age = record.max_age
        return self._put(current, ttl)

    async def delete(self, session_id: str) -> bool:
        return self._items.pop(session_id, None) is not None

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        self._users.setdefault(user, set()).add(session_id)

    async def user_sessions(self, user: str) -> list[str]:
        linked = self._users.get(user, set())
        linked.intersection_update(sid for sid in list(linked) if self._get(sid) is not None)
        if not linked:
            self._users.pop(user, None)
        return sorted(linked)

    async def count(self) -> int:
        self._sweep(time.monotonic())
        return len(self._items)

    async def clear(self) -> None:
        self._items.clear()
        self._users.clear()
