"""Session stores and the protocol they share."""

from __future__ import annotations

from .base import Changes, SessionRecord, Store
from .memory import MemoryStore

__all__ = ["Changes", "MemoryStore", "SessionRecord", "Store"]
