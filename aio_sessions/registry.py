"""The socket registry and live revocation.

A WebSocket outlives the request that opened it, while its session can be logged out in
another tab, regenerated, or expire. The registry knows which sockets each session and each
user opened in this process; revocations close them, and stores shared by several processes
(Redis) carry revocations to the others over pub/sub.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from .errors import StoreUnavailable

if TYPE_CHECKING:
    from .manager import SessionManager
    from .session import Session

log = logging.getLogger("aio_sessions")

#: Close code of a socket whose session was invalidated, regenerated or logged out.
CLOSE_SESSION_REVOKED: Final = 4001
#: Close code of a socket whose session passed its idle or absolute timeout.
CLOSE_SESSION_EXPIRED: Final = 4002

_REASONS = {CLOSE_SESSION_REVOKED: b"session revoked", CLOSE_SESSION_EXPIRED: b"session expired"}
# Sockets whose session ends within this many seconds get a timer; the others, the sweep.
_HORIZON = 120.0
# Retry delays of the revocation listener after the store's pub/sub fails, in seconds.
_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)


@functools.lru_cache(maxsize=16384)  # one per active session or user, not per socket
def _fingerprint(value: str) -> str:
    """What crosses processes instead of a session id or a user name: a hash of it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


#: Sockets by id(ws).
_Sockets = dict[int, web.WebSocketResponse]


@dataclass(slots=True, eq=False)
class _Binding:
    ws: web.WebSocketResponse
    session: Session
    session_key: str
    user_key: str | None
    deadline: float = math.inf
    timer: asyncio.TimerHandle | None = None


class SocketRegistry:
    """The WebSockets open in this process, by session and by user.

    Reach it as ``get_manager(app).sockets``.
    """

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager
        # Keyed by id(ws): a response's __hash__ is Python code, an int's is not. A binding
        # holds its socket, so an id cannot be reused while it is a key here.
        self._bindings: dict[int, _Binding] = {}
        self._by_session: dict[str, _Sockets] = {}
        self._by_user: dict[str, _Sockets] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._origin = secrets.token_hex(8)  # tells this process's broadcasts apart
        self._listener: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    # -- what users can ask -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._bindings)

    def for_session(self, session_id: str) -> list[web.WebSocketResponse]:
        """The open sockets that were opened with this session."""
        return list(self._by_session.get(_fingerprint(session_id), {}).values())

    def for_user(self, user: str) -> list[web.WebSocketResponse]:
        """The open sockets whose session belongs to ``user`` (the ``user_key`` value)."""
        return list(self._by_user.get(_fingerprint(user), {}).values())

    # -- binding ------------------------------------------------------------------------

    def _add(self, ws: web.WebSocketResponse, session: Session) -> None:
        user = self._manager.session_user(session)
        binding = _Binding(
            ws, session, _fingerprint(session.id), None if user is None else _fingerprint(user)
        )
        key = id(ws)
        self._bindings[key] = binding
        self._by_session.setdefault(binding.session_key, {})[key] = ws
        if binding.user_key is not None:
            self._by_user.setdefault(binding.user_key, {})[key] = ws
        self._schedule_expiry(binding, session.expires_at or math.inf)

    def _discard(self, ws: web.WebSocketResponse) -> None:
        key = id(ws)
        binding = self._bindings.pop(key, None)
        if binding is None:
            return
        if binding.timer is not None:
            binding.timer.cancel()
        _remove(self._by_session, binding.session_key, key)
        if binding.user_key is not None:
            _remove(self._by_user, binding.user_key, key)

    # -- closing ------------------------------------------------------------------------

    def _close(self, sockets: Iterable[web.WebSocketResponse], code: int) -> int:
        """Start closing sockets without waiting for their peers; return how many."""
        count = 0
        for ws in list(sockets):
            self._discard(ws)
            if not ws.closed:
                self._spawn(ws.close(code=code, message=_REASONS[code]))
                count += 1
        return count

    def _close_keys(self, sessions: Iterable[str], users: Iterable[str], code: int) -> int:
        sockets: _Sockets = {}
        for key in sessions:
            sockets.update(self._by_session.get(key, {}))
        for key in users:
            sockets.update(self._by_user.get(key, {}))
        return self._close(sockets.values(), code)

    async def revoke(
        self,
        session_ids: Iterable[str] = (),
        users: Iterable[str] = (),
        code: int = CLOSE_SESSION_REVOKED,
    ) -> int:
        """Close the sockets of these sessions and users here and in every other process.

        Returns how many sockets this process closed.
        """
        sessions = [_fingerprint(sid) for sid in session_ids]
        user_keys = [_fingerprint(str(user)) for user in users]
        if not sessions and not user_keys:
            return 0
        closed = self._close_keys(sessions, user_keys, code)
        store = self._manager.store
        if store.shares_events:
            message = {
                "origin": self._origin,
                "sessions": sessions,
                "users": user_keys,
                "code": code,
            }
            await store.publish(json.dumps(message))
        return closed

    def _on_message(self, raw: str) -> None:
        try:
            message = json.loads(raw)
            if message["origin"] == self._origin:
                return
            code = int(message["code"])
            if code not in _REASONS:
                raise ValueError(code)
            self._close_keys(message["sessions"], message["users"], code)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed revocation message")

    # -- expiry of open sockets -----------------------------------------------------------

    def _schedule_expiry(self, binding: _Binding, deadline: float) -> None:
        """A timer for a deadline within the horizon; the sweep covers later ones."""
        binding.deadline = deadline
        binding.timer = None
        if deadline == math.inf:
            return
        delay = deadline - time.time()
        if delay <= _HORIZON:
            loop = asyncio.get_running_loop()
            binding.timer = loop.call_later(max(delay, 0.05), self._expiry_due, binding)
        elif self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Every half horizon, give a timer to the sockets whose deadline came near.

        Most sessions end days away; one timer per socket for those would only fill the
        event loop's heap.
        """
        while True:
            await asyncio.sleep(_HORIZON / 2)
            now = time.time()
            for binding in list(self._bindings.values()):
                if binding.timer is None and binding.deadline - now <= _HORIZON:
                    self._schedule_expiry(binding, binding.deadline)

    def _expiry_due(self, binding: _Binding) -> None:
        if self._bindings.get(id(binding.ws)) is binding:
            self._spawn(self._check_expiry(binding))

    async def _check_expiry(self, binding: _Binding) -> None:
        """At the deadline, ask the store: HTTP requests may have extended the session."""
        manager = self._manager
        session = binding.session
        deadline: float | None = session.expires_at or math.inf
        if not manager.store.stateless and not session.new:
            try:
                deadline = await manager.expires_at(session.id)
            except StoreUnavailable:
                self._schedule_expiry(binding, time.time() + 5)
                return
        if deadline is None or deadline <= time.time():
            self._close([binding.ws], CLOSE_SESSION_EXPIRED)
        else:
            self._schedule_expiry(binding, deadline)

    # -- lifecycle ------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Listen for other processes' revocations, when the store carries them."""
        if self._manager.store.shares_events and self._listener is None:
            self._stopping = False
            self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                async for raw in self._manager.store.listen():
                    failures = 0
                    self._on_message(raw)
                    if self._stopping:
                        return
            except Exception as exc:  # any failure: the listener must outlive it
                delay = _BACKOFF[min(failures, len(_BACKOFF) - 1)]
                failures += 1
                if isinstance(exc, StoreUnavailable):
                    log.warning(
                        "revocation listener lost the store (%s); retrying in %ss", exc, delay
                    )
                else:
                    log.exception("revocation listener failed; retrying in %ss", delay)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Stop listening and cancel the expiry timers."""
        self._stopping = True
        listener, self._listener = self._listener, None
        # A client library may swallow one cancellation (redis-py can, after its pool was
        # closed): cancel until the task is really done.
        while listener is not None and not listener.done():
            listener.cancel()
            await asyncio.wait({listener}, timeout=0.1)
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        for binding in self._bindings.values():
            if binding.timer is not None:
                binding.timer.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _remove(index: dict[str, _Sockets], key: str, ws_id: int) -> None:
    sockets = index.get(key)
    if sockets is not None:
        sockets.pop(ws_id, None)
        if not sockets:
            del index[key]


def bind(registry: SocketRegistry, ws: web.WebSocketResponse, session: Session) -> None:
    """Register a socket opened with ``session`` (the middleware, at the handshake)."""
    registry._add(ws, session)


def unbind(registry: SocketRegistry, ws: web.WebSocketResponse) -> None:
    """Forget a socket whose handler returned (the middleware)."""
    registry._discard(ws)
