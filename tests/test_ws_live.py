"""Sockets in step with their session: push, live changes and guard re-checks, in one
process (MemoryStore) and across two processes (two apps on one real Redis)."""

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

import aio_sessions
from aio_sessions import (
    CLOSE_SESSION_FORBIDDEN,
    MemoryStore,
    RedisStore,
    get_manager,
    get_session,
    get_ws_session,
    require_session,
    session_changes,
)
from aio_sessions._ids import new_id

Client = TestClient[web.Request, web.Application]


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.regenerate()
    session["user"] = request.query["user"]
    session["role"] = request.query.get("role", "member")
    return web.Response()


async def write(request: web.Request) -> web.Response:
    session = await get_session(request)
    for key, value in request.query.items():
        if value == "-":
            session.pop(key, None)
        else:
            session[key] = value
    return web.Response()


async def push(request: web.Request) -> web.Response:
    sockets = get_manager(request).sockets
    kind, text = request.query["kind"], request.query["text"]
    message: Any = {"text": text} if kind == "json" else text.encode() if kind == "bytes" else text
    if "user" in request.query:
        sent = await sockets.send_to_user(request.query["user"], message)
    else:
        sent = await sockets.send_to_session(request.query["session"], message)
    return web.json_response({"sent": sent})


@require_session("user")
async def feed(request: web.Request) -> web.WebSocketResponse:
    """Reports each change of its session, already reloaded."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    session = await get_ws_session(ws)
    await ws.send_json({"hello": session["user"]})
    async for keys in session_changes(ws):
        await ws.send_json({"changed": sorted(keys), "theme": session.get("theme")})
    return ws


@require_session("user", check=lambda session: session.get("role") == "admin")
async def admin(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"hello": "admin"})
    async for _ in ws:
        pass
    return ws


def make_app(store: Any) -> web.Application:
    app = web.Application()
    aio_sessions.setup(app, store, ws_allow_missing_origin=True)
    app.add_routes(
        [
            web.post("/login", login),
            web.post("/write", write),
            web.post("/push", push),
            web.get("/feed", feed),
            web.get("/admin", admin),
        ]
    )
    return app


@pytest.fixture(params=["memory", "redis"])
async def pair(aiohttp_client: Any, request: pytest.FixtureRequest) -> AsyncIterator[list[Client]]:
    """Two clients: on one app (one process, MemoryStore) or two apps on one real Redis."""
    if request.param == "memory":
        client = await aiohttp_client(make_app(MemoryStore()))
        yield [client, client]
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"live{new_id()[:6]}_"
    stores = [RedisStore.from_url(url, key_prefix=prefix) for _ in range(2)]
    clients = [await aiohttp_client(make_app(store)) for store in stores]
    await until(lambda: subscribed(stores[0], f"{prefix}revoked"))
    yield clients


async def subscribed(store: RedisStore, channel: str) -> bool:
    [(_, count)] = await store.client.pubsub_numsub(channel)
    return bool(count == 2)


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def raw() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies: each request says which session it is."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def log_in(client: Client, user: str, role: str = "member") -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        params = {"user": user, "role": role}
        async with raw.post(client.make_url("/login"), params=params) as resp:
            return resp.cookies["AIOHTTP_SESSION"].value


async def as_session(
    raw: aiohttp.ClientSession, client: Client, path: str, sid: str, **params: str
) -> aiohttp.ClientResponse:
    """POST ``path`` as the session ``sid``."""
    cookie = {"Cookie": f"AIOHTTP_SESSION={sid}"}
    async with raw.post(client.make_url(path), params=params, headers=cookie) as resp:
        await resp.read()
        return resp


async def connect(client: Client, path: str, sid: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect(path, headers={"Cookie": f"AIOHTTP_SESSION={sid}"})
    assert "hello" in await ws.receive_json(timeout=1)
    return ws


async def watched(client: Client, sid: str) -> None:
    """Wait until the socket's watch lease is stored (at once on single-process stores)."""
    store = get_manager(client.app).store

    async def ready() -> bool:
        record = await store.load(sid)
        return not store.shares_events or (record is not None and record.watched is not None)

    await until(ready)


# -- push ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("text", (WSMsgType.TEXT, "hi")), ("bytes", (WSMsgType.BINARY, b"hi")),
     ("json", (WSMsgType.TEXT, '{"text":"hi"}'))],
)  # fmt: skip
async def test_push_to_a_user_reaches_every_socket_in_every_process(
    pair: list[Client], kind: str, expected: tuple[WSMsgType, Any]
) -> None:
    a, b = pair
    sid = await log_in(a, "alice")
    sockets = [await connect(a, "/feed", sid), await connect(b, "/feed", sid)]
    started = time.monotonic()
    for sender in (a, b):  # both ways
        resp = await sender.post("/push", params={"user": "alice", "kind": kind, "text": "hi"})
        assert (await resp.json())["sent"] == (2 if a is b else 1)  # this process's sockets
        for ws in sockets:
            msg = await ws.receive(timeout=1)
            assert (msg.type, msg.data) == expected
    assert time.monotonic() - started < 1.0
    for ws in sockets:
        await ws.close()


async def test_push_to_a_session_reaches_only_its_sockets(pair: list[Client]) -> None:
    a, b = pair
    alice = await log_in(a, "alice")
    bob = await log_in(b, "bob")
    ws_alice = await connect(b, "/feed", alice)
    ws_bob = await connect(a, "/feed", bob)
    await a.post("/push", params={"session": alice, "kind": "text", "text": "for alice"})
    assert await ws_alice.receive_str(timeout=1) == "for alice"
    await a.post("/push", params={"session": bob, "kind": "text", "text": "for bob"})
    assert await ws_bob.receive_str(timeout=1) == "for bob"  # the first it got
    await ws_alice.close()
    await ws_bob.close()


async def test_a_slow_socket_delays_no_one(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that never reads fills its queue and loses messages; the others get all."""
    client = await aiohttp_client(make_app(MemoryStore()))
    sid = await log_in(client, "alice")
    slow = await connect(client, "/feed", sid)  # never read again
    fast = await connect(client, "/feed", sid)
    sockets = get_manager(client.app).sockets
    payload = "x" * 65536
    received = 0

    async def read_all() -> None:
        nonlocal received
        while received < 300:
            assert await fast.receive_str(timeout=5) == payload
            received += 1

    reader = asyncio.ensure_future(read_all())
    slowest = 0.0
    for _ in range(300):
        started = time.monotonic()
        await sockets.send_to_user("alice", payload)
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.sleep(0.001)
    await asyncio.wait_for(reader, 10)
    assert received == 300
    assert slowest < 0.05  # the sender never waits for a socket
    assert "push queue is full" in caplog.text
    await fast.close()
    slow.close  # noqa: B018 - left unread on purpose; the test client closes it


# -- live changes and guards ---------------------------------------------------------------


async def test_a_save_anywhere_reaches_the_sockets_reloaded(
    pair: list[Client], raw: aiohttp.ClientSession
) -> None:
    a, b = pair
    sid = await log_in(a, "alice")
    ws = await connect(b, "/feed", sid)
    await watched(b, sid)
    started = time.monotonic()
    await as_session(raw, a, "/write", sid, theme="dark")
    assert await ws.receive_json(timeout=1) == {"changed": ["theme"], "theme": "dark"}
    assert await get_manager(a.app).update(sid, {"theme": "light"})
    assert await ws.receive_json(timeout=1) == {"changed": ["theme"], "theme": "light"}
    assert time.monotonic() - started < 1.0
    await ws.close()


async def test_a_save_to_an_unwatched_session_publishes_nothing(
    aiohttp_client: Any, redis_url: str, raw: aiohttp.ClientSession
) -> None:
    store = RedisStore.from_url(redis_url, key_prefix=f"quiet{new_id()[:6]}_")
    client = await aiohttp_client(make_app(store))
    sid = await log_in(client, "alice")
    async with store.client.pubsub() as pubsub:
        await pubsub.subscribe(store.channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        await as_session(raw, client, "/write", sid, theme="dark")
        assert await pubsub.get_message(timeout=0.3) is None
    record = await store.load(sid)
    assert record is not None
    assert record.data["theme"] == "dark"


@pytest.mark.parametrize("pair", ["redis"], indirect=True)  # the stores that keep leases
async def test_an_open_socket_keeps_its_watch_lease(
    pair: list[Client], raw: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease that makes other processes publish outlives its first term while the
    socket stays open, and lapses once it closes (scaled: a 2 s lease, swept every 0.5 s)."""
    import aio_sessions.changes
    import aio_sessions.expiry

    monkeypatch.setattr(aio_sessions.changes, "_WATCH_LEASE", 2.0)
    monkeypatch.setattr(aio_sessions.expiry, "_HORIZON", 1.0)
    a, b = pair
    sid = await log_in(a, "alice")
    ws = await connect(b, "/feed", sid)
    await watched(b, sid)
    store = get_manager(a.app).store
    first = await store.load(sid)
    assert first is not None
    assert first.watched is not None
    await asyncio.sleep(3.0)  # past the first lease
    renewed = await store.load(sid)
    assert renewed is not None
    assert renewed.watched is not None
    assert renewed.watched > first.watched
    assert renewed.watched > time.time()
    await as_session(raw, a, "/write", sid, theme="dark")
    assert await ws.receive_json(timeout=1) == {"changed": ["theme"], "theme": "dark"}
    await ws.close()
    await asyncio.sleep(2.5)  # no socket renews it now
    lapsed = await store.load(sid)
    assert lapsed is not None
    assert lapsed.watched is not None
    assert lapsed.watched < time.time()


@pytest.mark.parametrize("change", [{"role": "member"}, {"user": "-"}])
async def test_a_socket_that_loses_its_rights_is_closed_with_4003(
    pair: list[Client], change: dict[str, str], raw: aiohttp.ClientSession
) -> None:
    a, b = pair
    sid = await log_in(a, "root", role="admin")
    ws = await connect(b, "/admin", sid)
    await watched(b, sid)
    started = time.monotonic()
    await as_session(raw, a, "/write", sid, **change)
    msg = await ws.receive(timeout=1)
    assert msg.type is WSMsgType.CLOSE
    assert msg.data == CLOSE_SESSION_FORBIDDEN
    assert msg.extra == "session forbidden"
    assert time.monotonic() - started < 1.0


async def test_a_failed_check_refuses_the_handshake(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(MemoryStore()))
    sid = await log_in(client, "alice", role="member")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/admin", headers={"Cookie": f"AIOHTTP_SESSION={sid}"})
    assert refused.value.status == 403


async def test_an_async_check_and_a_raising_check(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture, raw: aiohttp.ClientSession
) -> None:
    async def is_admin(session: aio_sessions.Session) -> bool:
        await asyncio.sleep(0)
        return session.get("role") == "admin"

    def broken(session: aio_sessions.Session) -> bool:
        raise KeyError("oops")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = make_app(MemoryStore())
    app.router.add_get("/async", require_session("user", check=is_admin)(ok))
    app.router.add_get("/broken", require_session("user", check=broken)(ok))
    client = await aiohttp_client(app)
    cookie = {"Cookie": f"AIOHTTP_SESSION={await log_in(client, 'root', role='admin')}"}
    assert (await raw.get(client.make_url("/async"), headers=cookie)).status == 200
    with caplog.at_level(logging.ERROR, "aio_sessions"):
        resp = await raw.get(client.make_url("/broken"), headers=cookie)
        assert resp.status == 403  # fails closed
    assert "check raised" in caplog.text


async def test_changes_end_when_the_session_ends(pair: list[Client]) -> None:
    a, b = pair
    sid = await log_in(a, "alice")
    ws = await connect(b, "/feed", sid)
    await get_manager(a.app).logout_user("alice")
    msg = await ws.receive(timeout=1)
    assert msg.type is WSMsgType.CLOSE


async def test_live_changes_and_guards_on_the_cookie_store(
    aiohttp_client: Any, raw: aiohttp.ClientSession
) -> None:
    """Nothing to reload from: the saved values travel with the change, in this process."""
    from cryptography.fernet import Fernet

    client = await aiohttp_client(
        make_app(aio_sessions.EncryptedCookieStore(Fernet.generate_key()))
    )
    token = await log_in(client, "root", role="admin")
    feed_ws = await connect(client, "/feed", token)
    admin_ws = await connect(client, "/admin", token)
    resp = await as_session(raw, client, "/write", token, theme="dark")
    assert await feed_ws.receive_json(timeout=1) == {"changed": ["theme"], "theme": "dark"}
    token = resp.cookies["AIOHTTP_SESSION"].value  # the cookie is the session
    await as_session(raw, client, "/write", token, role="member")
    msg = await admin_ws.receive(timeout=1)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, CLOSE_SESSION_FORBIDDEN)
    await feed_ws.close()
