"""Sockets opened without a session: the 101 names the id their first save stores under."""

from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from aio_sessions import (
    CLOSE_SESSION_REVOKED,
    MemoryStore,
    StoreUnavailable,
    get_manager,
    get_session,
    get_ws_session,
    require_session,
)
from aio_sessions.stores.base import TTL, Changes, SessionRecord

from .conftest import CountingStore, MakeClient, session_cookie
from .kits import Kit

Client = TestClient[web.Request, web.Application]


async def lobby(request: web.Request) -> web.WebSocketResponse:
    """An unguarded socket: ``?as=NICK`` writes before the 101, then it answers commands:
    "save K V", "set K V" (saved when the handler returns), "get K", "invalidate",
    "regenerate" (both saved at once)."""
    if "as" in request.query:
        (await get_session(request))["nick"] = request.query["as"]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    session = await get_ws_session(ws)
    async for msg in ws:
        command, *args = msg.data.split()
        if command in ("save", "set"):
            session[args[0]] = args[1]
            if command == "save":
                await session.save()
        elif command == "get":
            await ws.send_str(str(session.get(args[0])))
            continue
        else:
            getattr(session, command)()
            await session.save()
        await ws.send_str("done")
    return ws


async def write(request: web.Request) -> web.Response:
    (await get_session(request))[request.query["key"]] = request.query["value"]
    return web.Response()


@require_session("user", allow_missing_origin=True)
async def guarded(request: web.Request) -> web.WebSocketResponse:
    return await lobby(request)


async def serve(make_client: MakeClient, kit: Kit | None = None, **options: object) -> Client:
    return await make_client(
        ("GET", "/ws", lobby),
        ("GET", "/guarded", guarded),
        ("POST", "/write", write),
        store=CountingStore() if kit is None else kit.store,
        **options,
    )


def cookie_of(resp: aiohttp.ClientResponse) -> str | None:
    """The session id a response sets, or None when it sets no session cookie."""
    cookies = [c for c in resp.headers.getall("Set-Cookie", []) if c.startswith("AIOHTTP_SESSION=")]
    if not cookies:
        return None
    [header] = cookies
    return SimpleCookie(header)["AIOHTTP_SESSION"].value


async def sockets_closed(client: Client, stored: str | None = None) -> None:
    """Wait until every socket's handler returned and, when named, session ``stored`` was
    saved: a save when the handler returns may outlive the connection."""
    manager = get_manager(client.app)
    for _ in range(200):
        if not len(manager.sockets) and (stored is None or await manager.get(stored)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("a socket handler did not return, or did not save")


async def read(client: Client) -> dict[str, object]:
    result: dict[str, object] = await (await client.get("/read")).json()
    return result


@pytest.mark.parametrize("command", ["save", "set"])
async def test_anonymous_socket_write_reaches_http(
    make_client: MakeClient, kit: Kit, command: str
) -> None:
    """What a socket opened without a session stores is the browser's next request's session,
    saved at once or when the handler returns. The cookie store cannot do it: its cookie
    carries the session as it was at the handshake, here nothing."""
    client = await serve(make_client, kit)
    manager = get_manager(client.app)
    async with client.ws_connect("/ws") as ws:
        announced = cookie_of(ws._response)
        await ws.send_str(f"{command} nick ann")
        assert await ws.receive_str() == "done"
        if command == "save" and not kit.stateless:
            assert await manager.get(str(announced)) == {"nick": "ann"}
    await sockets_closed(client, None if kit.stateless else announced)
    if kit.stateless:
        assert announced is None
        assert await read(client) == {"data": {}, "new": True}
        return
    assert announced is not None
    assert session_cookie(client) == announced
    assert await read(client) == {"data": {"nick": "ann"}, "new": False}
    assert await manager.count() == 1  # under the announced id, and only there


async def test_socket_that_never_writes_stores_nothing(make_client: MakeClient, kit: Kit) -> None:
    """Channels #1402: the 101 names an id, but no record exists until the socket writes; the
    next request with that id is a new session that leaves the cookie alone."""
    client = await serve(make_client, kit)
    async with client.ws_connect("/ws") as ws:
        announced = cookie_of(ws._response)
        await ws.send_str("get nick")
        assert await ws.receive_str() == "None"
    await sockets_closed(client)
    resp = await client.get("/read")
    assert await resp.json() == {"data": {}, "new": True}
    assert cookie_of(resp) is None
    if kit.stateless:
        assert announced is None
        return
    assert announced is not None
    assert session_cookie(client) == announced
    assert await get_manager(client.app).count() == 0


async def test_the_101_carries_what_the_handshake_wrote(make_client: MakeClient, kit: Kit) -> None:
    """A session written before ``ws.prepare`` is stored and sent on the 101, on every store;
    later writes of the socket reach the browser only where the server keeps the session."""
    client = await serve(make_client, kit)
    async with client.ws_connect("/ws", params={"as": "ann"}) as ws:
        assert cookie_of(ws._response) is not None
        await ws.send_str("save colour blue")
        assert await ws.receive_str() == "done"
    await sockets_closed(client)
    expected = {"nick": "ann"} if kit.stateless else {"nick": "ann", "colour": "blue"}
    assert await read(client) == {"data": expected, "new": False}


async def test_http_write_before_the_socket_saves(
    make_client: MakeClient, server_side: Kit
) -> None:
    """A request carrying the announced id before the socket wrote is a new session: read-only,
    it keeps the cookie; writing, it gets an id of its own (an id a client sends is never
    adopted). The socket's first save then creates the announced record; neither overwrites
    the other, and the browser follows the cookie it got last."""
    client = await serve(make_client, server_side)
    manager = get_manager(client.app)
    async with client.ws_connect("/ws") as ws:
        announced = cookie_of(ws._response)
        assert announced is not None
        assert await read(client) == {"data": {}, "new": True}
        assert session_cookie(client) == announced
        resp = await client.post("/write", params={"key": "colour", "value": "blue"})
        own = cookie_of(resp)
        assert own is not None
        assert own != announced
        await ws.send_str("save nick ann")
        assert await ws.receive_str() == "done"
    await sockets_closed(client)
    assert await manager.get(announced) == {"nick": "ann"}
    assert await manager.get(own) == {"colour": "blue"}
    assert await read(client) == {"data": {"colour": "blue"}, "new": False}


@pytest.mark.parametrize("command", ["invalidate", "regenerate"])
async def test_ending_the_session_in_the_socket_closes_it(
    make_client: MakeClient, command: str
) -> None:
    """A socket cannot hand the browser a new id: ending the session the 101 named closes the
    socket, stored or not, as it does for a stored session."""
    client = await serve(make_client)
    async with client.ws_connect("/ws") as ws:
        await ws.send_str(command)
        msg = await asyncio.wait_for(ws.receive(), 2)
        if msg.type is WSMsgType.TEXT:  # the answer may beat the close frame
            msg = await asyncio.wait_for(ws.receive(), 2)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, CLOSE_SESSION_REVOKED)
    await sockets_closed(client)
    assert await get_manager(client.app).count() == 0


async def test_save_uninitialized_stores_the_handshake_session(make_client: MakeClient) -> None:
    """``save_uninitialized=True`` stores every session its response commits, a 101's too."""
    client = await serve(make_client, save_uninitialized=True)
    async with client.ws_connect("/ws") as ws:
        announced = cookie_of(ws._response)
    await sockets_closed(client)
    assert announced is not None
    assert await get_manager(client.app).get(announced) == {}


async def test_guarded_route_refuses_anonymous_handshakes(make_client: MakeClient) -> None:
    client = await serve(make_client)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/guarded")
    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert "Set-Cookie" not in refused.value.headers
    assert await get_manager(client.app).count() == 0


class GatedStore(MemoryStore):
    """A real MemoryStore whose saves wait for ``open``, then fail while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.down = False

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        await self.open.wait()
        if self.down:
            raise StoreUnavailable("store switched off")
        return await super().save(record, changes, ttl)


@pytest.mark.parametrize("down", [False, True])
async def test_last_save_outlives_the_disconnect(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, down: bool
) -> None:
    """The peer leaving cancels the handler (aiohttp's handler_cancellation, on in its test
    server) while its unsaved changes are being stored: the save completes, or its failure
    is logged."""
    store = GatedStore()
    client = await make_client(("GET", "/ws", lobby), store=store)
    manager = get_manager(client.app)
    async with client.ws_connect("/ws") as ws:
        announced = str(cookie_of(ws._response))
        await ws.send_str("set nick ann")
        assert await ws.receive_str() == "done"
    await sockets_closed(client)  # cancelled: the save is still waiting
    store.down = down
    store.open.set()
    for _ in range(200):
        if caplog.records or await manager.get(announced):
            break
        await asyncio.sleep(0.01)
    if down:
        [failure] = caplog.records
        assert failure.levelno == logging.ERROR
        assert "session not saved after the request was cancelled" in failure.getMessage()
        assert await manager.count() == 0
    else:
        assert await manager.get(announced) == {"nick": "ann"}
        assert not caplog.records
