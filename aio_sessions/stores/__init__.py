"""Session stores and the protocol they share.

The stores that need an optional package (RedisStore, NaClCookieStore, MemcachedStore) are
imported when first asked for, so the others work without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import TTL, Changes, SessionRecord, Store, ttl_of
from .cookie import EncryptedCookieStore
from .file import FileStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .memcached import MemcachedStore
    from .nacl import NaClCookieStore
    from .redis import RedisStore

__all__ = [
    "TTL",
    "Changes",
    "EncryptedCookieStore",
    "FileStore",
    "MemcachedStore",
    "MemoryStore",
    "NaClCookieStore",
    "RedisStore",
    "SQLiteStore",
    "SessionRecord",
    "Store",
    "ttl_of",
]

#: Each optional store: its module, the package it imports (as imported, then as named on
#: PyPI) and the extra that installs it.
OPTIONAL = {
    "RedisStore": ("redis", "redis", "redis", "redis"),
    "NaClCookieStore": ("nacl", "nacl", "PyNaCl", "nacl"),
    "MemcachedStore": ("memcached", "aiomcache", "aiomcache", "memcached"),
}


def __getattr__(name: str) -> Any:
    if name not in OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, package, dist, extra = OPTIONAL[name]
    try:
        found = importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != package:
            raise  # a bug in the store, not a missing package
        raise ImportError(
            f"{name} needs the {dist} package: pip install 'aio-sessions[{extra}]'"
        ) from exc
    return getattr(found, name)
