"""Session ids: 256 random bits, and the shape an incoming id must have."""

from __future__ import annotations

import re
import secrets

# aiohttp-session's RedisStorage issues uuid4().hex ids (32 hex characters); ours are
# token_urlsafe(32) (43 characters). Both must load, anything else is rejected unread.
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")


def new_id() -> str:
    """Return a fresh, unguessable session id."""
    return secrets.token_urlsafe(32)


def valid_id(value: str) -> bool:
    """Tell whether ``value`` could be a session id, without asking any store."""
    return _VALID_ID.fullmatch(value) is not None


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
