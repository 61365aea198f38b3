"""SessionManager: loads and commits sessions, and works on them by id outside requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .config import SessionConfig, refuse_cookie_store
from .devices import Devices, EndCallback, SessionInfo
from .events import Events
from .registry import SocketRegistry
from .saving import changed_keys, save_existing, save_new
from .session import (
    Session,
    fresh_session,
    pending_of,
    record_of,
    replace_record,
    start_over,
)
from .stores.base import Changes, SessionRecord, Store
from .transport import Transport
from .users import UserIndex

log = logging.getLogger("aio_sessions")

# Browsers cap a cookie at 4096 bytes; anything longer is not ours.
_MAX_TOKEN = 4096
# Same-name cookies worth a store lookup: a cookie or two of other paths, never hundreds.
_MAX_TRIED = 4


class SessionManager:
    """The one place that applies the session policy to a store.

    The middleware uses it for every request; background tasks and admin tools reach it
    with ``get_manager(app)`` to create, read, update and delete sessions by id. Its
    ``sockets`` attribute is the app's ``SocketRegistry``.

    Every method that reaches the store raises StoreUnavailable when it cannot be reached.
    Times are epoch seconds. A cookie store keeps no session on the server: ``update``,
    ``delete``, ``expires_at``, ``count`` and ``user_session_ids`` raise TypeError with it.
    A user's sessions as devices, and ``on_session_end``: docs/devices.md.
    """

    def __init__(self, store: Store, config: SessionConfig) -> None:
        refuse_cookie_store(store, config)
        self.store = store
        self.config = config
        #: The session token in and out of requests: the cookie, the token header, signing.
        self.transport = Transport(config)
        #: The per-user index ("log out everywhere"), kept in step with each save.
        self.users = UserIndex(store, config)
        #: The store's event channel between processes (revocations, pushes, changes).
        self.events = Events(store)
        #: The WebSockets open in this process, by session and by user.
        self.sockets = SocketRegistry(self, self.events)
        #: Callbacks ``async def on_end(info: SessionInfo, reason: str)`` run as tasks when
        #: this process ends a session of a user (reasons: ``devices.REASONS``).
        self.on_session_end: list[EndCallback] = []
        #: A user's sessions: listing, ending, the cap, the end callbacks.
        self.devices = Devices(
            store, config, self.users, self.sockets, self._load_live, self.on_session_end
        )

    # -- requests ---------------------------------------------------------------------

    async def load(self, *tokens: str | None, stale: Collection[str] = ()) -> Session:
        """The session for the incoming tokens: the first that names a live session, else a
        fresh one. Several values come from same-name cookies of other paths.

        ``stale``: tokens signed by an older secret, whose session's cookie is re-sent
        signed with the newest one, so the old secret can leave the list later.
        """
        now = 0.0
        tried: list[str] = []
        for token in tokens:
            if not token or len(token) > _MAX_TOKEN or token in tried:
                continue
            if len(tried) == _MAX_TRIED:  # a header stuffed with values costs no more
                break
            tried.append(token)
            now = now or time.time()
            record = await self.store.load(token)  # _load_live, inlined: every request runs it
            if record is not None and self.config.expired(record, now):
                await self._expire(record)
                record = None
            if record is not None:
                # Due decided now, with the clock already read: activity counts from the request.
                due = self.config.touch_due(record, now)
                session = Session(self, record, new=False, token=token, due=due)
                if token in stale:
                    pending_of(session).cookie = token
                return session
        return fresh_session(self)

    async def _load_live(self, token: str, now: float) -> SessionRecord | None:
        record = await self.store.load(token)
        if record is None:
            return None
        if self.config.expired(record, now):
            await self._expire(record)
            return None
        return record

    async def _expire(self, record: SessionRecord) -> None:
        """Remove a record found past its end (a cookie store has nothing to remove)."""
        if not self.store.stateless and await self.store.delete(record.id):
            self.devices.ended(record, "expired")

    async def save(self, session: Session) -> None:
        """Write what the session changed and decide which cookie the response carries."""
        pending = pending_of(session)
        doomed = pending.doomed
        if doomed:
            pending.doomed = ()
            await self.devices.end_doomed(doomed)
        if pending.new:
            await save_new(self, session, ended=bool(doomed))
        elif pending.changed or pending.max_age_set:
            await save_existing(self, session, pending.changes(record_of(session).data))
        elif pending.touch or pending.due:
            await save_existing(self, session, None)

    def commit_due(self, session: Session) -> bool:
        """Whether ``commit`` has anything to do (cheap: most requests only read). A new
        session always has: its first save, or on a socket's 101 the cookie naming its id."""
        pending = pending_of(session)
        return pending.any() or pending.cookie is not None

    async def commit(self, session: Session, *, socket: bool = False) -> str | None:
        """Save what a request's session has pending; the cookie its response must carry:
        a value to set, "" to delete it, or None for no Set-Cookie at all.

        ``socket``: the response is a WebSocket's 101, the last response the session gets. An
        unsaved session then gets a cookie naming the id its first save will store it under
        (Channels #1402: no record for a socket that never writes).
        """
        pending = pending_of(session)
        if pending.any():
            await self.save(session)
        if socket and pending.new and not self.store.stateless:
            pending.cookie = pending.token = session.id
        cookie, pending.cookie = pending.cookie, None
        return cookie

    async def expires_at(self, session_id: str) -> float | None:
        """When a stored session ends unless it is used again (epoch seconds): None when it
        has ended, ``math.inf`` when nothing ends it (server-side stores only)."""
        self._need_server_state("look up")
        record = await self._load_live(session_id, time.time())
        return None if record is None else self.config.expires_at(record)

    def ttl_at(self, now: float) -> Callable[[SessionRecord], float]:
        """The TTL of a record saved now, computed from the record as the store keeps it."""
        return lambda record: self.config.ttl(record, now)

    async def reload(self, session: Session) -> None:
        """Replace a session's data with the stored data (server-side stores only)."""
        if session.new or self.store.stateless:
            return
        record = await self._load_live(session.id, time.time())
        if record is None:
            start_over(session)  # gone from the store already: nothing to delete
            return
        replace_record(session, record)

    # -- by id, outside a request -------------------------------------------------------

    async def create(self, data: Mapping[str, Any] | None = None) -> str:
        """Store a new session holding ``data``; return its id, which the other methods take.

        For a cookie store the id is the whole cookie. What a client presents for the
        session (the cookie's value, the token header's) is ``token(id)``: the same but
        signed with ``setup(secret=...)``.
        Raises SerializationError for a value JSON cannot hold.
        """
        session = fresh_session(self)
        session.update(data or {})
        session.touch()
        await save_new(self, session, ended=False)
        token = pending_of(session).token
        assert token is not None
        return token

    def token(self, session_id: str) -> str:
        """The value a client presents for a session: its cookie's value and, with
        ``token_header``, that header's. The id itself, or signed with ``secret``."""
        return self.transport.token(session_id)

    async def get(self, session_id: str) -> dict[str, Any] | None:
        """A copy of a live session's data, or None."""
        record = await self._load_live(session_id, time.time())
        return None if record is None else dict(record.data)

    async def update(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Merge ``data`` into a live session; False when there is no such session."""
        self._need_server_state("update")
        now = time.time()
        record = await self._load_live(session_id, now)
        if record is None:
            return False
        record.accessed = now
        record.data.update(data)
        await self.users.renew(record, now, wrote_user=self.config.user_key in data)
        changes = Changes(dict(data), frozenset())
        if await self.store.save(record, changes, self.ttl_at(now)) is None:
            return False
        await self.sockets.changes.saved(None, record, changed_keys(changes))
        if self.config.user_key in data:
            await self.devices.cap(record)
        return True

    async def record_activity(self, session_id: str) -> SessionRecord | None:
        """Extend a stored session as a read-only request would (only when ``touch_due``),
        for activity no request carries: a socket's messages.

        Returns the record as stored, by which the caller can throttle its next call; None
        when the session has ended.
        """
        self._need_server_state("record activity of")
        now = time.time()
        record = await self._load_live(session_id, now)
        if record is None or not self.config.touch_due(record, now):
            return record
        session = Session(self, record, new=False, token=session_id)
        await save_existing(self, session, None)
        return None if session.new else record

    async def delete(self, session_id: str) -> bool:
        """Destroy a session and close its WebSockets; False when there was none."""
        self._need_server_state("delete")
        return await self.devices.delete(session_id)

    async def logout_user(self, user: str | int, keep: str | None = None) -> int:
        """Log ``user`` out everywhere: destroy their sessions, close their sockets in every
        process. Returns how many sessions were destroyed (0 when the user had none).

        ``keep``: a session id to leave alone, with its sockets ("log out all other devices":
        ``keep=session.id``). ``user`` is the value under ``user_key``: a str, or an int (the
        same user as its decimal string). With a cookie store no session can be destroyed:
        the sockets are still closed and it returns 0, and ``keep`` is a TypeError. Raises
        TypeError for another type of ``user``, or with ``setup(user_key=None)``.
        """
        return await self.devices.logout_user(user, keep)

    async def user_session_ids(self, user: str | int) -> list[str]:
        """The ids of the live sessions whose ``user_key`` names ``user`` (each candidate of
        the index checked against its stored data)."""
        return [record.id for record in await self.devices.records(user)]

    async def user_sessions(self, user: str | int) -> list[SessionInfo]:
        """The live sessions of ``user`` as devices, oldest first; [] with a cookie store."""
        return await self.devices.sessions(user)

    async def end_session(self, handle: str, *, user: str | int | None = None) -> bool:
        """End the session a ``SessionInfo.handle`` names and close its sockets everywhere;
        False when it is not live. With ``user``, a handle of a session of anyone else is
        refused (False, nothing ended): pass the logged-in user to check ownership."""
        return await self.devices.end(handle, user)

    def session_user(self, session: Session) -> str | None:
        """The user a session belongs to (its ``user_key`` value as a str), or None."""
        return self.users.of(record_of(session))

    def user_name(self, user: str | int) -> str:
        """The name the per-user index knows ``user`` by (an int as its decimal string)."""
        return self.users.name(user)

    async def count(self) -> int:
        """How many live sessions the store holds."""
        return await self.store.count()

    def _need_server_state(self, action: str) -> None:
        if self.store.stateless:
            raise TypeError(
                f"{type(self.store).__name__} keeps sessions in cookies; "
                f"it cannot {action} a session by id"
            )
