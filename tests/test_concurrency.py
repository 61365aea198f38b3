"""Concurrent requests on one session keep each other's writes.

Many writers of different keys are tested on every store in test_store_conformance.py.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from aio_sessions import get_manager, get_session

from .conftest import MakeClient, session_cookie


async def test_concurrent_delete_and_write_of_other_keys(make_client: MakeClient) -> None:
    gate, loaded = asyncio.Event(), asyncio.Event()

    async def slow_set(request: web.Request) -> web.Response:
        session = await get_session(request)
        loaded.set()
        await gate.wait()
        session["b"] = 2
        return web.Response()

    async def delete_a(request: web.Request) -> web.Response:
        session = await get_session(request)
        del session["a"]
        return web.Response()

    async def seed(request: web.Request) -> web.Response:
        (await get_session(request))["a"] = 1
        return web.Response()

    client = await make_client(
        ("GET", "/seed", seed), ("GET", "/slow", slow_set), ("GET", "/del", delete_a)
    )
    await client.get("/seed")
    slow = asyncio.ensure_future(client.get("/slow"))
    await loaded.wait()  # the slow request holds the old snapshot
    await client.get("/del")
    gate.set()
    await slow
    assert (await (await client.get("/read")).json())["data"] == {"b": 2}


async def test_late_write_does_not_resurrect_a_logged_out_session(make_client: MakeClient) -> None:
    gate, loaded = asyncio.Event(), asyncio.Event()

    async def slow_write(request: web.Request) -> web.Response:
        session = await get_session(request)
        loaded.set()
        await gate.wait()
        session["cart"] = ["book"]
        return web.Response()

    async def logout(request: web.Request) -> web.Response:
        (await get_session(request)).invalidate()
        return web.Response()

    async def login(request: web.Request) -> web.Response:
        (await get_session(request))["user"] = "alice"
        return web.Response()

    client = await make_client(
        ("GET", "/login", login), ("GET", "/slow", slow_write), ("GET", "/logout", logout)
    )
    await client.get("/login")
    sid = session_cookie(client)
    slow = asyncio.ensure_future(client.get("/slow"))
    await loaded.wait()  # the slow request holds the old snapshot
    await client.get("/logout")
    gate.set()
    resp = await slow
    assert "Set-Cookie" not in resp.headers  # a deletion could only hit a newer login's cookie
    manager = get_manager(client.app)
    assert await manager.get(sid) is None
    assert await manager.count() == 0
