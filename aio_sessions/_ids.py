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
