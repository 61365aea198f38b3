"""Live session changes: sockets that see what HTTP requests and other sockets saved.

When a session is saved, each other socket bound to it in this process reloads it, has its
guard re-checked (closed with 4003 when it no longer passes) and wakes its
``session_changes`` iterator. Other processes hear of the save over the store's event
channel, but only for sessions a socket watches (``ChangeFeed.watch``), so a write to a
session that no socket is bound to costs nothing more.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .errors import StoreUnavailable
from .events import Events, fingerprint, strings
from .registry import CLOSE_SESSION_FORBIDDEN, Binding, Guard
from .session import pending_of, record_of
from .stores._json import copy_decoded
from .stores.base import SessionRecord

if TYPE_CHECKING:
    from .manager import SessionManager
    from .registry import SocketRegistry
    from .session import Session

log = logging.getLogger("aio_sessions")

# How long a socket's watch of its session lasts unless its registry renews it (seconds).
_WATCH_LEASE = 600.0


class ChangeFeed:
    """Fans a saved session's changed keys out to the sockets bound to it."""

    def __init__(self, registry: SocketRegistry, manager: SessionManager, events: Events) -> None:
        self._registry = registry
        self._manager = manager
        self._events = events
        events.on("changed", self._on_changed)

    async def watch(self, session: Session) -> None:
        """Mark a session as watched by a socket, so saves in other processes publish their
        changes: a lease, renewed by the registry's sweep while the socket is open
        (shared-event stores only)."""
        if not self.watch_due(session):
            return
        record = record_of(session)
        now = time.time()
        record.watched = now + _WATCH_LEASE
        record.accessed = now  # the handshake is activity
        try:
            await self._manager.store.touch(record, self._manager.ttl_at(now))
        except StoreUnavailable as exc:
            log.warning("cannot mark a socket's session as watched: %s", exc)

    def watch_due(self, session: Session) -> bool:
        """Whether a socket's session needs its watch lease stored or renewed (cheap)."""
        if not self._manager.store.shares_events or session.new:
            return False
        watched = record_of(session).watched
        return watched is None or watched <= time.time() + _WATCH_LEASE / 2

    async def _reload_keeping(self, session: Session) -> None:
        """Reload a session from the store, keeping the changes it has not saved yet."""
        if session.new or self._manager.store.stateless:
            return
        unsaved = pending_of(session).changed
        changed = dict(unsaved)
        values = record_of(session).data
        pending = {key: values[key] for key, kept in changed.items() if kept}
        await self._manager.reload(session)
        if session.new:
            return
        data = record_of(session).data
        for key, kept in changed.items():
            if kept:
                data[key] = pending[key]
            else:
                data.pop(key, None)
        unsaved.update(changed)

    @staticmethod
    def _apply(session: Session, keys: frozenset[str], values: Mapping[str, Any]) -> None:
        """Give a session the values another request saved under ``keys`` (absent: removed),
        except those it changed itself and has not saved yet."""
        data = record_of(session).data
        fresh = copy_decoded({k: v for k, v in values.items() if k in keys})  # no aliasing
        for key in keys - pending_of(session).changed.keys():
            if key in fresh:
                data[key] = fresh[key]
            else:
                data.pop(key, None)

    async def saved(
        self, saver: Session | None, record: SessionRecord, keys: frozenset[str]
    ) -> None:
        """A save wrote ``keys`` into ``record``: tell the session's other sockets here and,
        while a socket watches it, in the other processes (the ``saver`` is told nothing)."""
        watched = record.watched is not None and record.watched > time.time()
        if not watched and not self._registry:  # the usual write: no socket here or watching
            return
        key = fingerprint(record.id)
        # A cookie store has nothing to reload from: the saved values travel with the change.
        values = {k: record.data[k] for k in keys if k in record.data}
        snapshot = values if self._manager.store.stateless else None
        self._notify(self._registry.bindings([key]), keys, saver=saver, snapshot=snapshot)
        if watched and self._events.shared:
            await self._events.publish("changed", session=key, keys=sorted(keys))

    def _on_changed(self, doc: dict[str, Any]) -> None:
        keys = frozenset(strings(doc["keys"]))
        session = strings([doc["session"]])
        self._notify(self._registry.bindings(session), keys, saver=None)

    def _notify(
        self,
        bindings: list[Binding],
        keys: frozenset[str],
        saver: Session | None,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        for binding in bindings:
            if binding.session is not saver:
                self._registry.spawn(self._refresh(binding, keys, snapshot))

    async def _refresh(
        self, binding: Binding, keys: frozenset[str], snapshot: dict[str, Any] | None
    ) -> None:
        """Reload the socket's session (or apply the saved values), re-check its guard, wake
        its iterator."""
        session = binding.session
        try:
            if snapshot is None:
                await self._reload_keeping(session)
            else:
                self._apply(session, keys, snapshot)
        except StoreUnavailable as exc:
            log.warning("cannot reload a socket's session: %s", exc)
            return
        if session.new:  # ended meanwhile: its revocation closes the socket
            return
        if binding.guard is not None and not await passes(session, binding.guard):
            self._registry.close([binding], CLOSE_SESSION_FORBIDDEN)
            return
        if binding.changed is None:
            binding.changed = set()
        binding.changed |= keys
        if binding.waiter is not None and not binding.waiter.done():
            binding.waiter.set_result(None)


async def passes(session: Session, guard: Guard) -> bool:
    """Whether a session passes a guard: every key present and the check true.

    A check that raises fails closed (and is logged): a broken check must not let anyone in.
    """
    if any(key not in session for key in guard.keys):
        return False
    if guard.check is None:
        return True
    try:
        result = guard.check(session)
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        log.exception("a require_session check raised: access refused")
        return False
    return bool(result)


async def session_changes(
    ws: web.WebSocketResponse, *, read: bool = True
) -> AsyncIterator[frozenset[str]]:
    """Yield the keys of the socket's session that were set or removed by a save anywhere
    (an HTTP request in any process, ``manager.update``, another socket), each time after
    the socket's session has been reloaded with them.

    It ends when the socket closes or its session ends. With ``read=True`` (the default,
    for sockets that only push) it also reads the socket while waiting, so a client's close
    ends it; messages the client sends are passed over. A handler that reads messages itself
    runs it in another task with ``read=False``. Raises RuntimeError before ``ws.prepare()``.
    """
    from .middleware import bound_to

    registry = bound_to(ws)[1]
    binding = registry.binding(ws)
    if binding is None:
        return
    reader: asyncio.Task[Any] | None = None
    try:
        while registry.binding(ws) is binding and not ws.closed:
            if binding.changed:
                keys, binding.changed = frozenset(binding.changed), None
                yield keys
                continue
            binding.waiter = asyncio.get_running_loop().create_future()
            waits: set[asyncio.Future[Any]] = {binding.waiter}
            if read:
                if reader is None:
                    reader = asyncio.ensure_future(ws.receive())
                waits.add(reader)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            binding.waiter = None
            if reader is not None and reader.done():
                message = reader.result()
                reader = None
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    return
                if message.type is WSMsgType.ERROR:
                    return
    finally:
        if reader is not None:
            reader.cancel()
