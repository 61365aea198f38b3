"""The async store protocol that every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias


@dataclass(slots=True)
class SessionRecord:
    """What a store keeps for one session.

    ``created`` is whole epoch seconds, as aiohttp-session writes it. ``accessed`` is the
    last time the session was saved or touched (None for records written by aiohttp-session).
    ``max_age`` is a per-session cookie lifetime that overrides the configured one.
    ``linked`` is when the session's entry in its user's index may expire (epoch seconds),
    so the manager knows when to renew it. ``watched`` is until when a socket in some process
    watches the session (a lease its registry renews), so saves publish their changes.
    ``stamp`` is the store's own: e.g. the raw value it loaded, for optimistic concurrency.
    """

    id: str
    data: dict[str, Any]
    created: int
    accessed: float | None = None
    max_age: int | None = None
    linked: float | None = None
    watched: float | None = None
    agent: str | None = None
    ip: str | None = None
    stamp: Any = field(default=None, repr=False, compare=False)


@dataclass(slots=True, frozen=True)
class Changes:
    """The keys one request wrote and deleted, merged into the stored data on save.

    Merging key by key (instead of overwriting the whole record) is what lets concurrent
    requests on one session keep each other's writes.
    """

    set: Mapping[str, Any] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    #: True when the request set ``max_age``: only then is the stored one replaced, so a
    #: concurrent request cannot roll back a "remember me".
    max_age: bool = False


#: A record's TTL in seconds, or a function of the record as finally stored (after a merge
#: with what other requests wrote, whose ``max_age`` may differ from the caller's).
TTL: TypeAlias = "float | Callable[[SessionRecord], float]"


def ttl_of(ttl: TTL, record: SessionRecord) -> float:
    """The TTL in seconds for ``record`` as it is about to be stored."""
    return ttl if isinstance(ttl, (int, float)) else ttl(record)


class Store(ABC):
    """An async session store.

    ``load`` receives the raw cookie value and ``save``/``touch`` return the cookie value
    to send back. For server-side stores both are the session id; a store that keeps the
    whole session in the cookie (``stateless = True``) returns an encrypted token instead.
    """

    stateless: ClassVar[bool] = False
    """True when the session lives in the cookie and the server keeps nothing."""
    shares_events: ClassVar[bool] = False
    """True when ``publish`` reaches the other processes that share this store."""

    @abstractmethod
    async def load(self, token: str) -> SessionRecord | None:
        """Return the live record for a cookie value, or None (unknown, expired, corrupt)."""

    @abstractmethod
    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        """Store a session and return the cookie value for it.

        ``changes`` None creates or replaces the record with ``record.data``. Otherwise the
        changes are merged atomically into the stored data (``merge``); when the record no
        longer exists (invalidated or expired meanwhile) nothing is written and None is
        returned, so a logged-out session is never brought back by a late request. After a
        merge, ``record.max_age`` and ``record.linked`` are set to what was stored.
        """

    @abstractmethod
    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        """Extend a session's lifetime and record ``record.accessed``, keeping the stored data
        and ``max_age`` (copied into ``record``); None if it is gone."""

    @abstractmethod
    async def delete(self, session_id: str) -> bool:
        """Remove a session; True if it existed."""

    @abstractmethod
    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        """Remember that ``session_id`` belongs to ``user`` (for "log out everywhere")."""

    @abstractmethod
    async def user_sessions(self, user: str) -> list[str]:
        """The ids of the live sessions linked to ``user``."""

    @abstractmethod
    async def count(self) -> int:
        """Return how many live sessions the store holds."""

    @abstractmethod
    async def clear(self) -> None:
        """Remove every session of this store."""

    async def publish(self, message: str) -> None:  # noqa: B027 - optional, empty by default
        """Send an event (a revocation, a push, a change) to the other processes sharing
        this store."""

    async def listen(self) -> AsyncIterator[str]:
        """Yield what other processes publish, until cancelled; raise StoreUnavailable on
        failure (the caller retries). Only called when ``shares_events`` is True."""
        raise NotImplementedError
        yield  # pragma: no cover - makes this an async generator

    async def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections and files; called on application cleanup."""


def merge(current: SessionRecord, record: SessionRecord, changes: Changes) -> SessionRecord:
    """Apply one request's changes to the record a store holds now.

    The stored ``max_age`` is kept unless this request set one; ``linked`` keeps the later of
    the two, and so ``watched``. Empty changes are a touch: only ``accessed`` moves, and the
    device fields, which are the writer's as ``accessed`` is.
    """
    data = dict(current.data)
    for key in changes.removed:
        data.pop(key, None)
    data.update(changes.set)
    return SessionRecord(
        id=current.id,
        data=data,
        created=current.created,
        accessed=record.accessed,
        max_age=record.max_age if changes.max_age else current.max_age,
        linked=later(current.linked, record.linked),
        watched=later(current.watched, record.watched),
        agent=record.agent,
        ip=record.ip,
    )


def later(a: float | None, b: float | None) -> float | None:
    """The later of two optional times."""
    if a is None:
        return b
    return a if b is None or a >= b else b


def adopt(record: SessionRecord, stored: SessionRecord) -> None:
    """Tell the caller's record what a merge stored: its lifetime and lease fields."""
    record.max_age, record.linked, record.watched = stored.max_age, stored.linked, stored.watched
