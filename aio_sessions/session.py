"""The Session object: a mapping that remembers which keys a request changed."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from .config import check_max_age
from .devices import SessionInfo, handle_of, info_of
from .pending import Pending
from .stores.base import SessionRecord

if TYPE_CHECKING:
    from .manager import SessionManager

_FLASH_KEY = "_flash"


class Session(MutableMapping[str, Any]):
    """Session data plus its id and lifecycle; get one with ``await get_session(request)``.

    Assigning or deleting a key marks it dirty, and only dirty keys are written back, so
    concurrent requests on one session keep each other's writes. After mutating a nested
    value in place (``session["cart"].append(x)``) call ``session.changed("cart")``.
    """

    __slots__ = ("_manager", "_pending", "_record")

    def __init__(
        self,
        manager: SessionManager,
        record: SessionRecord,
        *,
        new: bool,
        token: str | None = None,
        due: bool = False,
    ) -> None:
        self._manager = manager
        self._record = record
        # What is left to write and what the cookie must say (pending.py), for the manager.
        # ``token``: the cookie value the request arrived with, if any; ``due``: a loaded
        # session that changed nothing should still record this activity.
        self._pending = Pending(new, token, due)

    def __repr__(self) -> str:
        # Never the id: reprs end up in logs.
        return f"<Session new={self.new} dirty={self.dirty} keys={sorted(self._record.data)}>"

    # -- the mapping ------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._record.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._record.data[key] = value
        self._pending.changed[key] = True

    def __delitem__(self, key: str) -> None:
        del self._record.data[key]
        self._pending.changed[key] = False

    def __iter__(self) -> Iterator[str]:
        return iter(self._record.data)

    def __len__(self) -> int:
        return len(self._record.data)

    def __contains__(self, key: object) -> bool:
        return key in self._record.data

    def get(self, key: str, default: Any = None) -> Any:
        # The dict's own get: Mapping.get would go through __getitem__ and an exception.
        return self._record.data.get(key, default)

    # -- identity and state -----------------------------------------------------------

    @property
    def id(self) -> str:
        """The session id. Treat it as a secret: never log it or put it in a URL."""
        return self._record.id

    @property
    def handle(self) -> str | None:
        """This session's handle, as ``manager.user_sessions`` lists it (to mark the current
        device); None until the session is stored, and for a session of no user."""
        if self._pending.new:
            return None
        user = self._manager.users.of(self._record)
        return None if user is None else handle_of(user, self._record.id)

    @property
    def new(self) -> bool:
        """True until the session has been stored."""
        return self._pending.new

    @property
    def created(self) -> int:
        """When the session was created, in epoch seconds."""
        return self._record.created

    @property
    def expires_at(self) -> float | None:
        """When the session ends unless it is used again (epoch seconds), as this request
        knows it; None when it has no end (a new session, or a record without activity)."""
        end = self._manager.config.expires_at(self._record)
        return None if end == math.inf else end

    @property
    def empty(self) -> bool:
        """True when the session holds no keys."""
        return not self._record.data

    @property
    def dirty(self) -> bool:
        """True when there is something to write back: keys written or deleted, the lifetime
        extended, or the session ended or regenerated (its old id to delete). A fresh
        session that nothing wrote is not dirty."""
        pending = self._pending
        return bool(pending.changed or pending.touch or pending.doomed)

    @property
    def max_age(self) -> int | None:
        """This session's cookie lifetime in whole seconds, None for a browser-session cookie;
        setting it overrides ``setup(max_age=...)``.

        Typical use: a "remember me" login sets ``session.max_age = 30 * 24 * 3600``. Only
        the request that sets it writes it: concurrent requests keep the stored value.
        Setting anything but a positive ``int`` of at most ten years, or None, raises
        TypeError or ValueError.
        """
        return self._record.max_age or self._manager.config.max_age

    @max_age.setter
    def max_age(self, value: int | None) -> None:
        self._record.max_age = check_max_age(value)
        self._pending.max_age_set = True
        self._pending.touch = True

    def changed(self, *keys: str) -> None:
        """Mark keys as modified (all keys when none are named) after in-place mutation.

        Raises KeyError for a key the session does not hold.
        """
        for key in keys or tuple(self._record.data):
            if key not in self._record.data:
                raise KeyError(key)
            self._pending.changed[key] = True

    def touch(self) -> None:
        """Extend the session's lifetime and re-send its cookie on this response."""
        self._pending.touch = True

    def invalidate(self) -> None:
        """Destroy the session: its data leaves the store and the cookie is deleted.

        Writing to the session afterwards starts a new one with a new id.
        """
        self._end("logout")
        self._start_over()

    def _start_over(self) -> None:
        """Become a fresh, empty, unsaved session (what a destroyed session continues as),
        on the same device."""
        ended = self._record
        self._record = _blank_record(self._manager)
        self._record.agent, self._record.ip = ended.agent, ended.ip
        pending = self._pending
        pending.clear()
        pending.new = True
        pending.cookie = None  # a cookie for the ended id (a re-signed one) must not go out

    def regenerate(self) -> None:
        """Give the session a new id and keep its data; the old id stops working.

        Call it when privileges change (login) to defeat session fixation.
        """
        self._end("regenerate")
        self._record.id = self._manager.config.new_id()
        self._pending.new = True

    # -- flash messages ---------------------------------------------------------------

    def flash(self, message: Any) -> None:
        """Queue a message for the next request that calls ``pop_flash``.

        The message is stored with the session: anything JSON can hold (a str, or a dict such
        as ``{"level": "error", "text": ...}``).
        """
        queue = list(self._record.data.get(_FLASH_KEY, []))
        queue.append(message)
        self[_FLASH_KEY] = queue

    def pop_flash(self) -> list[Any]:
        """Return and remove the queued flash messages."""
        if _FLASH_KEY not in self._record.data:
            return []
        messages: list[Any] = self.pop(_FLASH_KEY)
        return messages

    # -- explicit persistence ---------------------------------------------------------

    async def save(self) -> None:
        """Write pending changes now (the middleware does it for HTTP responses).

        Raises StoreUnavailable when the store cannot be reached, SerializationError for a
        value JSON cannot hold, and CookieTooLarge when a cookie store's cookie would be too
        large for browsers.
        """
        await self._manager.save(self)

    async def reload(self) -> None:
        """Replace the data with what the store holds now; unsaved changes are dropped.

        A session that has ended meanwhile becomes a new, empty one. Raises StoreUnavailable
        when the store cannot be reached; does nothing with a cookie store.
        """
        await self._manager.reload(self)

    # -- ending ---------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        """Doom the current id, if a browser may hold it, with what the session was."""
        if self._named():
            self._pending.doomed += ((self._record.id, reason, session_info(self)),)

    def _named(self) -> bool:
        """Whether a browser may hold this session's id: stored, or announced on a 101.

        Ending such a session closes its sockets, an anonymous socket's too.
        """
        return not self._pending.new or self._pending.token == self._record.id


# -- for the manager and the socket modules ------------------------------------------------


def fresh_session(manager: SessionManager) -> Session:
    """A new, empty session, not stored yet."""
    return Session(manager, _blank_record(manager), new=True)


def pending_of(session: Session) -> Pending:
    """What the session has left to write, and the cookie its response must carry."""
    return session._pending


def record_of(session: Session) -> SessionRecord:
    """The session's record: its data as this request sees it, and its metadata."""
    return session._record


def replace_record(session: Session, record: SessionRecord) -> None:
    """Take the stored ``record`` as the session's (a reload): nothing left to write."""
    session._record = record
    session._pending.clear()


def start_over(session: Session) -> None:
    """Make a session that ended elsewhere a fresh, empty, unsaved one."""
    session._start_over()


def note_activity(session: Session, now: float) -> None:
    """Move the last activity of a session not stored yet (an anonymous socket's messages):
    its deadline, which the socket's expiry timer reads, follows; no store is involved."""
    session._record.accessed = now


def note_device(session: Session, agent: str | None, ip: str | None) -> None:
    """Record the device a request shows (``devices.seen_by``, at load) with the session's
    next write: it costs no write of its own."""
    record = session._record
    record.agent, record.ip = agent, ip


def session_info(session: Session) -> SessionInfo | None:
    """What a session of a user shows of itself (None for a session of no user)."""
    user = session._manager.users.of(session._record)
    return None if user is None else info_of(session._record, user)


def _blank_record(manager: SessionManager) -> SessionRecord:
    now = time.time()
    return SessionRecord(manager.config.new_id(), {}, int(now), now)
