"""SessionManager: loads and commits sessions, and works on them by id outside requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from .config import SessionConfig
from .registry import SocketRegistry
from .session import Session
from .stores.base import Changes, SessionRecord, Store

log = logging.getLogger("aio_sessions")

# Browsers cap a cookie at 4096 bytes; anything longer is not ours.
_MAX_TOKEN = 4096


class SessionManager:
    """The one place that applies the session policy to a store.

    The middleware uses it for every request; background tasks and admin tools reach it
    with ``get_manager(app)`` to create, read, update and delete sessions by id.
    """

    def __init__(self, store: Store, config: SessionConfig) -> None:
        self.store = store
        self.config = config
        #: The WebSockets open in this process, by session and by user.
        self.sockets = SocketRegistry(self)

    # -- requests ---------------------------------------------------------------------

    async def load(self, token: str | None) -> Session:
        """The session for an incoming cookie value; a fresh one when it is not valid."""
        if not token:
            return Session._fresh(self)
        now = time.time()
        record = await self._load_live(token, now) if len(token) <= _MAX_TOKEN else None
        if record is None:
            return Session._fresh(self, token)
        session = Session(self, record, new=False, token=token)
        # Decided now, with the clock already read: activity counts from the request.
        session._due = self.config.touch_due(record, now)
        return session

    async def _load_live(self, token: str, now: float) -> SessionRecord | None:
        record = await self.store.load(token)
        if record is None:
            return None
        if self.config.expired(record, now):
            if not self.store.stateless:
                await self.store.delete(record.id)
            return None
        return record

    async def save(self, session: Session) -> None:
        """Write what the session changed and decide which cookie the response carries."""
        doomed = session._doomed
        if doomed:
            session._doomed = []
            for session_id in doomed:
                await self.store.delete(session_id)
            await self.sockets.revoke(doomed)
        had_doomed = bool(doomed)
        if session._new:
            await self._save_new(session, had_doomed)
        elif session._set or session._removed:
            await self._save_existing(session, session._changes())
        elif session._touch or session._due:
            await self._save_existing(session, None)

    async def _save_new(self, session: Session, had_doomed: bool) -> None:
        record = session._record
        wanted = (
            record.data
            or session._set
            or session._removed
            or session._touch
            or self.config.save_uninitialized
        )
        if not wanted:
            if had_doomed or session._token:
                session._cookie = ""
            return
        now = time.time()
        record.accessed = now
        ttl = self.config.ttl(record, now)
        value = await self.store.save(record, None, ttl)
        if value is None:  # a store refuses only merges, never a fresh record
            raise RuntimeError(f"{type(self.store).__name__}.save refused a new session")
        if self.store.stateless:
            self.config.check_cookie(value)
        session._cookie = session._token = value
        await self._link_user(record, record.data, ttl)
        session._mark_saved()

    async def _save_existing(self, session: Session, changes: Changes | None) -> None:
        """Merge changes (or, with None, only extend the lifetime) into the stored record."""
        record = session._record
        now = time.time()
        record.accessed = now
        ttl = self.config.ttl(record, now)
        touched = changes is None
        if touched:
            value = await self.store.touch(record, ttl)
        else:
            value = await self.store.save(record, changes, ttl)
        if value is None:
            # Invalidated or expired by someone else meanwhile: do not bring it back.
            session._start_over()  # gone from the store already: nothing to delete
            session._cookie = ""
            return
        if self.store.stateless:
            self.config.check_cookie(value)
        if changes is not None:
            await self._link_user(record, changes.set, ttl)
        if (
            value != session._token
            or self.config.rolling
            or session._touch
            or (touched and self.config.renew)
        ):
            session._cookie = value
        session._token = value
        session._mark_saved()

    async def _link_user(
        self, record: SessionRecord, written: Mapping[str, Any], ttl: float
    ) -> None:
        """Index the session under its user when the request wrote the user key (a login)."""
        key = self.config.user_key
        if key is not None and key in written and not self.store.stateless:
            await self.store.link_user(str(written[key]), record.id, ttl)

    async def reload(self, session: Session) -> None:
        """Replace a session's data with the stored data (server-side stores only)."""
        if session._new or self.store.stateless:
            return
        record = await self._load_live(session.id, time.time())
        if record is None:
            session._start_over()  # gone from the store already: nothing to delete
            return
        session._record = record
        session._mark_saved()

    # -- by id, outside a request -------------------------------------------------------

    async def create(self, data: Mapping[str, Any] | None = None) -> str:
        """Store a new session holding ``data``; return the value for its cookie.

        For server-side stores that value is the session id.
        """
        session = Session._fresh(self)
        session.update(data or {})
        session.touch()
        await self._save_new(session, had_doomed=False)
        assert session._token is not None
        return session._token

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
        changes = Changes(dict(data), frozenset())
        return await self.store.save(record, changes, self.config.ttl(record, now)) is not None

    async def delete(self, session_id: str) -> bool:
        """Destroy a session and close its WebSockets; False when there was none."""
        self._need_server_state("delete")
        existed = await self.store.delete(session_id)
        await self.sockets.revoke([session_id])
        return existed

    async def logout_user(self, user: str) -> int:
        """Log ``user`` out everywhere: destroy their sessions, close their sockets in every
        process. Returns how many sessions were destroyed.

        With a cookie store no session can be destroyed, but the sockets are still closed.
        """
        session_ids = [] if self.store.stateless else await self.store.user_sessions(user)
        destroyed = 0
        for session_id in session_ids:
            destroyed += await self.store.delete(session_id)
        await self.sockets.revoke(session_ids, users=[user])
        return destroyed

    async def count(self) -> int:
        """How many live sessions the store holds."""
        return await self.store.count()

    def _need_server_state(self, action: str) -> None:
        if self.store.stateless:
            raise TypeError(
                f"{type(self.store).__name__} keeps sessions in cookies; "
                f"it cannot {action} a session by id"
            )
