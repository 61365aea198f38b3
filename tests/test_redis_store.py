"""RedisStore against a real redis-server: round trips, aiohttp-session interop, outages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp_session.redis_storage import RedisStorage
from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import Connection

from aio_sessions import RedisStore, StoreUnavailable, get_session, setup
from aio_sessions._ids import new_id
from aio_sessions.stores import Changes, SessionRecord

from .conftest import (
    Arrivals,
    MakeClient,
    aiohttp_session_client,
    counter,
    read,
    replay,
    session_cookie,
)

APP_NAME = web.AppKey("name", str)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Monitor:
    """The commands clients send to Redis, read with MONITOR (commands run by scripts excluded)."""

    def __init__(self, redis_url: str) -> None:
        self.client = Redis.from_url(redis_url)
        self.marker_client = Redis.from_url(redis_url)
        self.commands: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Monitor:
        ready = asyncio.Event()

        async def listen() -> None:
            async with self.client.monitor() as monitor:
                ready.set()
                async for event in monitor.listen():
                    if event["client_type"] != "lua":
                        self.commands.append(event["command"])

        self._task = asyncio.ensure_future(listen())
        await ready.wait()
        await self.settle()
        return self

    async def settle(self) -> list[str]:
        """The command names seen since the last call, up to a marker sent now."""
        marker = f"marker-{new_id()}"
        await self.marker_client.echo(marker)
        deadline = asyncio.get_running_loop().time() + 5
        while not any(marker in command for command in self.commands):
            assert asyncio.get_running_loop().time() < deadline, "MONITOR fell silent"
            await asyncio.sleep(0.01)
        end = next(i for i, command in enumerate(self.commands) if marker in command)
        seen, self.commands = self.commands[:end], self.commands[end + 1 :]
        return [command.split()[0].upper() for command in seen]

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()
        await self.marker_client.aclose()


async def test_round_trips(
    make_client: MakeClient, redis: Redis, redis_url: str, prefix: str
) -> None:
    client = await make_client(store=RedisStore(redis, key_prefix=prefix))
    await client.get("/count")
    await client.get("/count")  # loads the script
    async with Monitor(redis_url) as monitor:
        await monitor.settle()
        await client.get("/read")
        assert await monitor.settle() == ["GET"]
        await client.get("/count")
        assert await monitor.settle() == ["GET", "EVALSHA"]
        client.session.cookie_jar.clear()
        await client.get("/count")  # a new visitor: nothing to load, one SET
        assert await monitor.settle() == ["SET"]
        await client.get("/plain-404")
        assert await monitor.settle() == []


async def test_stored_format_and_ttl(make_client: MakeClient, redis: Redis, prefix: str) -> None:
    client = await make_client(store=RedisStore(redis, key_prefix=prefix), idle_timeout=300)
    await client.get("/count")
    key = f"{prefix}{session_cookie(client)}"
    doc = json.loads(await redis.get(key))
    assert doc["session"] == {"n": 1}
    assert isinstance(doc["created"], int)
    assert 299_000 < await redis.pttl(key) <= 300_000


async def test_decode_responses_client(
    make_client: MakeClient, redis_url: str, prefix: str
) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    client = await make_client(store=RedisStore(redis, key_prefix=prefix))
    for n in (1, 2, 3):
        assert await (await client.get("/count")).json() == {"n": n}
    await redis.aclose()


def test_rejects_other_clients() -> None:
    with pytest.raises(TypeError, match=r"redis\.asyncio"):
        RedisStore(object())  # type: ignore[arg-type]


async def test_two_app_processes_share_sessions_and_keep_writes(
    aiohttp_client: Any, redis_url: str, prefix: str
) -> None:
    """Two apps with their own connections, as two worker processes would be."""
    gate = asyncio.Event()

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        await gate.wait()
        session[request.query["k"]] = request.app[APP_NAME]
        return web.Response()

    clients: list[TestClient[web.Request, web.Application]] = []
    for name in ("a", "b"):
        app = web.Application()
        app[APP_NAME] = name
        setup(app, RedisStore.from_url(redis_url, key_prefix=prefix))
        app.router.add_get("/count", counter)
        app.router.add_get("/read", read)
        app.router.add_get("/w", write)
        clients.append(await aiohttp_client(app))
    a, b = clients
    await a.get("/count")
    sid = session_cookie(a)
    assert (await replay(b, "/read", sid))["data"] == {"n": 1}
    cookie = {"AIOHTTP_SESSION": sid}
    pending = [
        asyncio.ensure_future(c.get("/w", params={"k": f"k{i}"}, cookies=cookie))
        for i, c in enumerate([a, b, a, b])
    ]
    await asyncio.sleep(0.1)
    gate.set()
    await asyncio.gather(*pending)
    data = (await replay(b, "/read", sid))["data"]
    assert data == {"n": 1, "k0": "a", "k1": "b", "k2": "a", "k3": "b"}


# -- aiohttp-session interoperability --------------------------------------------------------

AIOHTTP_SESSION_WARNS = pytest.mark.filterwarnings(
    "ignore::aiohttp.web_exceptions.NotAppKeyWarning"
)


@AIOHTTP_SESSION_WARNS
async def test_aiohttp_session_sessions_carry_over(
    aiohttp_client: Any, make_client: MakeClient, redis: Redis
) -> None:
    theirs = await aiohttp_session_client(aiohttp_client, RedisStorage(redis))
    await theirs.get("/", params={"set": "user", "value": "alice"})
    their_id = session_cookie(theirs)  # uuid4().hex

    ours = await make_client(store=RedisStore(redis))
    assert (await replay(ours, "/read", their_id))["data"] == {"user": "alice"}
    resp = await ours.get("/count", cookies={"AIOHTTP_SESSION": their_id})
    assert await resp.json() == {"user": "alice", "n": 1}
    # ...and back: aiohttp-session reads what we wrote.
    resp = await theirs.get("/")
    assert await resp.json() == {"user": "alice", "n": 1}
    await redis.delete(f"AIOHTTP_SESSION_{their_id}")


@AIOHTTP_SESSION_WARNS
async def test_our_sessions_readable_by_aiohttp_session(
    aiohttp_client: Any, make_client: MakeClient, redis: Redis
) -> None:
    ours = await make_client(store=RedisStore(redis))
    await ours.get("/count")
    sid = session_cookie(ours)
    theirs = await aiohttp_session_client(aiohttp_client, RedisStorage(redis))
    resp = await theirs.get(
        "/", params={"set": "via", "value": "theirs"}, cookies={"AIOHTTP_SESSION": sid}
    )
    assert await resp.json() == {"n": 1, "via": "theirs"}
    assert (await (await ours.get("/read")).json())["data"] == {"n": 1, "via": "theirs"}
    await redis.delete(f"AIOHTTP_SESSION_{sid}")


# -- outages -------------------------------------------------------------------------------


async def test_redis_down_gives_503_and_recovers(make_client: MakeClient, own_redis: Any) -> None:
    client = await make_client(store=RedisStore.from_url(own_redis.url))
    assert await (await client.get("/count")).json() == {"n": 1}
    own_redis.stop()
    for path in ("/read", "/count"):
        resp = await client.get(path)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
    own_redis.start()
    resp = await client.get("/count")  # the pool's dead connections are replaced on the spot
    assert resp.status == 200
    assert await resp.json() == {"n": 2}  # nothing stored was lost


async def test_redis_hanging_gives_503_within_timeout(
    make_client: MakeClient, own_redis: Any
) -> None:
    client = await make_client(
        store=RedisStore.from_url(own_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    )
    await client.get("/count")
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        resp = await asyncio.wait_for(client.get("/read"), timeout=10)
        assert resp.status == 503
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    for _ in range(50):
        resp = await client.get("/count")
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert await resp.json() == {"n": 2}


def test_the_documented_command_timeout_is_the_default(redis_url: str) -> None:
    assert RedisStore.from_url(redis_url).command_timeout == 2.0
    assert RedisStore(Redis.from_url(redis_url)).command_timeout == 2.0
    for bad in (0, -1, float("nan"), "2"):
        with pytest.raises((TypeError, ValueError), match="command_timeout"):
            RedisStore.from_url(redis_url, command_timeout=bad)


@pytest.mark.parametrize("build", ["from_url", "hand-built client, no timeouts of its own"])
async def test_a_hung_redis_costs_a_request_at_most_the_command_timeout(
    make_client: MakeClient, own_redis: Any, build: str
) -> None:
    """Frozen Redis (SIGSTOP): each request is a 503 within ``command_timeout``, whatever
    the client's own timeouts and retries; after SIGCONT the app serves again, data intact."""
    limit = 0.5
    if build == "from_url":
        store = RedisStore.from_url(own_redis.url, command_timeout=limit)
    else:
        store = RedisStore(Redis(host="127.0.0.1", port=own_redis.port), command_timeout=limit)
    client = await make_client(store=store)
    assert await (await client.get("/count")).json() == {"n": 1}
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        for path in ("/read", "/count"):
            started = time.monotonic()
            resp = await client.get(path)
            elapsed = time.monotonic() - started
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert limit <= elapsed < limit + 1.0  # was 4 s through from_url, forever by hand
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    resp = await client.get("/count")
    assert resp.status == 200
    assert await resp.json() == {"n": 2}  # the 503s wrote nothing, and nothing was lost
    if build != "from_url":
        await store.client.aclose()


async def test_a_url_that_is_not_redis_is_an_outage(
    make_client: MakeClient, aiohttp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Another service's port (here an HTTP server): 503 like any outage, never a 500, and
    the event listener keeps retrying with its backoff instead of dying."""
    other = await aiohttp_server(web.Application())
    client = await make_client(store=RedisStore.from_url(f"redis://127.0.0.1:{other.port}/0"))
    cookie = {"Cookie": f"AIOHTTP_SESSION={new_id()}"}  # a lookup, and a save
    for path in ("/read", "/count"):
        resp = await client.get(path, headers=cookie)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"

    def retries() -> int:
        return sum("listener lost the store" in r.getMessage() for r in caplog.records)

    for _ in range(200):  # a failed try takes at most command_timeout (2 s), then backoff
        if retries() >= 2:
            break
        await asyncio.sleep(0.05)
    assert retries() >= 2


async def test_burst_of_writers_on_one_session(
    make_client: MakeClient, redis: Redis, redis_url: str, prefix: str
) -> None:
    """50 overlapping writes of one session: none fails, none is lost, few round trips."""
    writers = 50
    arrivals = Arrivals(writers)

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        await arrivals.wait()
        key = request.query["k"]
        if key == "bad":
            session[key] = object()  # this request alone must fail
        else:
            session[key] = True
        return web.Response()

    client = await make_client(("GET", "/w", write), store=RedisStore(redis, key_prefix=prefix))
    await client.get("/count")
    keys = [f"k{i}" for i in range(writers - 1)] + ["bad"]
    async with Monitor(redis_url) as monitor:
        responses = await asyncio.gather(*(client.get("/w", params={"k": k}) for k in keys))
        commands = await monitor.settle()
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * (writers - 1) + [500]
    data = (await (await client.get("/read")).json())["data"]
    assert data == {"n": 1, **{k: True for k in keys if k != "bad"}}
    # Overlapping requests share their loads (MGET) and their saves (compare-and-set).
    assert commands.count("GET") + commands.count("MGET") < writers / 2
    assert commands.count("EVALSHA") < writers / 2


# -- saves of different sessions at once ---------------------------------------------------


class Sends(Connection):
    """A redis-py connection that counts its writes to Redis: one per round trip."""

    count = 0

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        Sends.count += 1
        await super().send_packed_command(*args, **kwargs)


async def new_sessions(store: RedisStore, n: int) -> list[SessionRecord]:
    """``n`` sessions saved in Redis, ready for a compare-and-set (as if just loaded)."""
    now = time.time()
    records = [SessionRecord(new_id(), {"n": 0}, int(now), now) for _ in range(n)]
    assert await asyncio.gather(*(store.save(r, None, 60) for r in records)) == [
        r.id for r in records
    ]
    return records


async def save_all(store: RedisStore, records: list[SessionRecord]) -> list[Any]:
    """Every record saved at once with ``n`` set to its position; outcomes or errors."""
    saves = (store.save(r, Changes(set={"n": i}), 60) for i, r in enumerate(records))
    return await asyncio.gather(*saves, return_exceptions=True)


async def test_saves_of_different_sessions_share_one_round_trip(
    redis: Redis, redis_url: str, prefix: str
) -> None:
    """Writes issued together go out as one pipeline; a lone write is still one command."""
    store = RedisStore(Redis.from_url(redis_url, connection_class=Sends), key_prefix=prefix)
    await store.client.ping()  # a connection, its handshake done
    async with Monitor(redis_url) as monitor:
        sent = Sends.count
        records = await new_sessions(store, 20)  # 20 new sessions: one round trip of SETs
        assert Sends.count - sent == 1
        assert await monitor.settle() == ["SET"] * 20
        await save_all(store, records[:1])  # loads the script
        await monitor.settle()

        sent = Sends.count
        assert await save_all(store, records[:1]) == [records[0].id]
        assert Sends.count - sent == 1
        assert await monitor.settle() == ["EVALSHA"]

        sent = Sends.count
        assert await save_all(store, records) == [r.id for r in records]
        assert Sends.count - sent == 1
        assert await monitor.settle() == ["EVALSHA"] * 20

        # Redis lost its scripts (a restart, SCRIPT FLUSH): loaded once, the batch resent.
        await redis.script_flush()
        await monitor.settle()
        sent = Sends.count
        assert await save_all(store, records) == [r.id for r in records]
        assert Sends.count - sent == 3
        assert await monitor.settle() == ["EVALSHA"] * 20 + ["SCRIPT"] + ["EVALSHA"] * 20
    for i, rec in enumerate(records):
        loaded = await store.load(rec.id)
        assert loaded is not None
        assert loaded.data == {"n": i}
    await store.client.aclose()


@pytest.mark.parametrize("cluster", [False, True], ids=["redis", "cluster"])
async def test_each_save_of_a_batch_gets_its_own_outcome(
    request: pytest.FixtureRequest, prefix: str, cluster: bool
) -> None:
    """In one batch: a gone session is None and a damaged one an error, for their own
    waiters alone; the others are written, also after the scripts are flushed. On a Cluster
    the batch spans every node."""
    if cluster:
        client: Redis | RedisCluster = RedisCluster.from_url(
            request.getfixturevalue("redis_cluster_url")
        )
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"))
    store = RedisStore(client, key_prefix=prefix)
    records = await new_sessions(store, 30)
    gone, damaged = records[3], records[7]
    await client.delete(store._key(gone.id))
    await client.delete(store._key(damaged.id))
    await client.hset(store._key(damaged.id), "f", "v")  # a hash: the script fails on it
    await client.script_flush()
    outcomes = await save_all(store, records)
    assert outcomes[3] is None
    assert isinstance(outcomes[7], redis_errors.ResponseError)
    assert "WRONGTYPE" in str(outcomes[7])
    for i, (rec, outcome) in enumerate(zip(records, outcomes, strict=True)):
        if rec in (gone, damaged):
            continue
        assert outcome == rec.id
        loaded = await store.load(rec.id)
        assert loaded is not None
        assert loaded.data == {"n": i}
    await store.clear()
    await client.aclose()


async def test_redis_lost_mid_batch_fails_every_save_of_it(own_redis: Any) -> None:
    """Frozen Redis: every save of the batch is StoreUnavailable within command_timeout.
    Killed with the batch sent: every save is StoreUnavailable at once. Restarted: saved."""
    limit = 0.5
    store = RedisStore.from_url(own_redis.url, command_timeout=limit)
    records = await new_sessions(store, 10)
    await save_all(store, records[:1])  # loads the script
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        outcomes = await save_all(store, records)
        elapsed = time.monotonic() - started
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
    assert limit <= elapsed < limit + 1.0

    store.command_timeout = 10.0  # from here on a failure is the lost connection, not a wait
    records = await new_sessions(store, 10)
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    pending = asyncio.ensure_future(save_all(store, records))
    await asyncio.sleep(0.2)  # the batch is sent and waits for its replies
    os.kill(own_redis.process.pid, signal.SIGKILL)
    started = time.monotonic()
    outcomes = await pending
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
    assert time.monotonic() - started < 2.0
    own_redis.process.wait()
    own_redis.start()
    assert await save_all(store, records) == [r.id for r in records]
    await store.close()
