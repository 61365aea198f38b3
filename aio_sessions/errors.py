"""Exceptions raised by aio_sessions."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error this library raises on purpose."""


class StoreUnavailable(SessionError):
    """The session store cannot be reached; the middleware answers 503."""


class SerializationError(SessionError, TypeError):
    """A session value cannot be stored; the message names the key."""

    def __init__(self, key: str | None, cause: BaseException) -> None:
        where = f"session key {key!r}" if key is not None else "the session"
        super().__init__(f"cannot serialise {where}: {cause}")
        self.key = key


class CookieTooLarge(SessionError):
    """The cookie for a session would exceed what browsers accept."""
