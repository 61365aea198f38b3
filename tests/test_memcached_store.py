"""MemcachedStore against a real memcached: aiohttp-session interop both ways, its key format
and 30-day expiry rule, merges across processes, the per-user index, outages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiomcache
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiohttp_session.memcached_storage import MemcachedStorage

from aio_sessions import MemcachedStore, StoreUnavailable, get_manager, get_session, setup
from aio_sessions._ids import new_id
from aio_sessions.stores import SessionRecord

from ._services import MemcachedServer, unavailable
from .conftest import (
    Arrivals,
    MakeClient,
    aiohttp_session_client,
    counter,
    import_without,
    read,
    replay,
    session_cookie,
)

Client = TestClient[web.Request, web.Application]
Address = tuple[str, int]
APP_NAME = web.AppKey("name", str)
DAY = 24 * 3600

AIOHTTP_SESSION_WARNS = pytest.mark.filterwarnings(
    "ignore::aiohttp.web_exceptions.NotAppKeyWarning"
)


@pytest.fixture
async def mc(memcached_address: Address) -> AsyncIterator[aiomcache.Client]:
    client = aiomcache.Client(*memcached_address)
    yield client
    await client.close()


async def expiry(address: Address, key: str) -> float:
    """When memcached will drop ``key``, in epoch seconds (inf: never), as it reports it."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(b"lru_crawler metadump hash\r\n")
        found = None
        while (line := await reader.readline()) != b"END\r\n":
            fields = dict(part.split("=", 1) for part in line.decode().split())
            if unquote(fields["key"]) == key:
                found = int(fields["exp"])
    finally:
        writer.close()
        await writer.wait_closed()
    assert found is not None, f"{key} is not in memcached"
    return float("inf") if found == -1 else float(found)


# -- what is stored ---------------------------------------------------------------------------


async def test_stored_format_and_expiry(
    make_client: MakeClient, mc: aiomcache.Client, memcached_address: Address
) -> None:
    """aiohttp-session's key and JSON; memcached drops it about when the session ends, and
    the record says exactly when that is. Memcached's own clock ticks once a second and may
    lag the real one by another (CI once read 1.1 s before the end): 3 s either way."""
    client = await make_client(store=MemcachedStore(mc), idle_timeout=300)
    await client.get("/count")
    key = f"AIOHTTP_SESSION_{session_cookie(client)}"
    doc = json.loads(await mc.get(key.encode()))
    assert doc["session"] == {"n": 1}
    assert isinstance(doc["created"], int)
    assert doc["expires"] == pytest.approx(time.time() + 300, abs=2)
    assert await expiry(memcached_address, key) == pytest.approx(doc["expires"] + 1, abs=3)
    await mc.delete(key.encode())


@pytest.mark.parametrize("days", [10, 29, 40, 400])
async def test_thirty_day_rule(
    make_client: MakeClient, mc: aiomcache.Client, memcached_address: Address, days: int
) -> None:
    """Past 30 days memcached reads an expiry as a unix time: a 40-day session sent as
    "3456000 seconds" would be dropped at once. Both sides of the rule live their full term."""
    client = await make_client(store=MemcachedStore(mc), max_age=days * DAY)
    await client.get("/count")
    sid = session_cookie(client)
    assert await expiry(memcached_address, f"AIOHTTP_SESSION_{sid}") == pytest.approx(
        time.time() + days * DAY, abs=5
    )
    assert (await (await client.get("/count")).json()) == {"n": 2}
    await mc.delete(f"AIOHTTP_SESSION_{sid}".encode())


# -- aiohttp-session interoperability ----------------------------------------------------------


@AIOHTTP_SESSION_WARNS
@pytest.mark.parametrize("max_age", [None, 3600, 40 * DAY])
async def test_aiohttp_session_sessions_carry_over_and_back(
    aiohttp_client: Any, make_client: MakeClient, mc: aiomcache.Client, max_age: int | None
) -> None:
    theirs = await aiohttp_session_client(aiohttp_client, MemcachedStorage(mc, max_age=max_age))
    await theirs.get("/", params={"set": "user", "value": "alice"})
    their_id = session_cookie(theirs)  # uuid4().hex

    ours = await make_client(store=MemcachedStore(mc), max_age=max_age)
    assert await replay(ours, "/read", their_id) == {"data": {"user": "alice"}, "new": False}
    resp = await ours.get("/count", cookies={"AIOHTTP_SESSION": their_id})
    assert await resp.json() == {"user": "alice", "n": 1}
    # ...and back: aiohttp-session reads what we wrote, and we read what it writes on top.
    resp = await theirs.get("/", params={"set": "via", "value": "theirs"})
    assert await resp.json() == {"user": "alice", "n": 1, "via": "theirs"}
    expected = {"user": "alice", "n": 1, "via": "theirs"}
    assert (await replay(ours, "/read", their_id))["data"] == expected
    await mc.delete(f"AIOHTTP_SESSION_{their_id}".encode())


@AIOHTTP_SESSION_WARNS
async def test_our_sessions_readable_by_aiohttp_session(
    aiohttp_client: Any, make_client: MakeClient, mc: aiomcache.Client
) -> None:
    ours = await make_client(store=MemcachedStore(mc), max_age=40 * DAY)
    await ours.get("/count")
    sid = session_cookie(ours)
    theirs = await aiohttp_session_client(aiohttp_client, MemcachedStorage(mc, max_age=40 * DAY))
    resp = await theirs.get(
        "/", params={"set": "via", "value": "theirs"}, cookies={"AIOHTTP_SESSION": sid}
    )
    assert await resp.json() == {"n": 1, "via": "theirs"}
    assert (await (await ours.get("/read")).json())["data"] == {"n": 1, "via": "theirs"}
    await mc.delete(f"AIOHTTP_SESSION_{sid}".encode())


@AIOHTTP_SESSION_WARNS
async def test_a_session_aiohttp_session_emptied_is_a_fresh_one(
    aiohttp_client: Any, make_client: MakeClient, mc: aiomcache.Client
) -> None:
    """aiohttp-session stores ``{}`` for a session it invalidated: no session, no 500."""
    sid = new_id()
    await mc.set(f"AIOHTTP_SESSION_{sid}".encode(), b"{}", exptime=60)
    ours = await make_client(store=MemcachedStore(mc))
    assert await replay(ours, "/read", sid) == {"data": {}, "new": True}
    await mc.delete(f"AIOHTTP_SESSION_{sid}".encode())


async def test_custom_cookie_name_prefix(make_client: MakeClient, mc: aiomcache.Client) -> None:
    """aiohttp-session keys by ``cookie_name + "_"``: the same prefix finds its sessions."""
    client = await make_client(store=MemcachedStore(mc, key_prefix="sid_"), cookie_name="sid")
    await client.get("/count")
    sid = session_cookie(client, "sid")
    assert await mc.get(f"sid_{sid}".encode()) is not None
    await mc.delete(f"sid_{sid}".encode())


# -- several processes -------------------------------------------------------------------------


async def two_apps(aiohttp_client: Any, address: Address, prefix: str, *routes: Any) -> list[Any]:
    """Two apps with their own memcached clients, as two worker processes would be."""
    clients = []
    for name in ("a", "b"):
        app = web.Application()
        app[APP_NAME] = name
        mc = aiomcache.Client(*address)
        setup(app, MemcachedStore(mc, key_prefix=prefix))

        async def close(app: web.Application, mc: aiomcache.Client = mc) -> None:
            await mc.close()

        app.on_cleanup.append(close)
        app.router.add_get("/count", counter)
        app.router.add_get("/read", read)
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        clients.append(await aiohttp_client(app))
    return clients


async def test_two_app_processes_share_sessions_and_keep_writes(
    aiohttp_client: Any, memcached_address: Address, prefix: str
) -> None:
    gate = asyncio.Event()

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        await gate.wait()  # every request holds the same old snapshot
        session[request.query["k"]] = request.app[APP_NAME]
        return web.Response()

    a, b = await two_apps(aiohttp_client, memcached_address, prefix, ("GET", "/w", write))
    await a.get("/count")
    sid = session_cookie(a)
    assert (await replay(b, "/read", sid))["data"] == {"n": 1}
    cookie = {"AIOHTTP_SESSION": sid}
    pending = [
        asyncio.ensure_future(c.get("/w", params={"k": f"k{i}"}, cookies=cookie))
        for i, c in enumerate([a, b, a, b, a, b])
    ]
    await asyncio.sleep(0.1)
    gate.set()
    assert [r.status for r in await asyncio.gather(*pending)] == [200] * 6
    data = (await replay(b, "/read", sid))["data"]
    assert data == {"n": 1, "k0": "a", "k1": "b", "k2": "a", "k3": "b", "k4": "a", "k5": "b"}


async def test_burst_of_writers_on_one_session(
    make_client: MakeClient, mc: aiomcache.Client
) -> None:
    """50 overlapping writes of one session in one process: none fails, none is lost, and a
    value JSON cannot hold fails its own request alone."""
    writers = 50
    arrivals = Arrivals(writers)

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        await arrivals.wait()
        key = request.query["k"]
        session[key] = object() if key == "bad" else True
        return web.Response()

    store = MemcachedStore(mc, key_prefix=f"burst-{new_id()[:6]}_")
    client = await make_client(("GET", "/w", write), store=store)
    await client.get("/count")
    keys = [f"k{i}" for i in range(writers - 1)] + ["bad"]
    responses = await asyncio.gather(*(client.get("/w", params={"k": k}) for k in keys))
    assert sorted(r.status for r in responses) == [200] * (writers - 1) + [500]
    data = (await (await client.get("/read")).json())["data"]
    assert data == {"n": 1, **{k: True for k in keys if k != "bad"}}
    await store.clear()


async def test_logout_everywhere_across_processes(
    aiohttp_client: Any, memcached_address: Address, prefix: str
) -> None:
    """The per-user index lives in memcached, so one process finds the user's sessions that
    another made (sockets, though, are closed only in the process that asks)."""

    async def login(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.regenerate()
        session["user"] = "alice"
        return web.Response()

    a, b = await two_apps(aiohttp_client, memcached_address, prefix, ("POST", "/login", login))
    for client in (a, b, b):
        client.session.cookie_jar.clear()
        await client.post("/login")
    sessions = [session_cookie(a), session_cookie(b)]
    manager = get_manager(a.app)
    assert len(await manager.user_session_ids("alice")) == 3
    assert await manager.logout_user("alice") == 3
    for client, sid in zip((a, b), sessions, strict=True):
        assert (await replay(client, "/read", sid))["data"] == {}
    assert manager.store.shares_events is False


async def test_count_and_clear_keep_to_their_prefix(mc: aiomcache.Client) -> None:
    ours, other = MemcachedStore(mc, key_prefix="ours_"), MemcachedStore(mc, key_prefix="other_")
    foreign = b"unrelated-key"
    await mc.set(foreign, b"1", exptime=60)
    for store, n in ((ours, 3), (other, 2)):
        for _ in range(n):
            now = time.time()
            await store.save(SessionRecord(new_id(), {}, int(now), now), None, 60)
    await ours.link_user("alice", new_id(), 60)  # an index is no session
    assert (await ours.count(), await other.count()) == (3, 2)
    await ours.clear()
    assert (await ours.count(), await other.count()) == (0, 2)
    assert await ours.user_sessions("alice") == []
    assert await mc.get(foreign) == b"1"
    await other.clear()
    await mc.delete(foreign)


# -- outages ---------------------------------------------------------------------------------


@pytest.fixture
def own_memcached() -> Iterator[MemcachedServer]:
    """A memcached of this test alone, to stop, restart, pause."""
    try:
        server = MemcachedServer().start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(f"memcached cannot start: {exc}")
    yield server
    server.stop()


async def test_memcached_down_gives_503_and_recovers(
    make_client: MakeClient, own_memcached: MemcachedServer
) -> None:
    mc = aiomcache.Client(own_memcached.host, own_memcached.port)
    client = await make_client(store=MemcachedStore(mc))
    assert await (await client.get("/count")).json() == {"n": 1}
    own_memcached.stop()
    for path in ("/read", "/count"):
        resp = await client.get(path)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
    client.session.cookie_jar.clear()
    assert (await client.get("/count")).status == 503  # a new visitor: nothing to load, a set
    own_memcached.start()
    # memcached keeps nothing across a restart: the session is gone, and a fresh one starts.
    resp = await client.get("/count")
    assert resp.status == 200
    assert await resp.json() == {"n": 1}
    assert await (await client.get("/count")).json() == {"n": 2}
    await mc.close()


def thread_states(pid: int) -> list[str]:
    """The scheduler state of each thread of a process (T: stopped), or [] without procfs."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.exists():
        return []
    return [(t / "stat").read_text().rpartition(")")[2].split()[0] for t in tasks.iterdir()]


async def all_threads_stopped(pid: int) -> None:
    """Wait until SIGSTOP has reached every thread: until then one may still answer."""
    for _ in range(200):
        states = thread_states(pid)
        if not states:
            await asyncio.sleep(0.2)  # no procfs: give the signal time
            return
        if all(state in "tT" for state in states):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"memcached threads not stopped: {states}")


async def test_memcached_hanging_gives_503_within_the_timeout(
    make_client: MakeClient, own_memcached: MemcachedServer
) -> None:
    mc = aiomcache.Client(own_memcached.host, own_memcached.port)
    store = MemcachedStore(mc, command_timeout=0.5)
    client = await make_client(store=store)
    await client.get("/count")
    assert own_memcached.process is not None
    os.kill(own_memcached.process.pid, signal.SIGSTOP)
    try:
        await all_threads_stopped(own_memcached.process.pid)
        started = time.monotonic()
        resp = await asyncio.wait_for(client.get("/read"), timeout=10)
        assert resp.status == 503
        assert time.monotonic() - started < 3
        # The key walk of count() and clear() is bounded the same way.
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.count(), timeout=10)
        assert time.monotonic() - started < 3
    finally:
        os.kill(own_memcached.process.pid, signal.SIGCONT)
    for _ in range(50):
        resp = await client.get("/count")
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert await resp.json() == {"n": 2}  # the connection the stalled command held is sound
    assert await (await client.get("/count")).json() == {"n": 3}
    await mc.close()


# -- arguments -------------------------------------------------------------------------------


def test_bad_arguments(mc: aiomcache.Client) -> None:
    with pytest.raises(TypeError, match=r"aiomcache\.Client"):
        MemcachedStore("127.0.0.1:11211")  # type: ignore[arg-type]
    for prefix in ("with space_", "tab\t", "x" * 200):
        with pytest.raises(ValueError, match="key_prefix"):
            MemcachedStore(mc, key_prefix=prefix)
    with pytest.raises(TypeError, match="key_prefix"):
        MemcachedStore(mc, key_prefix=b"AIOHTTP_SESSION_")  # type: ignore[arg-type]
    for timeout in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="command_timeout"):
            MemcachedStore(mc, command_timeout=timeout)
    with pytest.raises(TypeError, match=r"setup\(app, MemcachedStore\(client\), max_age=60\)"):
        MemcachedStore(mc, max_age=60)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="key_factory"):
        MemcachedStore(mc, key_factory=lambda: "x")  # type: ignore[call-arg]


def test_missing_aiomcache_names_the_extra() -> None:
    assert "pip install 'aio-sessions[memcached]'" in import_without("aiomcache", "MemcachedStore")


async def test_a_burst_beyond_the_pool_waits_its_turn(
    memcached_address: Address, prefix: str
) -> None:
    """aiomcache queues commands for a free connection (RedisStore needs its own limiter for
    that: tests/test_redis_pool.py); 300 at once over a pool of 2 are all served."""
    client = aiomcache.Client(*memcached_address, pool_size=2)
    store = MemcachedStore(client, key_prefix=prefix)
    now = time.time()
    records = [SessionRecord(new_id(), {"n": i}, int(now), now) for i in range(300)]
    ids = [r.id for r in records]
    assert await asyncio.gather(*(store.save(r, None, 60) for r in records)) == ids
    await asyncio.gather(*(store.link_user("u", sid, 60) for sid in ids))
    assert sorted(await store.user_sessions("u")) == sorted(ids)
    loaded = await asyncio.gather(*(store.load(sid) for sid in ids))
    assert [r.data["n"] if r else None for r in loaded] == list(range(300))
    assert await asyncio.gather(*(store.delete(sid) for sid in ids)) == [True] * 300
    await client.close()
