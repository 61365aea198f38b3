"""WebSocket sessions through a real server and real ws_connect clients."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from redis.asyncio import RedisCluster as RedisClusterClient

import aio_sessions
from aio_sessions import (
    CLOSE_SESSION_EXPIRED,
    CLOSE_SESSION_REVOKED,
    MemoryStore,
    RedisStore,
    Store,
    get_manager,
    get_session,
    get_ws_session,
    require_session,
)
from aio_sessions._ids import new_id

from .conftest import session_cookie

Client = TestClient[web.Request, web.Application]


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.regenerate()
    session["user"] = request.query.get("user", "alice")
    return web.Response(text="ok")


async def logout(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return web.Response(text="bye")


async def regenerate(request: web.Request) -> web.Response:
    (await get_session(request)).regenerate()
    return web.Response()


async def write(request: web.Request) -> web.Response:
    session = await get_session(request)
    session[request.query["key"]] = request.query["value"]
    return web.Response()


async def read(request: web.Request) -> web.Response:
    return web.json_response(dict(await get_session(request)))


@require_session("user")
async def chat(request: web.Request) -> web.WebSocketResponse:
    """Greets, then answers "save K V", "get K", "reload"; the session is saved on return."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    session = await get_ws_session(ws)
    await ws.send_str(f"hello {session['user']}")
    async for msg in ws:
        command, *args = msg.data.split()
        if command == "save":
            session[args[0]] = args[1]
            await session.save()
            await ws.send_str("saved")
        elif command == "set":  # not saved now: the middleware saves on return
            session[args[0]] = args[1]
            await ws.send_str("set")
        elif command == "get":
            await ws.send_str(str(session.get(args[0])))
        elif command == "reload":
            await session.reload()
            await ws.send_str("reloaded")
        elif command == "touch":
            session.touch()
            await session.save()
            await ws.send_str("touched")
    return ws


def make_app(store: Store | None = None, **options: Any) -> web.Application:
    app = web.Application()
    aio_sessions.setup(app, store or MemoryStore(), **options)
    app.add_routes(
        [
            web.post("/login", login),
            web.post("/logout", logout),
            web.post("/regenerate", regenerate),
            web.post("/write", write),
            web.get("/read", read),
            web.get("/ws", chat),
        ]
    )
    return app


@pytest.fixture
async def make_client(aiohttp_client: Any) -> Any:
    async def make(store: Store | None = None, **options: Any) -> Client:
        client: Client = await aiohttp_client(make_app(store, **options))
        return client

    return make


def origin(client: Client) -> str:
    return str(client.make_url("/").origin())


async def open_ws(client: Client, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
    kwargs.setdefault("origin", origin(client))
    ws = await client.ws_connect("/ws", **kwargs)
    assert (await ws.receive_str()).startswith("hello")
    return ws


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 1.0) -> int | None:
    """Wait for the server to close the socket; return the close code."""
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type is WSMsgType.CLOSE, msg
    code: int = msg.data  # the code in the server's close frame, as a browser reports it
    return code


async def until(predicate: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# -- the session over a socket -----------------------------------------------------------


async def test_socket_sees_the_handshake_session(make_client: Any) -> None:
    client = await make_client()
    await client.post("/login", params={"user": "bob"})
    ws = await client.ws_connect("/ws", origin=origin(client))
    assert await ws.receive_str() == "hello bob"
    await ws.close()


async def test_save_and_reload_both_directions(make_client: Any) -> None:
    client = await make_client()
    await client.post("/login")
    ws = await open_ws(client)
    await ws.send_str("save colour blue")
    assert await ws.receive_str() == "saved"
    assert (await (await client.get("/read")).json())["colour"] == "blue"

    await client.post("/write", params={"key": "size", "value": "L"})
    # The save reloads the socket's session by itself (live changes)...
    deadline = time.monotonic() + 1
    while True:
        await ws.send_str("get size")
        if await ws.receive_str() == "L":
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    # ...and an explicit reload still works.
    await ws.send_str("reload")
    assert await ws.receive_str() == "reloaded"
    await ws.send_str("get size")
    assert await ws.receive_str() == "L"
    await ws.close()


async def test_changes_are_saved_when_the_handler_returns(make_client: Any) -> None:
    client = await make_client()
    await client.post("/login")
    ws = await open_ws(client)
    await ws.send_str("set mood calm")
    assert await ws.receive_str() == "set"
    await ws.close()
    await until(lambda: len(get_manager(client.app).sockets) == 0)
    assert (await (await client.get("/read")).json())["mood"] == "calm"


async def test_session_created_at_handshake_gets_cookie_on_101(aiohttp_client: Any) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = await get_ws_session(ws)  # loaded by the handshake, never asked before
        await ws.send_str(str(session.new))
        await ws.close()
        return ws

    async def first(request: web.Request) -> web.WebSocketResponse:
        (await get_session(request))["visitor"] = "new"
        return await handler(request)

    app = web.Application()
    aio_sessions.setup(app, save_uninitialized=False)
    app.router.add_get("/ws", first)
    app.router.add_get("/ws2", handler)
    app.router.add_get("/read", read)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        assert "AIOHTTP_SESSION=" in ws._response.headers["Set-Cookie"]
        assert await ws.receive_str() == "False"  # stored during the handshake
    async with client.ws_connect("/ws2") as ws:
        assert await ws.receive_str() == "False"
    assert await (await client.get("/read")).json() == {"visitor": "new"}


async def test_misuse_gives_clear_errors(aiohttp_client: Any) -> None:
    async def before_prepare(request: web.Request) -> web.Response:
        errors = []
        try:
            await get_ws_session(web.WebSocketResponse())
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            async for _ in aio_sessions.session_changes(web.WebSocketResponse()):
                pass
        except RuntimeError as exc:
            errors.append(str(exc))
        return web.json_response(errors)

    async def no_middleware(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            await get_ws_session(ws)
        except RuntimeError as exc:
            await ws.send_str(str(exc))
        await ws.close()
        return ws

    with_setup = web.Application()
    aio_sessions.setup(with_setup)
    with_setup.router.add_get("/", before_prepare)
    client = await aiohttp_client(with_setup)
    errors = await (await client.get("/")).json()
    assert len(errors) == 2
    assert all("await ws.prepare(request)" in error for error in errors)

    bare = web.Application()
    bare.router.add_get("/ws", no_middleware)
    client = await aiohttp_client(bare)
    async with client.ws_connect("/ws") as ws:
        assert "setup(app)" in await ws.receive_str()


# -- guarded handshakes -------------------------------------------------------------------


async def handshake_status(client: Client, **kwargs: Any) -> int:
    try:
        ws = await client.ws_connect("/ws", **kwargs)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def test_handshake_statuses(make_client: Any) -> None:
    client = await make_client()
    assert await handshake_status(client, origin=origin(client)) == 401  # no session yet
    await client.post("/login")
    assert await handshake_status(client, origin=origin(client)) == 101
    assert await handshake_status(client, origin="https://evil.example") == 403
    assert await handshake_status(client, origin="null") == 403
    assert await handshake_status(client) == 403  # no Origin: not allowed by default
    own = origin(client).replace("http://", "https://")
    assert await handshake_status(client, origin=own) == 403  # scheme matters
    # Refused handshakes never upgraded, so nothing was registered.
    assert len(get_manager(client.app).sockets) == 0


async def test_an_origin_refusal_says_why_in_the_log(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    await client.post("/login")
    with caplog.at_level(logging.INFO, logger="aio_sessions"):
        assert await handshake_status(client, origin="https://app.example") == 403
        assert await handshake_status(client) == 403
    refusals = [r.getMessage() for r in caplog.records if "handshake" in r.getMessage()]
    assert len(refusals) == 2
    assert "Origin 'https://app.example' is not this app's origin" in refusals[0]
    assert repr(origin(client)) in refusals[0]
    assert "Origin missing" in refusals[1]


async def test_origins_configuration(make_client: Any) -> None:
    client = await make_client(ws_origins=["https://app.example:443"], ws_allow_missing_origin=True)
    await client.post("/login")
    assert await handshake_status(client, origin="https://app.example") == 101
    assert await handshake_status(client) == 101
    assert await handshake_status(client, origin="https://other.example") == 403


async def test_proxy_origin_with_trust_proxy(make_client: Any) -> None:
    client = await make_client(trust_proxy=True)
    await client.post("/login")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"}
    assert await handshake_status(client, origin="https://chat.example", headers=headers) == 101
    assert await handshake_status(client, origin=origin(client), headers=headers) == 403


async def test_require_session_on_views_and_http(aiohttp_client: Any) -> None:
    @require_session("user", "role", origins=["https://admin.example"])
    class Admin(web.View):
        async def get(self) -> web.StreamResponse:
            if self.request.headers.get("Upgrade", "").lower() == "websocket":
                ws = web.WebSocketResponse()
                await ws.prepare(self.request)
                await ws.send_str("admin socket")
                await ws.close()
                return ws
            return web.Response(text="admin page")

        async def post(self) -> web.Response:
            return web.Response(text="posted")

    class Profile(web.View):
        @require_session("user")
        async def get(self) -> web.Response:
            return web.Response(text="profile")

    async def grant(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["user"], session["role"] = "root", "admin"
        return web.Response()

    app = web.Application()
    aio_sessions.setup(app)
    app.router.add_view("/admin", Admin)
    app.router.add_view("/profile", Profile)
    app.router.add_post("/grant", grant)
    client = await aiohttp_client(app)
    assert (await client.get("/admin")).status == 401
    assert (await client.post("/admin")).status == 401
    assert (await client.get("/profile")).status == 401
    await client.post("/grant")
    assert await (await client.get("/admin")).text() == "admin page"
    assert await (await client.post("/admin")).text() == "posted"
    assert await (await client.get("/profile")).text() == "profile"
    async with client.ws_connect("/admin", origin="https://admin.example") as ws:
        assert await ws.receive_str() == "admin socket"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/admin", origin="https://evil.example")
    assert refused.value.status == 403


# -- revocation in one process ------------------------------------------------------------


async def test_logout_closes_the_sessions_sockets(make_client: Any) -> None:
    client = await make_client()
    await client.post("/login")
    sockets = [await open_ws(client) for _ in range(3)]
    registry = get_manager(client.app).sockets
    sid = session_cookie(client)
    assert len(registry.for_session(sid)) == 3
    assert len(registry.for_user("alice")) == 3
    started = time.monotonic()
    await client.post("/logout")
    for ws in sockets:
        assert await closed_with(ws) == CLOSE_SESSION_REVOKED
    assert time.monotonic() - started < 1.0
    await until(lambda: len(registry) == 0)
    assert registry.for_session(sid) == []


async def test_regenerate_and_admin_delete_close_sockets(make_client: Any) -> None:
    client = await make_client()
    await client.post("/login")
    ws = await open_ws(client)
    await client.post("/regenerate")
    assert await closed_with(ws) == CLOSE_SESSION_REVOKED

    ws = await open_ws(client)
    assert await get_manager(client.app).delete(session_cookie(client))
    assert await closed_with(ws) == CLOSE_SESSION_REVOKED


async def test_logout_everywhere_spares_other_users(aiohttp_client: Any) -> None:
    app = make_app()
    tabs = [await aiohttp_client(app) for _ in range(2)]
    bob = await aiohttp_client(app)
    for tab in tabs:
        await tab.post("/login", params={"user": "alice"})
    await bob.post("/login", params={"user": "bob"})
    alice_sockets = [await open_ws(tab) for tab in tabs for _ in range(2)]
    bob_socket = await open_ws(bob)
    manager = get_manager(app)
    assert len(manager.sockets.for_user("alice")) == 4

    assert await manager.logout_user("alice") == 2
    for ws in alice_sockets:
        assert await closed_with(ws) == CLOSE_SESSION_REVOKED
    for tab in tabs:
        assert await (await tab.get("/read")).json() == {}
    await bob_socket.send_str("get user")
    assert await bob_socket.receive_str() == "bob"
    assert await (await bob.get("/read")).json() == {"user": "bob"}
    assert len(manager.sockets) == 1
    await bob_socket.close()


async def test_idle_timeout_closes_socket_unless_http_keeps_it_alive(make_client: Any) -> None:
    client = await make_client(idle_timeout=1.5)
    await client.post("/login")
    ws = await open_ws(client)
    started = time.monotonic()
    await asyncio.sleep(0.9)
    await client.post("/write", params={"key": "k", "value": "v"})  # activity over HTTP
    await asyncio.sleep(0.9)  # past the first deadline: the socket must still be open
    await ws.send_str("get user")
    assert await ws.receive_str() == "alice"
    assert await closed_with(ws, timeout=4) == CLOSE_SESSION_EXPIRED
    assert time.monotonic() - started >= 2.3
    assert (await (await client.get("/read")).json()) == {}


async def test_far_deadlines_are_picked_up_by_the_sweep(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aio_sessions.expiry

    monkeypatch.setattr(aio_sessions.expiry, "_HORIZON", 0.6)
    client = await make_client(idle_timeout=2)
    await client.post("/login")
    ws = await open_ws(client)
    [binding] = get_manager(client.app).sockets._bindings.values()
    assert binding.timer is None  # beyond the horizon: no timer yet
    started = time.monotonic()
    assert await closed_with(ws, timeout=4) == CLOSE_SESSION_EXPIRED
    assert time.monotonic() - started >= 1.5


async def test_absolute_timeout_closes_socket(make_client: Any) -> None:
    client = await make_client(absolute_timeout=2)
    await client.post("/login")
    ws = await open_ws(client)
    assert await closed_with(ws, timeout=4) == CLOSE_SESSION_EXPIRED


async def test_thousand_sockets_open_and_close_without_leaks(make_client: Any) -> None:
    client = await make_client()
    await client.post("/login")
    registry = get_manager(client.app).sockets
    headers = {"Cookie": f"AIOHTTP_SESSION={session_cookie(client)}", "Origin": origin(client)}
    url = client.make_url("/ws")
    # The test client's connector allows 100 connections; a socket holds one for its life.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as raw:

        async def connect() -> aiohttp.ClientWebSocketResponse:
            ws = await raw.ws_connect(url, headers=headers)
            assert await ws.receive_str() == "hello alice"
            return ws

        sockets = await asyncio.gather(*(connect() for _ in range(1000)))
        assert len(registry) == 1000
        assert len(registry.for_user("alice")) == 1000
        await asyncio.gather(*(ws.close() for ws in sockets[:500]))
        await until(lambda: len(registry) == 500, timeout=20)
        await client.post("/logout")  # the other half closed by revocation
        codes = await asyncio.gather(*(closed_with(ws, timeout=10) for ws in sockets[500:]))
        assert set(codes) == {CLOSE_SESSION_REVOKED}
    await until(lambda: len(registry) == 0, timeout=20)
    assert registry._by_session == {}
    assert registry._by_user == {}
    await until(lambda: not registry._tasks, timeout=20)


# -- revocation across processes (two apps on one real Redis) -------------------------------


@pytest.fixture(params=["redis", "redis-cluster"])
async def two_processes(
    aiohttp_client: Any, request: pytest.FixtureRequest
) -> AsyncIterator[list[Client]]:
    """Two apps sharing one real Redis (or Redis Cluster), each with its own listener."""
    cluster = request.param == "redis-cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    prefix = f"ws{new_id()[:6]}_"
    stores = [
        RedisStore(RedisClusterClient.from_url(url), key_prefix=prefix)
        if cluster
        else RedisStore.from_url(url, key_prefix=prefix)
        for _ in range(2)
    ]
    clients = [await aiohttp_client(make_app(store)) for store in stores]
    await until_async(lambda: _subscribers(stores[0], f"{prefix}revoked"))  # both are in
    yield clients
    for store in stores:
        await store.client.aclose()


async def _subscribers(store: RedisStore, channel: str) -> bool:
    """Whether both listeners subscribed, counted on every node of a cluster."""
    client = store.client
    nodes = client.get_nodes() if isinstance(client, RedisClusterClient) else [None]
    count = 0
    for node in nodes:
        redis = client if node is None else Redis(host=node.host, port=node.port)
        [(_, n)] = await redis.pubsub_numsub(channel)
        count += int(n)
        if node is not None:
            await redis.aclose()
    return count == 2


async def until_async(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_logout_on_one_process_closes_socket_on_another(two_processes: list[Client]) -> None:
    a, b = two_processes
    await a.post("/login")
    sid = session_cookie(a)
    cookies = {"AIOHTTP_SESSION": sid}
    ws_b = await open_ws(b, headers={"Cookie": f"AIOHTTP_SESSION={sid}"})
    assert len(get_manager(b.app).sockets.for_session(sid)) == 1
    started = time.monotonic()
    resp = await a.post("/logout", cookies=cookies)
    assert resp.status == 200
    assert await closed_with(ws_b) == CLOSE_SESSION_REVOKED
    assert time.monotonic() - started < 1.0


async def test_logout_everywhere_across_processes(two_processes: list[Client]) -> None:
    a, b = two_processes
    await a.post("/login", params={"user": "carol"})
    ws_a = await open_ws(a)
    sid = session_cookie(a)
    ws_b = await open_ws(b, headers={"Cookie": f"AIOHTTP_SESSION={sid}"})
    assert await get_manager(b.app).logout_user("carol") == 1
    assert await closed_with(ws_a) == CLOSE_SESSION_REVOKED
    assert await closed_with(ws_b) == CLOSE_SESSION_REVOKED
