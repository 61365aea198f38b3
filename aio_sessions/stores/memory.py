"""In-process session store: the zero-set-up default for one process."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from .._checks import check_positive, refuse_options
from ._codec import Decoder, Encoder, make_codec
from ._json import copy_decoded, decode, dump_data, dump_record, load_record
from .base import TTL, Changes, SessionRecord, Store, later, ttl_of

log = logging.getLogger("aio_sessions")


@dataclass(slots=True)
class _Entry:
    expires: float  # time.monotonic()
    # The data as JSON would decode it (what went through dump_data), copied on every load:
    # what is stored can never alias what a handler mutates. With the store's own encoder and
    # decoder, the text the encoder wrote, decoded on every load.
    data: dict[str, Any] | str
    created: int
    accessed: float | None
    max_age: int | None
    linked: float | None
    watched: float | None
    agent: str | None = None
    ip: str | None = None


#: Sessions a MemoryStore holds unless told otherwise: about 185 MiB of small sessions
#: (bench/abandoned.py), so abandoned logins cannot grow a process without bound.
DEFAULT_MAX_SESSIONS = 100_000


class MemoryStore(Store):
    """Sessions in a dict of this process, their data kept as a JSON store would return it.

    Values go through the JSON encoder on save, so what another store could not hold fails
    here too, and each load hands out a fresh copy, so mutating it changes nothing stored.
    Given ``encoder``/``decoder`` (as every store takes them), it keeps the text the encoder
    writes and decodes it on every load: the app reads what the pair gives back, as from
    Redis, and a pair that cannot read its own text fails here as there.

    Records expire after their TTL. Expired entries are swept at most every
    ``sweep_interval`` seconds, and ``max_sessions`` (100,000 by default; None: no cap)
    caps the number held, dropping the least recently used first and logging a warning the
    first time: memory stays bounded however many logins are abandoned.
    Data is lost when the process exits: use SQLiteStore, FileStore or RedisStore to keep it.
    """

    def __init__(
        self,
        *,
        max_sessions: int | None = DEFAULT_MAX_SESSIONS,
        sweep_interval: float = 60.0,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **setup_options: NoReturn,
    ) -> None:
        # setup_options: cookie options passed here by habit, refused with the fix.
        refuse_options(
            "MemoryStore()",
            setup_options,
            ("max_sessions", "sweep_interval", "encoder", "decoder"),
        )
        check_positive(
            "max_sessions",
            max_sessions,
            whole=True,
            unit="sessions",
            example="MemoryStore(max_sessions=10000)",
        )
        check_positive(
            "sweep_interval",
            sweep_interval,
            whole=False,
            unit="seconds",
            example="MemoryStore(sweep_interval=60)",
            optional=False,
        )
        # Least recently used first (loads and writes move a session last). An OrderedDict,
        # not a dict: evicting a plain dict's first item walks over every slot deleted before
        # it (64 µs a save at 1,000,000 abandoned sessions under a cap of 100,000, not 10).
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._users: dict[str, set[str]] = {}
        self._max_sessions = max_sessions
        self._full_warned = False
        self._sweep_interval = sweep_interval
        self._next_sweep = time.monotonic() + sweep_interval
        self._codec = make_codec("MemoryStore()", encoder, decoder)

    def _entry(self, session_id: str) -> _Entry | None:
        entry = self._items.get(session_id)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            del self._items[session_id]
            return None
        self._items.move_to_end(session_id)  # in use: the last a full store drops
        return entry

    def _put(self, record: SessionRecord, entry: _Entry, ttl: TTL) -> str:
        """Store ``entry`` as the record's latest state; the record learns what was kept."""
        session_id = record.id
        entry.accessed = record.accessed
        entry.agent, entry.ip = record.agent, record.ip
        entry.linked = later(entry.linked, record.linked)
        entry.watched = later(entry.watched, record.watched)
        record.max_age, record.linked, record.watched = entry.max_age, entry.linked, entry.watched
        now = time.monotonic()
        entry.expires = now + ttl_of(ttl, record)
        self._items[session_id] = entry
        self._items.move_to_end(session_id)
        if now >= self._next_sweep:
            self._sweep(now)
        if self._max_sessions is not None:
            while len(self._items) > self._max_sessions:
                self._items.popitem(last=False)
                if not self._full_warned:
                    self._full_warned = True
                    log.warning(
                        "MemoryStore holds max_sessions=%d sessions: the least recently used "
                        "are dropped (their users log in again); raise max_sessions or use a "
                        "server-side store",
                        self._max_sessions,
                    )
            # Dropped sessions leave their users' links: pruned once they could outnumber
            # the sessions twice over, so the index stays bounded too (amortised O(1)).
            if len(self._users) > 2 * self._max_sessions:
                self._prune_users()
        return session_id

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_interval
        dead = [sid for sid, entry in self._items.items() if entry.expires <= now]
        for sid in dead:
            del self._items[sid]
        self._prune_users()

    def _prune_users(self) -> None:
        """Drop the index's links to sessions no longer held: O(links). (Intersecting each
        user's set with the store's dict built a set of every session per user: minutes for
        100,000 users.)"""
        items = self._items
        kept = {}
        for user, linked in self._users.items():
            alive = {sid for sid in linked if sid in items}
            if alive:
                kept[user] = alive
        self._users = kept

    async def load(self, token: str) -> SessionRecord | None:
        # Any string is a safe dict key: an id of the wrong shape is simply not found.
        entry = self._entry(token)
        if entry is None:
            return None
        stored = entry.data
        data = copy_decoded(stored) if isinstance(stored, dict) else self._decoded(token, stored)
        if data is None:
            return None
        return SessionRecord(
            token,
            data,
            entry.created,
            entry.accessed,
            entry.max_age,
            entry.linked,
            entry.watched,
            entry.agent,
            entry.ip,
        )

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        if changes is None:
            stored: dict[str, Any] | str
            if self._codec is None:
                stored = _as_stored(record.data)
            else:
                stored = self._encoded(record.created, record.data)
            entry = _Entry(
                0.0, stored, record.created, None, record.max_age, record.linked, record.watched
            )
        else:
            found = self._entry(record.id)
            if found is None:
                return None
            entry = found
            written: Mapping[str, Any]
            if isinstance(entry.data, dict):  # changed in place, once the new values encode
                data, written = entry.data, _as_stored(dict(changes.set))
            else:  # decoded, changed, encoded again
                decoded = self._decoded(record.id, entry.data)
                if decoded is None:
                    return None  # unreadable: gone, as on a store that keeps bytes
                data, written = decoded, changes.set
            for key in changes.removed:
                data.pop(key, None)
            data.update(written)
            if data is not entry.data:
                entry.data = self._encoded(entry.created, data)
            if changes.max_age:
                entry.max_age = record.max_age
        return self._put(record, entry, ttl)

    def _encoded(self, created: int, data: dict[str, Any]) -> str:
        """The text the store's encoder writes for ``data``; SerializationError if it fails."""
        return dump_record(SessionRecord("", data, created), codec=self._codec)

    def _decoded(self, session_id: str, text: str) -> dict[str, Any] | None:
        """The data in an entry's text, or None (and a warning) when the decoder refuses it."""
        try:
            return load_record(session_id, text, self._codec).data
        except ValueError:
            log.warning("ignoring a corrupt session record in memory (the decoder refused it)")
            return None

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        entry = self._entry(record.id)
        if entry is None:
            return None
        return self._put(record, entry, ttl)

    async def delete(self, session_id: str) -> bool:
        return self._items.pop(session_id, None) is not None

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        self._users.setdefault(user, set()).add(session_id)

    async def user_sessions(self, user: str) -> list[str]:
        linked = self._users.get(user, set())
        linked.intersection_update([sid for sid in linked if self._entry(sid) is not None])
        if not linked:
            self._users.pop(user, None)
        return sorted(linked)

    async def count(self) -> int:
        self._sweep(time.monotonic())
        return len(self._items)

    async def clear(self) -> None:
        self._items.clear()
        self._users.clear()


def _as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """What a JSON store would give back for ``data`` (tuples become lists, and so on).

    Encoding also refuses what JSON cannot hold, with the same SerializationError.
    """
    stored: dict[str, Any] = decode(dump_data(data))
    return stored
