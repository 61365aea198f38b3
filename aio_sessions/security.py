"""Login with aiohttp-security over these sessions: ``SessionIdentityPolicy``.

aiohttp-security asks an identity policy who a request is (``identify``), to log a user in
(``remember``) and out (``forget``). This one keeps the identity in the aio_sessions session,
under the app's ``user_key`` by default, so "log out everywhere" (``logout_user``), pushes to a
user's sockets (``send_to_user``) and ``require_session("user")`` see users logged in this way.
Needs the optional extra: ``pip install 'aio-sessions[security]'``.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ._checks import describe
from ._ids import user_id
from .api import get_manager, get_session
from .config import check_max_age
from .session import Session

try:
    from aiohttp_security import AbstractIdentityPolicy
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "aio_sessions.security needs aiohttp-security: pip install 'aio-sessions[security]'"
    ) from exc

__all__ = ["SessionIdentityPolicy"]

log = logging.getLogger("aio_sessions")


class SessionIdentityPolicy(AbstractIdentityPolicy):
    """An aiohttp-security identity policy that keeps the identity in the session.

    ``session_key`` names the session key that holds the identity; None (the default) uses
    the app's ``setup(user_key=...)`` ("user" unless changed), which the per-user index
    follows. Use it with ``aiohttp_security.setup(app, SessionIdentityPolicy(), authz)`` on
    an app where ``aio_sessions.setup(app, store)`` was called (RuntimeError otherwise).
    """

    def __init__(self, session_key: str | None = None) -> None:
        if session_key is not None and not isinstance(session_key, str):
            fix = "e.g. SessionIdentityPolicy() for the app's user_key, or session_key='user'"
            raise TypeError(describe("session_key", session_key, "a string or None", fix))
        if session_key == "":
            fix = "e.g. SessionIdentityPolicy() for the app's user_key, or session_key='user'"
            raise ValueError(describe("session_key", session_key, "a non-empty string", fix))
        self._session_key = session_key

    async def identify(self, request: web.Request) -> str | None:
        """The identity ``remember`` stored in the request's session, or None.

        An ``int`` under the key (an app that stores user ids) is its decimal string, as the
        per-user index names it; any other value is no identity.
        """
        session, key = await self._session(request)
        try:
            return user_id(session.get(key), key)
        except TypeError as exc:  # written by other code than remember()
            log.warning("no identity in the session: %s", exc)
            return None

    async def remember(
        self,
        request: web.Request,
        response: web.StreamResponse,
        identity: str,
        *,
        max_age: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Log ``identity`` in: the session gets a new id (against session fixation) and
        keeps its data, unless it named another identity: then it starts over empty.

        ``max_age`` (seconds) sets this session's cookie lifetime, for "remember me". The
        new cookie goes out on the response the handler returns or raises, so call this
        before that response is prepared (RuntimeError otherwise).
        """
        if kwargs:
            name, value = next(iter(kwargs.items()))
            expected = "no keyword but max_age (seconds, for 'remember me')"
            fix = "e.g. remember(request, response, identity, max_age=30 * 24 * 3600)"
            raise TypeError(describe(name, value, expected, fix))
        if not isinstance(identity, str):
            fix = "e.g. remember(request, response, str(user.id))"
            raise TypeError(describe("identity", identity, "a non-empty string", fix))
        if not identity:
            fix = "e.g. remember(request, response, 'alice')"
            raise ValueError(describe("identity", identity, "a non-empty string", fix))
        check_max_age(max_age)
        if response.prepared:
            raise RuntimeError(
                "remember() after the response was prepared: the new session cookie cannot "
                "go out; call remember(request, response, identity) before response.prepare()"
            )
        session, key = await self._session(request)
        try:
            known = user_id(session.get(key), key) in (None, identity)
        except TypeError:
            known = False
        if known:
            session.regenerate()
        else:  # another identity's data must not pass to this one
            session.invalidate()
        session[key] = identity
        if max_age is not None:
            session.max_age = max_age

    async def forget(self, request: web.Request, response: web.StreamResponse) -> None:
        """Log out: the session is destroyed (its data leaves the store, its cookie is
        deleted) and its open WebSockets close with ``CLOSE_SESSION_REVOKED`` (4001)."""
        session, _ = await self._session(request)
        session.invalidate()

    async def _session(self, request: web.Request) -> tuple[Session, str]:
        """The request's session and the key of the identity in it."""
        try:
            config = get_manager(request).config
        except RuntimeError:
            raise RuntimeError(
                "aio_sessions.security.SessionIdentityPolicy keeps the identity in "
                "aio_sessions' sessions, which this app has not set up: call "
                "aio_sessions.setup(app, store) before aiohttp_security.setup(app, ...) "
                "(with aiohttp-session, use aiohttp_security.SessionIdentityPolicy instead)"
            ) from None
        key = self._session_key or config.user_key
        if key is None:
            raise RuntimeError(
                "SessionIdentityPolicy() keeps the identity under the app's user_key, and "
                "setup(user_key=None) named none: name a key with "
                "SessionIdentityPolicy(session_key='user'), or set setup(user_key='user')"
            )
        return await get_session(request), key
