"""The async store API over blocking storage (SQLite, files), run in one worker thread."""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from .._checks import check_positive
from .._ids import valid_id
from ..errors import StoreUnavailable
from ._codec import Codec
from ._json import dump_record
from .base import TTL, Changes, SessionRecord, Store, adopt, merge, ttl_of

T = TypeVar("T")
_TOUCH = Changes()


class WouldBlock(Exception):
    """Raised by ``_on_loop`` when a call would wait there: it runs in the worker thread."""


class Busy(WouldBlock):
    """Raised by ``_on_loop`` when another connection holds the lock the call needs: it is
    tried again on the loop once ``until`` is done (the store's own job holding the lock),
    else after a pause, for up to ``_busy_wait`` seconds."""

    def __init__(self, until: asyncio.Future[Any] | None = None) -> None:
        super().__init__()
        self.until = until


#: The first pause before trying a busy call again, doubled up to the longest pause: what
#: SQLite's own busy handler does, without blocking the loop.
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


class BlockingStore(Store):
    """Runs a store's blocking primitives one at a time off the event loop.

    One thread means read-merge-write steps never interleave inside this process;
    ``_transaction`` (a SQLite transaction, a file lock) covers other processes.
    Subclasses name the exceptions that mean "the storage cannot be used now" in
    ``_unavailable``: they become StoreUnavailable. Loads, saves and touches are first
    offered to ``_on_loop``, which a subclass may override to run them on the event loop
    when they cannot block there.
    """

    _unavailable: tuple[type[BaseException], ...] = (OSError,)
    #: How long a call that ``_on_loop`` finds busy keeps trying before StoreUnavailable.
    _busy_wait = 0.0

    def __init__(self, name: str, call: str, sweep_interval: float, codec: Codec | None) -> None:
        """``call`` is how users write the constructor, for error messages; ``codec`` is the
        store's own encoder and decoder (None: JSON), for ``_read`` and ``_write``."""
        check_positive(
            "sweep_interval",
            sweep_interval,
            whole=False,
            unit="seconds",
            example=f"{call[:-1]}, sweep_interval=60)",
            optional=False,
        )
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0
        self._name = name
        self._codec = codec
        self._executor: ThreadPoolExecutor | None = None

    async def _run(self, fn: Callable[[], T], *, inline: bool = False) -> T:
        """``fn()`` in the worker thread; with ``inline``, on the loop if ``_on_loop`` can."""
        try:
            if inline:
                try:
                    return await self._on_loop_when_free(fn)
                except WouldBlock:
                    pass
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except self._unavailable as exc:
            raise StoreUnavailable(f"{self._name}: {type(exc).__name__}: {exc}") from exc

    async def _on_loop_when_free(self, fn: Callable[[], T]) -> T:
        """``_on_loop(fn)``, tried again after growing pauses while it is Busy.

        Waiting here instead of in the worker thread keeps a burst from piling up behind a
        lock in the thread's queue, where every later call would find the lock taken too.
        """
        pause, deadline = _FIRST_PAUSE, 0.0
        while True:
            try:
                return self._on_loop(fn)
            except Busy as exc:
                now = time.monotonic()
                deadline = deadline or now + self._busy_wait
                if now >= deadline:
                    raise StoreUnavailable(
                        f"{self._name}: still locked after {self._busy_wait:g}s ({exc.__cause__})"
                    ) from exc
                if exc.until is not None:
                    await asyncio.wait((exc.until,), timeout=deadline - now)
                    continue
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(2 * pause, _LONGEST_PAUSE)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the event loop, or raise WouldBlock (having changed nothing) when
        it would wait there. By default everything runs in the worker thread. An override
        must keep ``_transaction`` exclusive between the loop and the worker thread too."""
        raise WouldBlock

    # -- the blocking primitives, called in the worker thread (or through ``_on_loop``) ---

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[object]:
        """Hold off other writers (other processes too) for a read-merge-write."""

    @abstractmethod
    def _read(self, session_id: str) -> SessionRecord | None:
        """The live record, or None; a corrupt one is logged and treated as missing."""

    @abstractmethod
    def _write(self, record: SessionRecord, ttl: float) -> None:
        """Create or replace the record, to expire after ``ttl`` seconds."""

    @abstractmethod
    def _delete(self, session_id: str) -> bool: ...

    @abstractmethod
    def _link(self, user: str, session_id: str) -> None: ...

    @abstractmethod
    def _user_sessions(self, user: str) -> list[str]: ...

    @abstractmethod
    def _count(self) -> int: ...

    @abstractmethod
    def _clear(self) -> None: ...

    def _close(self) -> None:
        """Release what the primitives hold; they must reopen it on next use."""

    # -- the async API ------------------------------------------------------------------

    def _create(self, record: SessionRecord, ttl: TTL) -> str:
        with self._transaction():
            self._write(record, ttl_of(ttl, record))
        return record.id

    def _update(self, record: SessionRecord, changes: Changes, ttl: TTL) -> str | None:
        """Merge ``changes`` into the stored record; empty changes only extend its life."""
        with self._transaction():
            current = self._read(record.id)
            if current is None:
                return None
            merged = merge(current, record, changes)
            self._write(merged, ttl_of(ttl, merged))
        adopt(record, merged)
        return record.id

    async def load(self, token: str) -> SessionRecord | None:
        if not valid_id(token):
            return None
        return await self._run(lambda: self._read(token), inline=True)

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        if changes is None:
            dump_record(record, codec=self._codec)  # fail on bad values before touching storage
            return await self._run(lambda: self._create(record, ttl), inline=True)
        return await self._run(lambda: self._update(record, changes, ttl), inline=True)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        return await self._run(lambda: self._update(record, _TOUCH, ttl), inline=True)

    async def delete(self, session_id: str) -> bool:
        if not valid_id(session_id):
            return False
        return await self._run(lambda: self._delete(session_id))

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        await self._run(lambda: self._link(user, session_id))

    async def user_sessions(self, user: str) -> list[str]:
        return await self._run(lambda: self._user_sessions(user))

    async def count(self) -> int:
        return await self._run(self._count)

    async def clear(self) -> None:
        await self._run(self._clear)

    async def close(self) -> None:
        if self._executor is not None:
            await self._run(self._close)
            self._executor.shutdown(wait=True)
            self._executor = None
