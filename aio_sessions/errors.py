"""Exceptions raised by aio_sessions."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error this library raises on purpose."""


class StoreUnavailable(SessionError):
    """The session store cannot be reached.

    Raised by stores and by every coroutine that reaches one (``get_session``,
    ``Session.save``, the ``SessionManager`` methods). In a request the middleware turns it
    into 503 Service Unavailable with ``Retry-After: 1``.
    """


class SerializationError(SessionError, TypeError):
    """A session value cannot be stored; the message names the key.

    Raised at save (JSON cannot hold the value, or it is ``NaN`` or an infinity); ``key`` is
    the session key, or None when the data as a whole failed. A bug in the app: 500.
    """

    def __init__(self, key: str | None, cause: BaseException) -> None:
        where = f"session key {key!r}" if key is not None else "the session"
        super().__init__(f"cannot serialise {where}: {cause}")
        self.key = key


class CookieTooLarge(SessionError):
    """The cookie for a session would exceed what browsers accept.

    Raised at save by a store that keeps the session in the cookie (``EncryptedCookieStore``)
    when the cookie's name and value together would pass 4096 bytes, which browsers drop
    without a word. ``await session.save()`` raises it where the handler can catch it; at
    the end of a request it fails the response with 500, and no cookie is sent, so the
    browser keeps its previous one. Store less in the session, or use a server-side store.
    """
