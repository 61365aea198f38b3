"""A user's sessions as devices: list them, end one or all the others, cap how many a user
may have, and tell the app when a session ends.

A handle names one session of one user, for an account page to show and send back. It is
``<user>.<fingerprint>``: the user's name (the ``user_key`` value) in URL-safe base64, and
``events.fingerprint`` of the session id, a SHA-256 of 256 random bits. The fingerprint
cannot be turned back into the id, so a handle is no cookie and logs nobody in; it cannot be
made up for another session, as that needs the id. The user's name in it lets any process
sharing the store find the session through that user's index without a key of its own.
Handles are no secret from their user: an app ends one for the user who is logged in with
``end_session(handle, user=...)``, which refuses the handle of anyone else's session.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import ipaddress
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aiohttp import web

from .events import fingerprint
from .stores._record import MAX_AGENT, MAX_IP
from .stores.base import SessionRecord

if TYPE_CHECKING:
    from .config import SessionConfig
    from .registry import SocketRegistry
    from .stores.base import Store
    from .users import UserIndex

log = logging.getLogger("aio_sessions")

#: What a handle ends with: a session id's fingerprint.
_FINGERPRINT = re.compile(r"[0-9a-f]{32}")
# Longer handles are not ours (a user name of a few hundred characters is far within it).
_MAX_HANDLE = 2048
# Sessions whose end this process announced lately: an expiry seen by several sockets of one
# session, or by a socket and a request at once, is announced once.
_ANNOUNCED = 1024

#: Why a session ended, as ``on_session_end`` callbacks hear it.
REASONS: Final = ("logout", "regenerate", "ended", "logout_user", "evicted", "expired")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One live session of a user, as an account page lists it ("where you are logged in").

    ``handle`` names the session for ``end_session`` (not its id: see docs/devices.md);
    compare it with ``session.handle`` to mark the current device. Times are epoch seconds;
    ``last_seen`` is the session's last recorded activity (None for records aiohttp-session
    wrote). ``user_agent`` and ``ip`` are what the device's last recorded request showed, only
    with ``setup(track_devices=True)``, else None.
    """

    handle: str
    user: str
    created: float
    last_seen: float | None
    user_agent: str | None
    ip: str | None


#: An ``on_session_end`` callback: the session that ended, and why (one of ``REASONS``).
EndCallback = Callable[[SessionInfo, str], Awaitable[None]]

#: A session a request ended (invalidated or regenerated): its id, why, and what it was.
Doomed = tuple[str, str, "SessionInfo | None"]


def handle_of(user: str, session_id: str) -> str:
    """The handle of a session of ``user``."""
    name = base64.urlsafe_b64encode(user.encode("utf-8", "surrogatepass")).rstrip(b"=")
    return f"{name.decode('ascii')}.{fingerprint(session_id)}"


def _parse(handle: object) -> tuple[str, str] | None:
    """The user and fingerprint a handle names; None for text that is no handle."""
    if not isinstance(handle, str):
        raise TypeError(f"a session handle is a str (SessionInfo.handle), got {type(handle)!r}")
    name, _, print_ = handle.rpartition(".")
    if len(handle) > _MAX_HANDLE or not name or _FINGERPRINT.fullmatch(print_) is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4))
        user = raw.decode("utf-8", "surrogatepass")
    except (ValueError, binascii.Error):
        return None
    return user, print_


def info_of(record: SessionRecord, user: str) -> SessionInfo:
    """What a session of ``user`` shows of itself."""
    return SessionInfo(
        handle_of(user, record.id),
        user,
        float(record.created),
        record.accessed,
        record.agent,
        record.ip,
    )


def seen_by(request: web.BaseRequest, config: SessionConfig) -> tuple[str | None, str | None]:
    """The User-Agent and address a request shows (asked for with ``track_devices``).

    The address is the peer's, or with ``trust_proxy`` the first one X-Forwarded-For names
    (when it is an address). A User-Agent is cut to ``MAX_AGENT`` characters.
    """
    agent = request.headers.get("User-Agent")
    ip = request.remote
    if config.trust_proxy:
        first = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if first and len(first) <= MAX_IP:
            # Not an address: the peer's is what the request really shows.
            with contextlib.suppress(ValueError):
                ip = str(ipaddress.ip_address(first))
    if ip is not None and len(ip) > MAX_IP:
        ip = None
    return (None if agent is None else agent[:MAX_AGENT]), ip


def _last_seen(record: SessionRecord) -> float:
    return record.created if record.accessed is None else record.accessed


class Devices:
    """A user's sessions for one manager: listing, ending, the cap, the end callbacks."""

    def __init__(
        self,
        store: Store,
        config: SessionConfig,
        users: UserIndex,
        sockets: SocketRegistry,
        load_live: Callable[[str, float], Awaitable[SessionRecord | None]],
        on_end: list[EndCallback],
    ) -> None:
        self._store = store
        self._config = config
        self._users = users
        self._sockets = sockets
        self._load_live = load_live
        self.on_end = on_end
        self._tasks: set[asyncio.Task[None]] = set()
        self._announced: OrderedDict[str, None] = OrderedDict()

    # -- listing --------------------------------------------------------------------------

    async def records(self, user: str | int) -> list[SessionRecord]:
        """The live records whose ``user_key`` names ``user``, checked against their data:
        the index may still list sessions that changed user or logged out since."""
        name = self._users.name(user)
        candidates = await self._store.user_sessions(name)
        now = time.time()
        found = await asyncio.gather(*(self._load_live(sid, now) for sid in candidates))
        return [r for r in found if r is not None and self._users.of(r) == name]

    async def sessions(self, user: str | int) -> list[SessionInfo]:
        """The user's live sessions, oldest first (by creation); [] with a cookie store."""
        if self._store.stateless:
            self._users.name(user)  # the same TypeError for a bad user on every store
            return []
        name = self._users.name(user)
        records = sorted(await self.records(name), key=lambda r: (r.created, r.id))
        return [info_of(record, name) for record in records]

    # -- ending ---------------------------------------------------------------------------

    async def end(self, handle: str, user: str | int | None) -> bool:
        """End the session a handle names, when it is live (and one of ``user``'s)."""
        parsed = _parse(handle)
        if parsed is None or self._store.stateless:
            return False
        name, print_ = parsed
        if user is not None and self._users.name(user) != name:
            return False
        for record in await self.records(name):
            if hmac.compare_digest(fingerprint(record.id), print_):
                return await self._end([record], "ended") == 1
        return False

    async def logout_user(self, user: str | int, keep: str | None) -> int:
        """End every session of ``user`` but ``keep``; close their sockets everywhere."""
        name = self._users.name(user)
        if self._store.stateless:
            if keep is not None:
                raise TypeError(
                    f"{type(self._store).__name__} keeps sessions in cookies: it cannot end a "
                    "user's other sessions (logout_user(user, keep=...)), whose cookies stay "
                    "valid until they expire; keep sessions on the server, e.g. RedisStore"
                )
            await self._sockets.revoke(users=[name])
            return 0
        records = [r for r in await self.records(name) if r.id != keep]
        # Without ``keep`` every socket of the user closes, an anonymous one's that logged in
        # since too; with it, the kept session's must stay open.
        return await self._end(records, "logout_user", users=[name] if keep is None else [])

    async def delete(self, session_id: str) -> bool:
        """End one session by id (``manager.delete``)."""
        record = await self._store.load(session_id) if self.on_end else None
        if record is not None:
            return await self._end([record], "ended") == 1
        existed = await self._store.delete(session_id)
        await self._sockets.revoke([session_id])
        return existed

    async def cap(self, record: SessionRecord) -> None:
        """After a save that wrote the user of ``record``: end the user's sessions beyond
        ``max_sessions_per_user``, least recently seen first."""
        limit = self._config.max_sessions_per_user
        user = None if limit is None else self._users.of(record)
        if limit is None or user is None:
            return
        others = [r for r in await self.records(user) if r.id != record.id]
        excess = len(others) + 1 - limit
        if excess > 0:
            others.sort(key=_last_seen)
            await self._end(others[:excess], "evicted")

    async def end_doomed(self, doomed: Sequence[Doomed]) -> None:
        """Delete the sessions a request invalidated or regenerated; close their sockets."""
        ended: list[tuple[SessionInfo, str]] = []
        for session_id, reason, info in doomed:
            existed = await self._store.delete(session_id)
            if info is not None and (existed or self._store.stateless):
                ended.append((info, reason))
        await self._sockets.revoke([session_id for session_id, _, _ in doomed])
        for info, reason in ended:
            self.announce(info, reason)

    async def _end(
        self, records: Sequence[SessionRecord], reason: str, *, users: Sequence[str] = ()
    ) -> int:
        ended = [record for record in records if await self._store.delete(record.id)]
        await self._sockets.revoke([record.id for record in records], users=users)
        for record in ended:
            self.ended(record, reason)
        return len(ended)

    # -- telling the app ------------------------------------------------------------------

    def ended(self, record: SessionRecord, reason: str) -> None:
        """Announce that a stored session ended, when it belonged to a user."""
        user = self._users.of(record)
        if user is not None and self.on_end:
            self.announce(info_of(record, user), reason)

    def announce(self, info: SessionInfo, reason: str) -> None:
        """Run the ``on_session_end`` callbacks as tasks: the request does not wait for them,
        and ``close`` does."""
        if not self.on_end or info.handle in self._announced:
            return
        self._announced[info.handle] = None
        if len(self._announced) > _ANNOUNCED:
            self._announced.popitem(last=False)
        for callback in list(self.on_end):
            task = asyncio.ensure_future(_run(callback, info, reason))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for the callbacks under way (application cleanup)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _run(callback: EndCallback, info: SessionInfo, reason: str) -> None:
    try:
        await callback(info, reason)
    except Exception:
        log.exception("an on_session_end callback failed (reason %r)", reason)
