"""The session is committed for every kind of response, and read-only requests write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import aio_sessions
from aio_sessions import get_session

from .conftest import CountingStore, MakeClient, session_cookie


def set_cookies(resp: aiohttp.ClientResponse) -> list[str]:
    return resp.headers.getall("Set-Cookie", [])


async def test_counter_roundtrip_and_cookie_attributes(make_client: MakeClient) -> None:
    client = await make_client()
    resp = await client.get("/count")
    assert await resp.json() == {"n": 1}
    [cookie] = set_cookies(resp)
    assert cookie.startswith("AIOHTTP_SESSION=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP, secure=None is automatic
    assert "Max-Age" not in cookie  # max_age=None: a browser-session cookie
    resp = await client.get("/count")
    assert await resp.json() == {"n": 2}


async def test_session_id_is_long_and_random(make_client: MakeClient) -> None:
    client = await make_client()
    ids = set()
    for _ in range(20):
        client.session.cookie_jar.clear()
        await client.get("/count")
        ids.add(session_cookie(client))
    assert len(ids) == 20
    # token_urlsafe(32): 43 characters of 6 bits = 256 bits, well over 128.
    assert all(len(i) == 43 for i in ids)


async def test_read_only_request_writes_nothing(make_client: MakeClient) -> None:
    store = CountingStore()
    client = await make_client(store=store)
    await client.get("/count")
    store.calls.clear()
    resp = await client.get("/read")
    assert (await resp.json())["data"] == {"n": 1}
    assert store.calls == ["load"]
    assert set_cookies(resp) == []


async def test_untouched_session_stores_nothing(make_client: MakeClient) -> None:
    store = CountingStore()
    client = await make_client(store=store)
    resp = await client.get("/read")
    assert (await resp.json())["new"] is True
    assert set_cookies(resp) == []
    assert store.calls == []
    assert await store.count() == 0


async def test_save_uninitialized_stores_empty_sessions(make_client: MakeClient) -> None:
    store = CountingStore()
    client = await make_client(store=store, save_uninitialized=True)
    resp = await client.get("/read")
    assert len(set_cookies(resp)) == 1
    assert await store.count() == 1


async def test_handler_that_never_asks_costs_nothing(make_client: MakeClient) -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    store = CountingStore()
    client = await make_client(("GET", "/plain", plain), store=store)
    await client.get("/count")
    store.calls.clear()
    resp = await client.get("/plain")
    assert resp.status == 200
    assert store.calls == []
    assert set_cookies(resp) == []


async def test_raised_redirect_keeps_the_session(make_client: MakeClient) -> None:
    async def login(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.regenerate()
        session["user"] = "alice"
        raise web.HTTPFound("/read")

    client = await make_client(("POST", "/login", login))
    resp = await client.post("/login", allow_redirects=False)
    assert resp.status == 302
    assert len(set_cookies(resp)) == 1
    resp = await client.get("/read")
    assert (await resp.json())["data"] == {"user": "alice"}


async def test_stream_response_prepared_in_handler(make_client: MakeClient) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["streamed"] = True
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"chunk")
        await resp.write_eof()
        return resp

    client = await make_client(("GET", "/stream", stream))
    resp = await client.get("/stream")
    assert await resp.read() == b"chunk"
    assert len(set_cookies(resp)) == 1
    assert (await (await client.get("/read")).json())["data"] == {"streamed": True}


async def test_changes_after_prepare_are_saved(make_client: MakeClient) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["before"] = 1
        resp = web.StreamResponse()
        await resp.prepare(request)
        session["after"] = 2
        await resp.write_eof()
        return resp

    client = await make_client(("GET", "/stream", stream))
    await (await client.get("/stream")).read()
    assert (await (await client.get("/read")).json())["data"] == {"before": 1, "after": 2}


async def test_file_response(make_client: MakeClient, tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    target.write_text("hello")

    async def download(request: web.Request) -> web.FileResponse:
        session = await get_session(request)
        session["downloaded"] = True
        return web.FileResponse(target)

    client = await make_client(("GET", "/file", download))
    resp = await client.get("/file")
    assert await resp.text() == "hello"
    assert len(set_cookies(resp)) == 1
    assert (await (await client.get("/read")).json())["data"] == {"downloaded": True}


async def test_websocket_handshake_carries_the_cookie(make_client: MakeClient) -> None:
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        session = await get_session(request)
        session["ws"] = "opened"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hi")
        await ws.close()
        return ws

    client = await make_client(("GET", "/ws", ws_handler))
    async with client.ws_connect("/ws") as ws:
        assert await ws.receive_str() == "hi"
        assert ws._response.status == 101
        assert len(set_cookies(ws._response)) == 1
    assert (await (await client.get("/read")).json())["data"] == {"ws": "opened"}


async def test_unhandled_error_saves_nothing(make_client: MakeClient) -> None:
    async def boom(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["half"] = "done"
        raise RuntimeError("handler bug")

    client = await make_client(("GET", "/boom", boom))
    await client.get("/count")
    resp = await client.get("/boom")
    assert resp.status == 500
    assert (await (await client.get("/read")).json())["data"] == {"n": 1}


async def test_without_setup_the_error_is_clear(aiohttp_client: object) -> None:
    async def handler(request: web.Request) -> web.Response:
        try:
            await get_session(request)
        except RuntimeError as exc:
            return web.Response(text=str(exc))
        return web.Response(text="no error")

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)  # type: ignore[operator]
    text = await (await client.get("/")).text()
    assert "aio_sessions.setup(app)" in text
    with pytest.raises(RuntimeError, match="setup"):
        aio_sessions.get_manager(app)


async def test_session_middleware_aiohttp_session_style(aiohttp_client: object) -> None:
    middleware = aio_sessions.session_middleware(aio_sessions.MemoryStore(), cookie_name="SID")

    async def handler(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["hits"] = session.get("hits", 0) + 1
        return web.Response(text=json.dumps(dict(session)))

    app = web.Application(middlewares=[middleware])
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)  # type: ignore[operator]
    # Alone, without its prepare hook, it says so loudly on the first request...
    with pytest.warns(RuntimeWarning, match="on_response_prepare"):
        await client.get("/")
    # ...once, and keeps working for the responses the handler returns.
    resp = await client.get("/")
    assert json.loads(await resp.text()) == {"hits": 2}


async def test_session_middleware_alone_warns_before_losing_a_stream(
    aiohttp_client: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The aiohttp-session habit never loses a session silently: it says what is missing."""

    async def stream(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["streamed"] = True
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"data")
        return resp

    app = web.Application(middlewares=[aio_sessions.session_middleware()])
    app.router.add_get("/stream", stream)
    client = await aiohttp_client(app)  # type: ignore[operator]
    with pytest.warns(RuntimeWarning, match=r"setup\(app"):
        resp = await client.get("/stream")
    assert await resp.read() == b"data"
    assert "aio_sessions.setup" in caplog.text
    caplog.clear()
    await client.get("/stream")  # once: the second request is quiet
    assert "on_response_prepare" not in caplog.text


async def test_session_middleware_with_its_hook_keeps_a_stream(aiohttp_client: object) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["n"] = session.get("n", 0) + 1
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(json.dumps(dict(session)).encode())
        return resp

    middleware = aio_sessions.session_middleware()
    app = web.Application(middlewares=[middleware])
    app.on_response_prepare.append(middleware.on_response_prepare)
    app.router.add_get("/stream", stream)
    client = await aiohttp_client(app)  # type: ignore[operator]
    await client.get("/stream")
    resp = await client.get("/stream")
    assert json.loads(await resp.read()) == {"n": 2}


async def test_sub_app_handlers_reach_the_manager(aiohttp_client: object) -> None:
    async def whoami(request: web.Request) -> web.Response:
        manager = aio_sessions.get_manager(request)
        session = await get_session(request)
        session["user"] = "alice"
        await session.save()
        return web.json_response({"count": await manager.count()})

    api = web.Application()
    api.router.add_get("/me", whoami)
    app = web.Application()
    manager = aio_sessions.setup(app)
    app.add_subapp("/api", api)
    client = await aiohttp_client(app)  # type: ignore[operator]
    resp = await client.get("/api/me")
    assert resp.status == 200
    assert await resp.json() == {"count": 1}
    assert await manager.logout_user("alice") == 1
    with pytest.raises(RuntimeError, match=r"get_manager\(request\)"):
        aio_sessions.get_manager(api)
