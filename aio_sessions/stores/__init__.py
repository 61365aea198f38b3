"""Session stores and the protocol they share."""

from __future__ import annotations

from .base import Changes, SessionRecord, Store
from .cookie import EncryptedCookieStore
from .file import FileStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "Changes",
    "EncryptedCookieStore",
    "FileStore",
    "MemoryStore",
    "SQLiteStore",
    "SessionRecord",
    "Store",
]
