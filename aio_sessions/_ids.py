"""Session ids: 256 random bits (or the app's ``id_factory``), and the shape every id has."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from ._checks import describe

# aiohttp-session's RedisStorage issues uuid4().hex ids (32 hex characters); ours are
# token_urlsafe(32) (43 characters). Both must load, anything else is rejected unread.
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_-]")

#: What ``setup(id_factory=...)`` takes: a callable returning a new session id.
IdFactory = Callable[[], str]
_ID_SHAPE = "an id of 32 to 64 URL-safe characters (A-Z a-z 0-9 _ -)"
_FACTORY_FIX = "e.g. id_factory=lambda: secrets.token_urlsafe(32) or lambda: uuid.uuid4().hex"


def new_id() -> str:
    """Return a fresh, unguessable session id."""
    return secrets.token_urlsafe(32)


def valid_id(value: str) -> bool:
    """Tell whether ``value`` could be a session id, without asking any store."""
    return _VALID_ID.fullmatch(value) is not None


def check_id_factory(factory: object) -> IdFactory | None:
    """``setup(id_factory=...)``: None (ids from ``new_id``), or a callable whose first id
    is made and checked now, so a factory that cannot work fails at setup."""
    if factory is None:
        return None
    if not callable(factory):
        expected = "a callable returning a new session id, or None"
        raise TypeError(describe("id_factory", factory, expected, _FACTORY_FIX))
    made_by(factory)
    return factory


def made_by(factory: IdFactory) -> str:
    """A new id from ``factory``, checked every time: an id that no cookie could bring back
    is the app's error (TypeError or ValueError), never a session.

    Messages show the id's type, length and the characters that do not belong, never the id.
    """
    value: object = factory()
    if not isinstance(value, str):
        expected = f"a str: {_ID_SHAPE}"
        raise TypeError(describe("id_factory()", value, expected, _FACTORY_FIX, secret=True))
    if not valid_id(value):
        wrong = "".join(sorted(set(_NOT_IN_ID.findall(value))))
        expected = _ID_SHAPE + (f"; it holds {wrong!r}" if wrong else "")
        raise ValueError(describe("id_factory()", value, expected, _FACTORY_FIX, secret=True))
    return value


def user_id(value: object, key: str = "user") -> str | None:
    """The user a session belongs to, from the value under ``user_key``.

    A ``str`` names the user; an ``int`` names the same user as its decimal string, so
    ``session["user"] = 42`` and ``logout_user("42")`` agree on every store. ``None`` (or no
    value) is no user. Anything else cannot index a session: TypeError naming the fix.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    raise TypeError(
        f"session[{key!r}] is {value!r} ({type(value).__name__}): the user a session belongs "
        f"to must be a str or an int (for logout_user and sockets.for_user). Store the user's "
        f"id under {key!r}, or name the key that holds it with setup(user_key=...), or turn "
        "the per-user index off with setup(user_key=None)"
    )
