"""``setup(ws_touch=True)``: messages a socket receives keep its session alive, throttled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from pytest_aiohttp import AiohttpClient

import aio_sessions
from aio_sessions import (
    CLOSE_SESSION_EXPIRED,
    EncryptedCookieStore,
    MemoryStore,
    Store,
    StoreUnavailable,
    get_manager,
    get_session,
)
from aio_sessions.stores.base import SessionRecord

from .conftest import read, session_cookie
from .kits import Kit

Client = TestClient[web.Request, web.Application]


async def login(request: web.Request) -> web.Response:
    (await get_session(request))["user"] = "alice"
    return web.Response()


async def echo(request: web.Request) -> web.WebSocketResponse:
    """An unguarded socket that answers each message with the same text."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


def make_app(store: Store, **options: Any) -> web.Application:
    app = web.Application()
    aio_sessions.setup(app, store, **options)
    app.router.add_post("/login", login)
    app.router.add_get("/read", read)
    app.router.add_get("/ws", echo)
    return app


async def chatter(ws: aiohttp.ClientWebSocketResponse, messages: int = 8) -> int | None:
    """Send a message every half second; None, or the close code when the server closed."""
    for _ in range(messages):
        await asyncio.sleep(0.5)
        # Closed by the server meanwhile: its close frame is waiting below.
        with contextlib.suppress(aiohttp.ClientConnectionResetError):
            await ws.send_str("ping")
        msg = await ws.receive(timeout=2)
        if msg.type is WSMsgType.CLOSE:
            code: int = msg.data
            return code
        assert msg.data == "ping"
    return None


async def alive(client: Client) -> bool:
    """Whether the client's session is still alice's."""
    answer = await (await client.get("/read")).json()
    return bool(answer["data"] == {"user": "alice"})


async def test_socket_messages_keep_the_session_alive(
    aiohttp_client: AiohttpClient, server_side: Kit
) -> None:
    """idle_timeout=2 and a message every half second for four seconds: the session lives on
    over HTTP and the socket stays open."""
    client = await aiohttp_client(make_app(server_side.store, idle_timeout=2, ws_touch=True))
    await client.post("/login")
    async with client.ws_connect("/ws") as ws:
        assert await chatter(ws) is None
        assert await alive(client)


async def test_without_ws_touch_the_session_expires(aiohttp_client: AiohttpClient) -> None:
    """The default: the same traffic is no activity, so the socket is closed as expired."""
    client = await aiohttp_client(make_app(MemoryStore(), idle_timeout=2))
    await client.post("/login")
    async with client.ws_connect("/ws") as ws:
        assert await chatter(ws) == CLOSE_SESSION_EXPIRED
    assert not await alive(client)


@pytest.mark.parametrize("ws_touch", [True, False])
async def test_anonymous_socket_in_use_stays_open(
    aiohttp_client: AiohttpClient, ws_touch: bool
) -> None:
    """A socket whose session is not stored yet: its messages keep it open, writing nothing."""
    client = await aiohttp_client(make_app(MemoryStore(), idle_timeout=2, ws_touch=ws_touch))
    async with client.ws_connect("/ws") as ws:
        assert await chatter(ws) == (None if ws_touch else CLOSE_SESSION_EXPIRED)
    assert await get_manager(client.app).count() == 0


class TouchLog(MemoryStore):
    """A real MemoryStore that also counts loads and touches by session id."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[tuple[str, str]] = Counter()

    async def load(self, token: str) -> SessionRecord | None:
        self.calls["load", token] += 1
        return await super().load(token)

    async def touch(self, record: SessionRecord, ttl: Any) -> str | None:
        self.calls["touch", record.id] += 1
        return await super().touch(record, ttl)


async def test_touches_are_throttled_per_session(aiohttp_client: AiohttpClient) -> None:
    """idle_timeout=25 (a read-only request touches every 2.5 s): two sockets of one session,
    16 messages over four seconds, touch it once, as eight requests of another session at
    the same pace do."""
    store = TouchLog()
    app = make_app(store, idle_timeout=25, ws_touch=True)
    by_socket, by_http = await aiohttp_client(app), await aiohttp_client(app)
    for client in (by_socket, by_http):
        await client.post("/login")
    sockets, reader = session_cookie(by_socket), session_cookie(by_http)

    async def requests() -> None:
        for _ in range(8):
            await asyncio.sleep(0.5)
            assert await alive(by_http)

    async with by_socket.ws_connect("/ws") as one, by_socket.ws_connect("/ws") as two:
        codes = await asyncio.gather(chatter(one), chatter(two), requests())
    assert codes == [None, None, None]
    assert store.calls["touch", sockets] == store.calls["touch", reader] == 1
    # Loads: the two handshakes, the first message's check, the check that touched.
    assert store.calls["load", sockets] <= 4


class GatedStore(MemoryStore):
    """A real MemoryStore whose loads wait while ``open`` is clear, or fail while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.open.set()
        self.down = False
        self.waiting = 0

    async def load(self, token: str) -> SessionRecord | None:
        if self.down:
            raise StoreUnavailable("store switched off")
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        return await super().load(token)


async def test_receive_never_waits_on_the_store(aiohttp_client: AiohttpClient) -> None:
    """A stuck store holds up one touch, not the messages: they are answered meanwhile."""
    store = GatedStore()
    client = await aiohttp_client(make_app(store, idle_timeout=20, ws_touch=True))
    await client.post("/login")
    async with client.ws_connect("/ws") as ws:
        store.open.clear()
        try:
            assert await chatter(ws, messages=4) is None
            assert store.waiting == 1  # one touch under way, however many messages
        finally:
            store.open.set()


async def test_store_outage_is_logged_and_retried(
    aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    """While the store is down messages are still answered and each failed touch is logged;
    once it is back, the next message touches again and the session lives on."""
    store = GatedStore()
    client = await aiohttp_client(make_app(store, idle_timeout=2, ws_touch=True))
    await client.post("/login")
    async with client.ws_connect("/ws") as ws:
        store.down = True
        assert await chatter(ws, messages=2) is None
        store.down = False
        assert await chatter(ws, messages=6) is None
        assert await alive(client)
    failures = [r for r in caplog.records if "socket activity not recorded" in r.getMessage()]
    assert failures
    assert all(r.levelno == logging.WARNING for r in failures)


async def test_sockets_are_released(aiohttp_client: AiohttpClient) -> None:
    """A closed socket leaves nothing behind: no shared state, no stand-in for receive."""
    client = await aiohttp_client(make_app(MemoryStore(), idle_timeout=2, ws_touch=True))
    await client.post("/login")
    [middleware] = [m for m in client.app.middlewares if hasattr(m, "_activity")]
    activity = middleware._activity
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("ping")
        assert await ws.receive_str() == "ping"
        assert len(activity._seen) == 1
    for _ in range(200):
        if not activity._seen:
            break
        await asyncio.sleep(0.01)
    assert activity._seen == {}


def test_ws_touch_needs_a_server_side_store() -> None:
    with pytest.raises(ValueError, match=r"ws_touch=True \(bool\): expected False with Encr"):
        aio_sessions.setup(
            web.Application(), EncryptedCookieStore(Fernet.generate_key()), ws_touch=True
        )
