"""Shared fixtures: real aiohttp servers and clients around a session-enabled app."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aio_sessions
from aio_sessions import MemoryStore, Store
from aio_sessions._ids import new_id
from aio_sessions.stores.base import TTL, Changes, SessionRecord

from ._services import MemcachedServer, RedisCluster, RedisServer, unavailable

# Every store as a fixture (kit, server_side, on_disk), for any test module.
from .kits import kit, on_disk, server_side  # noqa: F401

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


async def counter(request: web.Request) -> web.Response:
    """Increment ``n`` and echo the session."""
    session = await aio_sessions.get_session(request)
    session["n"] = session.get("n", 0) + 1
    return web.json_response(dict(session))


async def read(request: web.Request) -> web.Response:
    """Only read the session."""
    session = await aio_sessions.get_session(request)
    return web.json_response({"data": dict(session), "new": session.new})


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone, so tests sharing one Redis or memcached never meet."""
    return f"t{new_id()[:6]}_"


@pytest.fixture
def make_client(aiohttp_client: Any) -> MakeClient:
    """Start a real server whose app has sessions; ``routes`` are (method, path, handler)."""

    async def make(
        *routes: tuple[str, str, Any],
        store: Store | None = None,
        **options: Any,
    ) -> TestClient[web.Request, web.Application]:
        app = web.Application()
        aio_sessions.setup(app, store if store is not None else MemoryStore(), **options)
        app.router.add_get("/count", counter)
        app.router.add_get("/read", read)
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


class Counted(Store):
    """The kit's real store, also counting the loads and the writes (saves and touches)
    asked of it. Every call reaches the store; closing is left to the kit, so several apps
    can share one store."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.loads = 0
        self.writes = 0

    async def load(self, token: str) -> SessionRecord | None:
        self.loads += 1
        return await self.inner.load(token)

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        self.writes += 1
        return await self.inner.save(record, changes, ttl)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        self.writes += 1
        return await self.inner.touch(record, ttl)

    async def delete(self, session_id: str) -> bool:
        return await self.inner.delete(session_id)

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        await self.inner.link_user(user, session_id, ttl)

    async def user_sessions(self, user: str) -> list[str]:
        return await self.inner.user_sessions(user)

    async def count(self) -> int:
        return await self.inner.count()

    async def clear(self) -> None:
        await self.inner.clear()


class CountingStore(MemoryStore):
    """A real MemoryStore that also counts the calls the middleware makes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def load(self, token: str) -> Any:
        self.calls.append("load")
        return await super().load(token)

    async def save(self, record: Any, changes: Any, ttl: float) -> Any:
        self.calls.append("save")
        return await super().save(record, changes, ttl)

    async def touch(self, record: Any, ttl: float) -> Any:
        self.calls.append("touch")
        return await super().touch(record, ttl)

    async def delete(self, session_id: str) -> bool:
        self.calls.append("delete")
        return await super().delete(session_id)


def session_cookie(
    client: TestClient[web.Request, web.Application], name: str = "AIOHTTP_SESSION"
) -> str:
    """The session cookie the test client holds."""
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[name].value


async def send_cookie(
    client: TestClient[web.Request, web.Application], path: str, cookie: str
) -> aiohttp.ClientResponse:
    """GET ``path`` with exactly this cookie, from a client that keeps none of its own."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        resp = await raw.get(client.make_url(path), headers={"Cookie": f"AIOHTTP_SESSION={cookie}"})
        await resp.read()
        return resp


async def replay(
    client: TestClient[web.Request, web.Application], path: str, cookie: str
) -> dict[str, Any]:
    """The JSON answer to an old (or forged) cookie."""
    resp = await send_cookie(client, path, cookie)
    assert resp.status == 200
    result: dict[str, Any] = await resp.json()
    return result


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the whole run: REDIS_URL if set, else a throwaway redis-server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    try:
        server = RedisServer().start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(f"Redis cannot start: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone that fsyncs every write before answering (an
    append-only file), so a restart on its port, even after SIGKILL, keeps what it
    acknowledged; the test may stop, kill, freeze and restart it."""
    try:
        server = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(f"Redis cannot start: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A real three-master Redis Cluster built for this run."""
    try:
        cluster = RedisCluster().start()
    except (FileNotFoundError, RuntimeError, subprocess.SubprocessError) as exc:
        unavailable(f"Redis Cluster cannot start: {exc}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def memcached_address() -> Iterator[tuple[str, int]]:
    """A real memcached for the whole run, started on a free loopback port: (host, port)."""
    try:
        server = MemcachedServer().start()
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(f"memcached cannot start: {exc}")
    try:
        yield server.host, server.port
    finally:
        server.stop()


async def aiohttp_session_client(aiohttp_client: Any, storage: Any) -> Any:
    """A real aiohttp-session app on ``storage``: GET / echoes the session, ?set=K&value=V writes.

    aiohttp-session 2.12 keeps request state under string keys, which aiohttp 3.14 warns
    about: tests using it filter NotAppKeyWarning.
    """
    import aiohttp_session

    async def handler(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        if "set" in request.query:
            session[request.query["set"]] = request.query["value"]
        return web.json_response(dict(session))

    app = web.Application()
    aiohttp_session.setup(app, storage)
    app.router.add_get("/", handler)
    return await aiohttp_client(app)


def import_without(package: str, name: str) -> str:
    """What ``aio_sessions.<name>`` raises in a fresh interpreter where ``package`` cannot be
    imported, after checking that the stores without it still work there."""
    code = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "import aio_sessions\n"
        "aio_sessions.MemoryStore()\n"
        "try:\n"
        f"    aio_sessions.{name}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


class Arrivals:
    """Lets ``n`` concurrent handlers wait until all of them have arrived (a barrier that
    also runs on Python 3.10, which has no asyncio.Barrier)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self._all = asyncio.Event()

    async def wait(self) -> None:
        self.count += 1
        if self.count == self.n:
            self._all.set()
        await self._all.wait()
