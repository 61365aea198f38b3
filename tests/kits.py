"""Every store, as a fixture: a real backend per test (Redis, a Redis Cluster, files...)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomcache
import nacl.utils
import pytest
from cryptography.fernet import Fernet
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
    Store,
)
from aio_sessions._ids import new_id


@dataclass
class Kit:
    """A store under test plus a way to damage what it keeps, as a disk or a person could."""

    store: Store
    #: None when nothing can damage what the store keeps (Python objects in memory).
    corrupt: Callable[[str], Awaitable[None]] | None
    stateless: bool = False


async def memory_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    yield Kit(MemoryStore(), None)


async def _redis_kit(client: Redis | ClusterClient, garbage: bytes) -> AsyncIterator[Kit]:
    store = RedisStore(client, key_prefix=f"test-{new_id()[:8]}:")

    async def corrupt(sid: str) -> None:
        await client.set(store._key(sid), garbage, keepttl=True)

    yield Kit(store, corrupt)
    await store.clear()
    await client.aclose()


def redis_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    return _redis_kit(client, b"\xff\xfe garbage")


def cluster_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    client = ClusterClient.from_url(request.getfixturevalue("redis_cluster_url"))
    return _redis_kit(client, b'{"created": "soon"}')


async def memcached_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    host, port = request.getfixturevalue("memcached_address")
    client = aiomcache.Client(host, port)
    store = MemcachedStore(client, key_prefix=f"test-{new_id()[:8]}:")

    async def corrupt(sid: str) -> None:
        await client.set(store._key(sid), b"\xff\xfe garbage", exptime=60)

    yield Kit(store, corrupt)
    await store.clear()
    await client.close()


async def sqlite_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteStore(path)

    async def corrupt(sid: str) -> None:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE sessions SET data = '[1, 2' WHERE id = ?", (sid,))

    yield Kit(store, corrupt)
    await store.close()


async def file_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    store = FileStore(tmp_path / "sessions")

    async def corrupt(sid: str) -> None:
        path = tmp_path / "sessions" / f"{sid}.json"
        path.write_bytes(path.read_bytes()[:20])  # truncated, as after a crash

    yield Kit(store, corrupt)
    await store.close()


async def cookie_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    async def corrupt(sid: str) -> None:
        raise AssertionError("nothing on the server to corrupt")

    yield Kit(EncryptedCookieStore(Fernet.generate_key()), corrupt, stateless=True)


async def nacl_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    async def corrupt(sid: str) -> None:
        raise AssertionError("nothing on the server to corrupt")

    yield Kit(NaClCookieStore(nacl.utils.random(32)), corrupt, stateless=True)


KITS: dict[str, Callable[[pytest.FixtureRequest, Path], AsyncIterator[Kit]]] = {
    "memory": memory_kit,
    "redis": redis_kit,
    "redis-cluster": cluster_kit,
    "memcached": memcached_kit,
    "sqlite": sqlite_kit,
    "file": file_kit,
    "cookie": cookie_kit,
    "nacl": nacl_kit,
}
#: The stores that keep the whole session in the cookie.
IN_COOKIES = ("cookie", "nacl")


async def _kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    factory = KITS[request.param](request, tmp_path)
    yield await anext(factory)
    await anext(factory, None)


@pytest.fixture(params=list(KITS))
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    """Every store."""
    async for value in _kit(request, tmp_path):
        yield value


@pytest.fixture(params=[name for name in KITS if name not in IN_COOKIES])
async def server_side(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    """Every store that keeps sessions on the server."""
    async for value in _kit(request, tmp_path):
        yield value


@pytest.fixture(params=[name for name in KITS if name not in (*IN_COOKIES, "memory")])
async def on_disk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    """Every store whose records a disk or a person could damage."""
    async for value in _kit(request, tmp_path):
        yield value
