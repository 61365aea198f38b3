"""Socket activity, ``setup(ws_touch=True)``: what a socket receives keeps its session alive.

Every data message a socket receives is activity of the session it was opened with. The
store is touched off the receive path, and only when ``SessionConfig.touch_due`` says a
read-only request would touch it: throttled per session, however many messages and sockets
it has in this process. A store that fails is logged and asked again on the next message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import WSMessage, WSMsgType, web

from ._checks import describe
from .errors import StoreUnavailable
from .session import Session, note_activity
from .stores.base import SessionRecord

if TYPE_CHECKING:
    from .manager import SessionManager

log = logging.getLogger("aio_sessions")

_DATA = frozenset((WSMsgType.TEXT, WSMsgType.BINARY))


@dataclass(slots=True, eq=False)
class _Seen:
    """What this process knows of one session's activity, shared by its sockets."""

    sockets: int = 0
    #: The stored record as the last touch left it or found it: when activity was recorded.
    record: SessionRecord | None = None
    ended: bool = False
    busy: bool = False  # a touch is under way: the messages meanwhile need none


class _Receiver:
    """Stands in for one socket's ``receive``: the same messages, noted as activity."""

    __slots__ = ("activity", "receive", "seen", "session", "session_id")

    def __init__(
        self,
        activity: SocketActivity,
        receive: Callable[[float | None], Awaitable[WSMessage]],
        session: Session,
        seen: _Seen,
    ) -> None:
        self.activity = activity
        self.receive = receive
        self.session = session
        self.session_id = session.id
        self.seen = seen

    async def __call__(self, timeout: float | None = None) -> WSMessage:
        msg = await self.receive(timeout)
        if msg.type in _DATA:
            self.activity.note(self)
        return msg


class SocketActivity:
    """Turns the messages sockets receive into touches of their sessions."""

    def __init__(self, manager: SessionManager) -> None:
        if manager.store.stateless:
            store = type(manager.store).__name__
            raise ValueError(
                describe(
                    "ws_touch",
                    True,
                    f"False with {store}: the session lives in the cookie, which a socket "
                    "cannot renew",
                    "keep sockets alive with a server-side store (RedisStore, SQLiteStore...)",
                )
            )
        self._manager = manager
        self._seen: dict[str, _Seen] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, ws: web.WebSocketResponse, session: Session) -> None:
        """Count what ``ws`` receives as activity of ``session`` (at the handshake)."""
        seen = self._seen.get(session.id)
        if seen is None:
            seen = self._seen[session.id] = _Seen()
        seen.sockets += 1
        # An instance attribute shadows the method, for this socket only.
        vars(ws)["receive"] = _Receiver(self, ws.receive, session, seen)

    def release(self, ws: web.WebSocketResponse) -> None:
        """Stop watching a socket whose handler returned (which breaks the ws-receiver cycle)."""
        receiver = vars(ws).pop("receive", None)
        if not isinstance(receiver, _Receiver):
            return
        seen = receiver.seen
        seen.sockets -= 1
        if not seen.sockets:
            del self._seen[receiver.session_id]

    def note(self, receiver: _Receiver) -> None:
        """A message arrived: schedule a touch when one is due; never wait for the store."""
        seen = receiver.seen
        if seen.busy or seen.ended:
            return
        now = time.time()
        session = receiver.session
        if session.new:  # not stored yet: only the socket's own deadline moves
            note_activity(session, now)
            return
        if seen.record is not None and not self._manager.config.touch_due(seen.record, now):
            return
        seen.busy = True
        task = asyncio.ensure_future(self._touch(receiver.session_id, seen))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, session_id: str, seen: _Seen) -> None:
        try:
            record = await self._manager.record_activity(session_id)
        except StoreUnavailable as exc:
            log.warning("socket activity not recorded (%s); retrying on the next message", exc)
        except Exception:  # any failure: the socket must outlive it
            log.exception("socket activity not recorded; retrying on the next message")
        else:
            seen.record = record
            seen.ended = record is None
        finally:
            seen.busy = False

    async def stop(self) -> None:
        """End the touches under way (on app cleanup, before the store closes).

        Cancelled, not awaited: a touch is worth nothing once the app stops, and a store
        that hangs must not hang the shutdown.
        """
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
