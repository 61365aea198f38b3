"""Every store, with a way to put raw bytes where a live session's record is kept.

What a disk, a person or another program could leave there: the corrupt-record and the
browser-text tests feed each store's load path through these. Tests list a kit before
``make_client``, so the app (and its revocation listener) stops before the kit closes the
Redis client it shares.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomcache
import nacl.utils
import pytest
from cryptography.fernet import Fernet
from nacl.secret import SecretBox
from redis.asyncio import Redis
from redis.asyncio import RedisCluster as ClusterClient

from aio_sessions import (
    EncryptedCookieStore,
    FileStore,
    MemcachedStore,
    MemoryStore,
    NaClCookieStore,
    RedisStore,
    SQLiteStore,
)
from aio_sessions._ids import new_id
from aio_sessions.stores import Store

Plant = Callable[[bytes], Awaitable[str]]


@dataclass
class RawKit:
    name: str
    store: Store
    #: Put these bytes where a live session's record is kept; returns its cookie value.
    #: None for the memory store: it keeps Python objects, which nothing outside can damage.
    plant: Plant | None
    #: Put something that is not a string at all there instead (a Redis hash, an integer in
    #: SQLite's data column); None where a store holds only bytes (files, cookies) or nothing.
    plant_other_kind: Callable[[], Awaitable[str]] | None = None


async def _redis(name: str, client: Redis | ClusterClient) -> AsyncIterator[RawKit]:
    store = RedisStore(client, key_prefix=f"raw-{new_id()[:8]}:")

    async def plant(raw: bytes) -> str:
        sid = new_id()
        await client.set(f"{store.key_prefix}{sid}", raw, px=60_000)
        return sid

    async def plant_other_kind() -> str:
        sid = new_id()
        await client.hset(f"{store.key_prefix}{sid}", "created", "1")  # type: ignore[misc]
        return sid

    yield RawKit(name, store, plant, plant_other_kind)
    await store.clear()
    await client.aclose()


async def _sqlite(tmp_path: Path) -> AsyncIterator[RawKit]:
    path = tmp_path / "raw.sqlite3"
    store = SQLiteStore(path)
    await store.count()  # creates the table

    def write(sid: str, value: object, as_text: bool) -> None:
        cast = "CAST(? AS TEXT)" if as_text else "?"
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(
                f"INSERT INTO sessions (id, data, expires) VALUES (?, {cast}, ?)",
                (sid, value, time.time() + 60),
            )
            db.commit()

    async def plant(raw: bytes) -> str:
        sid = new_id()
        write(sid, raw, as_text=True)  # a TEXT column holding any bytes, valid UTF-8 or not
        return sid

    async def plant_other_kind() -> str:
        sid = new_id()
        write(sid, 42, as_text=False)  # SQLite lets any column hold any type
        return sid

    yield RawKit("sqlite", store, plant, plant_other_kind)
    await store.close()


async def _file(tmp_path: Path) -> AsyncIterator[RawKit]:
    directory = tmp_path / "raw-files"
    store = FileStore(directory)
    await store.count()  # creates the directory

    async def plant(raw: bytes) -> str:
        sid = new_id()
        (directory / f"{sid}.json").write_bytes(raw)
        return sid

    yield RawKit("file", store, plant)
    await store.close()


async def _cookie() -> AsyncIterator[RawKit]:
    key = Fernet.generate_key()
    fernet = Fernet(key)

    async def plant(raw: bytes) -> str:
        return fernet.encrypt(raw).decode()  # the cookie is where this store keeps a record

    yield RawKit("cookie", EncryptedCookieStore(key), plant)


async def _memcached(address: tuple[str, int]) -> AsyncIterator[RawKit]:
    client = aiomcache.Client(*address)
    store = MemcachedStore(client, key_prefix=f"raw-{new_id()[:8]}:")

    async def plant(raw: bytes) -> str:
        sid = new_id()
        await client.set(f"{store.key_prefix}{sid}".encode(), raw, exptime=60)
        return sid

    yield RawKit("memcached", store, plant)
    await store.clear()
    await client.close()


async def _nacl() -> AsyncIterator[RawKit]:
    key = nacl.utils.random(SecretBox.KEY_SIZE)

    async def plant(raw: bytes) -> str:
        return base64.b64encode(SecretBox(key).encrypt(raw)).decode()

    yield RawKit("nacl", NaClCookieStore(key), plant)


async def _memory() -> AsyncIterator[RawKit]:
    yield RawKit("memory", MemoryStore(), None)


def open_kit(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RawKit]:
    """The kit called ``name``; Redis and the cluster come from the suite's real servers."""
    if name == "redis":
        return _redis(name, Redis.from_url(request.getfixturevalue("redis_url")))
    if name == "redis-cluster":
        return _redis(name, ClusterClient.from_url(request.getfixturevalue("redis_cluster_url")))
    if name == "sqlite":
        return _sqlite(tmp_path)
    if name == "file":
        return _file(tmp_path)
    if name == "memcached":
        return _memcached(request.getfixturevalue("memcached_address"))
    if name == "cookie":
        return _cookie()
    if name == "nacl":
        return _nacl()
    return _memory()


KIT_NAMES = ["memory", "redis", "redis-cluster", "memcached", "sqlite", "file", "cookie", "nacl"]
