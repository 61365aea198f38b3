"""Server-side sessions for aiohttp, with first-class WebSocket support."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import stores
from .api import get_manager, get_session, new_session, setup
from .devices import SessionInfo
from .errors import CookieTooLarge, SerializationError, SessionError, StoreUnavailable
from .manager import SessionManager
from .middleware import session_middleware
from .registry import (
    CLOSE_SESSION_EXPIRED,
    CLOSE_SESSION_FORBIDDEN,
    CLOSE_SESSION_REVOKED,
    SocketRegistry,
)
from .session import Session
from .stores import EncryptedCookieStore, FileStore, MemoryStore, SQLiteStore, Store
from .websocket import get_ws_session, require_session, session_changes

if TYPE_CHECKING:
    from .stores.memcached import MemcachedStore
    from .stores.nacl import NaClCookieStore
    from .stores.redis import RedisStore

__all__ = [
    "CLOSE_SESSION_EXPIRED",
    "CLOSE_SESSION_FORBIDDEN",
    "CLOSE_SESSION_REVOKED",
    "CookieTooLarge",
    "EncryptedCookieStore",
    "FileStore",
    "MemcachedStore",
    "MemoryStore",
    "NaClCookieStore",
    "RedisStore",
    "SQLiteStore",
    "SerializationError",
    "Session",
    "SessionError",
    "SessionInfo",
    "SessionManager",
    "SocketRegistry",
    "Store",
    "StoreUnavailable",
    "get_manager",
    "get_session",
    "get_ws_session",
    "new_session",
    "require_session",
    "session_changes",
    "session_middleware",
    "setup",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Stores that need an optional package are imported only when asked for.
    if name in stores.OPTIONAL:
        return getattr(stores, name)
    raise AttributeError(f"module 'aio_sessions' has no attribute {name!r}")
