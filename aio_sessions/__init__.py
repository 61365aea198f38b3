"""Server-side sessions for aiohttp, with first-class WebSocket support."""

from __future__ import annotations

from .errors import CookieTooLarge, SerializationError, SessionError, StoreUnavailable
from .manager import SessionManager
from .middleware import get_manager, get_session, new_session, session_middleware, setup
from .session import Session
from .stores import MemoryStore, Store

__all__ = [
    "CookieTooLarge",
    "MemoryStore",
    "SerializationError",
    "Session",
    "SessionError",
    "SessionManager",
    "Store",
    "StoreUnavailable",
    "get_manager",
    "get_session",
    "new_session",
    "session_middleware",
    "setup",
]

__version__ = "0.1.0"
