"""setup(token_header=...): the session token for clients that keep no cookies, over HTTP and
WebSocket handshakes, on every store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import aio_sessions
from aio_sessions import MemoryStore, get_manager, get_session, require_session
from aio_sessions.cookies import cookie_value

from .conftest import Counted, MakeClient
from .kits import Kit

Client = TestClient[web.Request, web.Application]
HEADER = "X-Session-Token"


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.regenerate()
    session["user"] = request.query.get("as", "ann")
    return web.Response(text="in")


async def logout(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return web.Response(text="out")


@require_session("user", allow_missing_origin=True)
async def user_socket(request: web.Request) -> web.WebSocketResponse:
    """A socket for a client that sends its token in the handshake's headers."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    session = await aio_sessions.get_ws_session(ws)
    await ws.send_json({"user": session["user"]})
    await ws.close()
    return ws


async def anonymous_socket(request: web.Request) -> web.WebSocketResponse:
    """A socket that starts a session before its 101."""
    session = await get_session(request)
    session["nick"] = "guest"
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close()
    return ws


@dataclass
class Answer:
    status: int
    body: Any
    token: str | None  # the token header's value, None when absent
    cookies: list[str]


@dataclass
class NativeClient:
    """A client that keeps no cookies: it sends whatever headers the test gives it."""

    client: Client
    raw: aiohttp.ClientSession

    async def call(self, path: str, method: str = "GET", **headers: str) -> Answer:
        url = self.client.make_url(path)
        async with self.raw.request(method, url, headers=headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return Answer(
                resp.status, body, resp.headers.get(HEADER), resp.headers.getall("Set-Cookie", [])
            )

    async def with_token(self, path: str, token: str, method: str = "GET") -> Answer:
        return await self.call(path, method, **{HEADER: token})


@pytest.fixture
async def native(make_client: MakeClient, kit: Kit) -> AsyncIterator[NativeClient]:
    client = await make_client(
        ("POST", "/login", login),
        ("POST", "/logout", logout),
        ("GET", "/ws", user_socket),
        ("GET", "/anonymous", anonymous_socket),
        store=kit.store,
        token_header=HEADER,
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        yield NativeClient(client, raw)


async def test_token_header_round_trip(native: NativeClient) -> None:
    first = await native.call("/count")
    assert (first.status, first.body) == (200, {"n": 1})
    assert first.token
    [cookie] = first.cookies  # the cookie is still set, with the same token
    # Quoted on the wire when not a plain cookie value (NaCl's standard base64).
    assert cookie.startswith(f"AIOHTTP_SESSION={cookie_value(first.token)};")
    second = await native.with_token("/count", first.token)
    assert second.body == {"n": 2}
    read = await native.with_token("/read", second.token or first.token)
    assert read.body == {"data": {"n": 2}, "new": False}
    assert read.token is None  # no Set-Cookie, no header
    assert read.cookies == []


async def test_logout_answers_an_empty_token(native: NativeClient, kit: Kit) -> None:
    token = (await native.call("/login", "POST")).token
    assert token
    out = await native.with_token("/logout", token, "POST")
    assert out.token == ""
    [cookie] = out.cookies
    assert "Max-Age=0" in cookie
    if not kit.stateless:  # a cookie store's token stays valid until it expires
        assert (await native.with_token("/read", token)).body == {"data": {}, "new": True}


async def test_the_header_wins_over_the_cookie(native: NativeClient) -> None:
    ann = (await native.call("/login?as=ann", "POST")).token
    bob = (await native.call("/login?as=bob", "POST")).token
    assert ann
    assert bob
    both = await native.call("/read", Cookie=f"AIOHTTP_SESSION={ann}", **{HEADER: bob})
    assert both.body == {"data": {"user": "bob"}, "new": False}
    empty = await native.call("/read", Cookie=f"AIOHTTP_SESSION={ann}", **{HEADER: ""})
    assert empty.body == {"data": {}, "new": True}  # present but empty: no session
    cookie_only = await native.call("/read", Cookie=f"AIOHTTP_SESSION={ann}")
    assert cookie_only.body == {"data": {"user": "ann"}, "new": False}


async def test_websocket_handshake_with_the_header(native: NativeClient) -> None:
    token = (await native.call("/login?as=ann", "POST")).token
    assert token
    url = native.client.make_url("/ws")
    async with native.raw.ws_connect(url, headers={HEADER: token}) as ws:
        assert await ws.receive_json() == {"user": "ann"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await native.raw.ws_connect(url, headers={HEADER: "x" * 43})
    assert refused.value.status == 401


async def test_the_101_carries_the_token(native: NativeClient) -> None:
    """A session a socket's handler started before the handshake's 101 reaches the client in
    the header, which then works over HTTP."""
    async with native.raw.ws_connect(native.client.make_url("/anonymous")) as ws:
        assert ws._response.status == 101
        token = ws._response.headers.get(HEADER)
        await ws.receive()
    assert token
    assert (await native.with_token("/read", token)).body == {
        "data": {"nick": "guest"},
        "new": False,
    }


async def test_signed_header_token_is_verified_without_lookup(
    make_client: MakeClient, server_side: Kit
) -> None:
    store = Counted(server_side.store)
    secret = "a secret of thirty-two bytes or more"
    client = await make_client(store=store, token_header=HEADER, secret=secret)
    manager = get_manager(client.app)
    session_id = await manager.create({"n": 41})
    token = manager.token(session_id)
    assert token.startswith(f"{session_id}.")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        native = NativeClient(client, raw)
        answer = await native.with_token("/count", token)
        assert answer.body == {"n": 42}
        loads = store.loads
        last = "B" if token.endswith("A") else "A"  # a changed MAC, whatever it ended with
        for forged in (session_id, token[:-1] + last, token + "x", "y" * 4000):
            assert (await native.with_token("/count", forged)).body == {"n": 1}
        assert store.loads == loads
    assert await manager.get(session_id) == {"n": 42}


async def test_oversized_header_is_ignored_unread(make_client: MakeClient) -> None:
    store = Counted(MemoryStore())
    client = await make_client(store=store, token_header=HEADER)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        answer = await NativeClient(client, raw).with_token("/read", "a" * 5000)
    assert answer.body == {"data": {}, "new": True}
    assert store.loads == 0


async def test_without_the_option_the_header_means_nothing(make_client: MakeClient) -> None:
    client = await make_client()
    manager = get_manager(client.app)
    session_id = await manager.create({"n": 1})
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        answer = await NativeClient(client, raw).with_token("/count", session_id)
    assert answer.body == {"n": 1}
    assert answer.token is None


@pytest.mark.parametrize(
    ("name", "error", "part"),
    [
        ("X Session Token", ValueError, "a header name"),
        ("X-Session-Token:", ValueError, "a header name"),
        ("", ValueError, "a header name"),
        ("Cookie", ValueError, "Cookie/Set-Cookie"),
        ("set-cookie", ValueError, "Cookie/Set-Cookie"),
        ("Authorization", ValueError, "HTTP, proxies or browsers act on"),
        ("Connection", ValueError, "HTTP, proxies or browsers act on"),
        ("Upgrade", ValueError, "HTTP, proxies or browsers act on"),
        ("Host", ValueError, "HTTP, proxies or browsers act on"),
        ("Origin", ValueError, "HTTP, proxies or browsers act on"),
        ("Sec-Session", ValueError, "HTTP, proxies or browsers act on"),
        ("Proxy-Token", ValueError, "HTTP, proxies or browsers act on"),
        ("X-Forwarded-Session", ValueError, "HTTP, proxies or browsers act on"),
        ("Content-Session", ValueError, "HTTP, proxies or browsers act on"),
        (b"X-Session-Token", TypeError, "a string or None"),
    ],
)
def test_header_name_is_checked_at_setup(name: object, error: type[Exception], part: str) -> None:
    for make in (
        lambda: aio_sessions.setup(web.Application(), token_header=name),
        lambda: aio_sessions.session_middleware(token_header=name),
    ):
        with pytest.raises(error) as info:
            make()
        assert part in str(info.value)
        assert "token_header='X-Session-Token'" in str(info.value)


@pytest.mark.parametrize("name", ["X-Session-Token", "X-Auth-Token", "Session-Token", "x_token"])
def test_good_header_names_pass(name: str) -> None:
    assert aio_sessions.setup(web.Application(), token_header=name).config.token_header == name
