"""RedisStore under bursts larger than redis-py's connection pool, on a real Redis and Cluster.

redis-py's asyncio pools fail a command at once with MaxConnectionsError when all their
connections are busy (100 by default, per node for a Cluster). The store must make such a
burst wait its turn, never answer it 503.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster

from aio_sessions import RedisStore, StoreUnavailable, get_session
from aio_sessions._ids import new_id
from aio_sessions.stores import SessionRecord

from .conftest import MakeClient

POOL = 4
BURST = 300


@pytest.fixture(params=[False, True], ids=["redis", "cluster"])
async def small_pool(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RedisStore]:
    """A store whose client may open ``POOL`` connections (per node on the Cluster)."""
    client: Redis | RedisCluster
    if request.param:
        url = request.getfixturevalue("redis_cluster_url")
        client = RedisCluster.from_url(url, max_connections=POOL)
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"), max_connections=POOL)
    store = RedisStore(client, key_prefix=prefix)
    yield store
    await store.clear()
    await client.aclose()


@pytest.mark.parametrize("cluster", [False, True], ids=["redis", "cluster"])
def test_a_pool_of_one_connection_is_refused_at_once(cluster: bool) -> None:
    """The event listener keeps a connection: with one in all, every command would fail."""
    url = "redis://127.0.0.1:1"  # never connected to
    client = (RedisCluster if cluster else Redis).from_url(url, max_connections=1)
    with pytest.raises(ValueError, match=r"max_connections=10.*leave the default 100"):
        RedisStore(client)
    with pytest.raises(ValueError, match="at least 2 connections"):
        RedisStore.from_url(url, max_connections=1)


async def test_the_burst_is_more_than_the_pool_serves(small_pool: RedisStore) -> None:
    """The premise: the client alone fails part of such a burst."""
    client = small_pool.client
    keys = (f"{small_pool.key_prefix}{i}" for i in range(BURST))
    outcomes = await asyncio.gather(*(client.get(key) for key in keys), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, redis_errors.MaxConnectionsError)]
    assert refused  # (the Cluster client retries some of them)


async def test_every_kind_of_command_waits_for_a_free_connection(small_pool: RedisStore) -> None:
    store = small_pool
    now = time.time()
    records = [SessionRecord(new_id(), {"n": i}, int(now), now) for i in range(BURST)]
    ids = [r.id for r in records]
    assert await asyncio.gather(*(store.save(r, None, 60) for r in records)) == ids
    # Each of these is a command of its own, none shares a round trip with another.
    await asyncio.gather(*(store.link_user("u", sid, 60) for sid in ids))
    # Records not loaded from the store: a touch reads the current value first.
    strangers = [SessionRecord(r.id, {}, r.created, now) for r in records]
    assert await asyncio.gather(*(store.touch(r, 60) for r in strangers)) == ids
    listed = await asyncio.gather(*(store.user_sessions("u") for _ in range(50)))
    assert all(sorted(found) == sorted(ids) for found in listed)
    await asyncio.gather(*(store.publish("hello") for _ in range(BURST)))
    assert await asyncio.gather(*(store.count() for _ in range(20))) == [BURST] * 20
    loaded = await asyncio.gather(*(store.load(sid) for sid in ids))
    assert [r.data["n"] if r else None for r in loaded] == list(range(BURST))
    assert await asyncio.gather(*(store.delete(sid) for sid in ids)) == [True] * BURST


async def test_a_burst_of_logins_beyond_the_pool_is_served(
    make_client: MakeClient, redis_url: str, prefix: str
) -> None:
    """Through a real server: each login saves a session and links it to its user."""

    async def login(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["user"] = request.query["user"]
        return web.Response(text="ok")

    redis = Redis.from_url(redis_url, max_connections=POOL)
    store = RedisStore(redis, key_prefix=prefix)
    client = await make_client(("GET", "/login", login), store=store)
    logins = (client.get("/login", params={"user": f"u{i % 10}"}) for i in range(200))
    responses = await asyncio.gather(*logins)
    assert [r.status for r in responses] == [200] * 200
    assert len(await store.user_sessions("u3")) == 20
    await store.clear()
    await redis.aclose()


async def test_a_wait_for_a_connection_counts_in_the_command_timeout(
    redis_url: str, prefix: str
) -> None:
    """With Redis frozen, commands queued behind the busy connection give up at the same
    timeout as the one on it, and the store works again once Redis does."""
    redis = Redis.from_url(redis_url, max_connections=2)  # one for commands, one for pub/sub
    store = RedisStore(redis, key_prefix=prefix, command_timeout=0.3)
    freezer = Redis.from_url(redis_url)
    await freezer.execute_command("CLIENT", "PAUSE", 1000, "ALL")
    start = time.monotonic()
    outcomes = await asyncio.gather(
        *(store.delete(new_id()) for _ in range(10)), return_exceptions=True
    )
    elapsed = time.monotonic() - start
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
    assert elapsed < 0.9  # together, not one timeout after another
    await asyncio.sleep(1.0 - (time.monotonic() - start) + 0.1)
    assert await store.delete(new_id()) is False
    gc.collect()  # a queued command left unawaited would warn here (an error under -W error)
    await freezer.aclose()
    await redis.aclose()


async def test_a_scan_gives_up_at_the_command_timeout(redis_url: str, prefix: str) -> None:
    """count() and clear() walk the keys page by page, each page within the timeout: a
    frozen Redis makes them fail, not hang (the client here has no timeout of its own)."""
    redis = Redis.from_url(redis_url)
    store = RedisStore(redis, key_prefix=prefix, command_timeout=0.3)
    now = time.time()
    await store.save(SessionRecord(new_id(), {"n": 1}, int(now), now), None, 60)
    freezer = Redis.from_url(redis_url)
    await freezer.execute_command("CLIENT", "PAUSE", 1000, "ALL")
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.count()
    assert time.monotonic() - start < 0.9
    await asyncio.sleep(1.0 - (time.monotonic() - start) + 0.1)
    assert await store.count() == 1
    await store.clear()
    assert await store.count() == 0
    await freezer.aclose()
    await redis.aclose()
