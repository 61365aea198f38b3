"""Session stores and the protocol they share."""

from __future__ import annotations

from .base import TTL, Changes, SessionRecord, Store, ttl_of
from .cookie import EncryptedCookieStore
from .file import FileStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "TTL",
    "Changes",
    "EncryptedCookieStore",
    "FileStore",
    "MemoryStore",
    "SQLiteStore",
    "SessionRecord",
    "Store",
    "ttl_of",
]
