"""The socket registry: which sockets each session and user opened in this process.

A WebSocket outlives the request that opened it, while its session can be logged out in
another tab, regenerated, changed or expire. The registry binds sockets to sessions and
users, closes them on revocation, and hands expiry, push and change events to ``expiry.py``,
``push.py`` and ``changes.py``; ``events.py`` carries the events between processes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from .events import Events, fingerprint, strings

if TYPE_CHECKING:
    from .manager import SessionManager
    from .session import Session

log = logging.getLogger("aio_sessions")

CLOSE_SESSION_REVOKED: Final = 4001
"""Close code of a socket whose session was invalidated, regenerated, deleted or logged out
everywhere; the close reason is ``session revoked``."""
CLOSE_SESSION_EXPIRED: Final = 4002
"""Close code of a socket whose session passed its idle or absolute timeout; the close
reason is ``session expired``."""
CLOSE_SESSION_FORBIDDEN: Final = 4003
"""Close code of a guarded socket whose session lost a key ``require_session`` asked for, or
failed its check; the close reason is ``session forbidden``."""

_REASONS = {
    CLOSE_SESSION_REVOKED: b"session revoked",
    CLOSE_SESSION_EXPIRED: b"session expired",
    CLOSE_SESSION_FORBIDDEN: b"session forbidden",
}
#: A guard's session check: a plain or async callable taking the Session.
Check = Callable[["Session"], "bool | Awaitable[bool]"]


@dataclass(slots=True, frozen=True)
class Guard:
    """What ``require_session`` asked of a socket's session, re-checked on every change."""

    keys: tuple[str, ...]
    check: Check | None = None


#: Sockets by id(ws).
_Sockets = dict[int, web.WebSocketResponse]


@dataclass(slots=True, eq=False)
class Binding:
    """One open socket and the session it was opened with (package-internal)."""

    ws: web.WebSocketResponse
    session: Session
    session_key: str
    user_key: str | None
    guard: Guard | None = None
    deadline: float = math.inf
    timer: asyncio.TimerHandle | None = None
    #: Keys changed since ``session_changes`` last yielded, and its waiter.
    changed: set[str] | None = None
    waiter: asyncio.Future[None] | None = None
    #: Frames pushed and not yet sent, and whether a task is sending them.
    outbox: deque[str | bytes] | None = None
    sending: bool = False


class SocketRegistry:
    """The WebSockets open in this process, by session and by user.

    Reach it as ``get_manager(app).sockets``.
    """

    def __init__(self, manager: SessionManager, events: Events) -> None:
        from .changes import ChangeFeed
        from .expiry import Expiry
        from .push import Pusher

        self._manager = manager
        self._events = events
        # Keyed by id(ws): a response's __hash__ is Python code, an int's is not. A binding
        # holds its socket, so an id cannot be reused while it is a key here.
        self._bindings: dict[int, Binding] = {}
        self._by_session: dict[str, _Sockets] = {}
        self._by_user: dict[str, _Sockets] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        events.on("revoke", self._on_revoke)
        self._pusher = Pusher(self, events)
        #: Live session changes: reloads, guard re-checks, ``session_changes``.
        self.changes = ChangeFeed(self, manager, events)
        self._expiry = Expiry(self, manager)

    # -- what users can ask -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._bindings)

    def for_session(self, session_id: str) -> list[web.WebSocketResponse]:
        """The open sockets that were opened with this session."""
        return list(self._by_session.get(fingerprint(session_id), {}).values())

    def for_user(self, user: str | int) -> list[web.WebSocketResponse]:
        """The open sockets whose session belongs to ``user`` (the ``user_key`` value)."""
        return list(self._by_user.get(fingerprint(self._manager.user_name(user)), {}).values())

    async def send_to_user(self, user: str | int, message: Any) -> int:
        """Send ``message`` to every open socket of ``user``, in every process.

        A ``str`` goes as a text frame, ``bytes`` as a binary frame, anything else as JSON
        text. Returns how many sockets of this process it was queued for. Delivery is at
        most once: a socket whose queue is full, or that closes, misses it.
        """
        key = fingerprint(self._manager.user_name(user))
        return await self._pusher.send(message, users=[key])

    async def send_to_session(self, session_id: str, message: Any) -> int:
        """Send ``message`` to every open socket of one session, in every process (as
        ``send_to_user``)."""
        return await self._pusher.send(message, sessions=[fingerprint(session_id)])

    # -- for the other socket modules ---------------------------------------------------

    def bindings(self, sessions: Iterable[str] = (), users: Iterable[str] = ()) -> list[Binding]:
        """The bindings of the sockets of these session and user fingerprints."""
        found: dict[int, Binding] = {}
        for index, keys in ((self._by_session, sessions), (self._by_user, users)):
            for key in keys:
                for ws_id in index.get(key, ()):
                    found[ws_id] = self._bindings[ws_id]
        return list(found.values())

    def every_binding(self) -> list[Binding]:
        """The bindings of every open socket (a copy)."""
        return list(self._bindings.values())

    def binding(self, ws: web.WebSocketResponse) -> Binding | None:
        """The binding of an open socket, if it is bound."""
        return self._bindings.get(id(ws))

    def close(self, bindings: Iterable[Binding], code: int) -> int:
        """Start closing these sockets without waiting for their peers; return how many."""
        return self._close([b.ws for b in bindings], code)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a task the registry waits for on shutdown."""
        self._spawn(coro)

    # -- binding (the middleware, at the handshake and when the handler returns) ---------

    def bind(self, ws: web.WebSocketResponse, session: Session, guard: Guard | None = None) -> None:
        """Register a socket opened with ``session``."""
        user = self._manager.session_user(session)
        binding = Binding(
            ws,
            session,
            fingerprint(session.id),
            None if user is None else fingerprint(user),
            guard,
        )
        key = id(ws)
        self._bindings[key] = binding
        self._by_session.setdefault(binding.session_key, {})[key] = ws
        if binding.user_key is not None:
            self._by_user.setdefault(binding.user_key, {})[key] = ws
        self._expiry.schedule(binding, session.expires_at or math.inf)
        if self._events.shared:
            self._expiry.sweep()  # it renews the sessions' watch leases

    def unbind(self, ws: web.WebSocketResponse) -> None:
        """Forget a socket: its handler returned, or it is being closed."""
        key = id(ws)
        binding = self._bindings.pop(key, None)
        if binding is None:
            return
        if binding.timer is not None:
            binding.timer.cancel()
        _remove(self._by_session, binding.session_key, key)
        if binding.user_key is not None:
            _remove(self._by_user, binding.user_key, key)
        binding.outbox = None
        if binding.waiter is not None and not binding.waiter.done():
            binding.waiter.set_result(None)  # ends its session_changes iterator

    # -- closing ------------------------------------------------------------------------

    def _close(self, sockets: Iterable[web.WebSocketResponse], code: int) -> int:
        """Start closing sockets without waiting for their peers; return how many."""
        count = 0
        for ws in list(sockets):
            self.unbind(ws)
            if not ws.closed:
                self._spawn(ws.close(code=code, message=_REASONS[code]))
                count += 1
        return count

    async def revoke(
        self,
        session_ids: Iterable[str] = (),
        users: Iterable[str] = (),
        code: int = CLOSE_SESSION_REVOKED,
    ) -> int:
        """Close the sockets of these sessions and users here and in every other process.

        Returns how many sockets this process closed.
        """
        sessions = [fingerprint(sid) for sid in session_ids]
        user_keys = [fingerprint(str(user)) for user in users]
        if not sessions and not user_keys:
            return 0
        closed = self.close(self.bindings(sessions, user_keys), code)
        await self._events.publish("revoke", sessions=sessions, users=user_keys, code=code)
        return closed

    def _on_revoke(self, doc: dict[str, Any]) -> None:
        code = int(doc["code"])
        if code not in _REASONS:
            raise ValueError(code)
        self.close(self.bindings(strings(doc["sessions"]), strings(doc["users"])), code)

    # -- lifecycle ------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Listen for other processes' events, when the store carries them."""
        await self._events.start()

    async def stop(self) -> None:
        """Stop listening and cancel the expiry timers."""
        await self._events.stop()
        await self._expiry.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _remove(index: dict[str, _Sockets], key: str, ws_id: int) -> None:
    sockets = index.get(key)
    if sockets is not None:
        sockets.pop(ws_id, None)
        if not sockets:
            del index[key]
