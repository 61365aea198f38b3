"""A "remember me" (session.max_age) set by one request survives every concurrent request:
merges and touches keep the stored value, and TTLs and cookies are computed from it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from aio_sessions import RedisStore, get_session

from .conftest import MakeClient, session_cookie
from .kits import Kit

MONTH = 30 * 86400


@pytest.mark.parametrize("slow", ["write", "touch", "read"])
async def test_concurrent_request_keeps_remember_me(
    make_client: MakeClient, server_side: Kit, slow: str
) -> None:
    loaded, gate = asyncio.Event(), asyncio.Event()

    async def remember(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.max_age = MONTH
        return web.Response()

    async def slow_request(request: web.Request) -> web.Response:
        session = await get_session(request)
        loaded.set()
        await gate.wait()
        if slow == "write":
            session["other"] = 1
        elif slow == "touch":
            session.touch()
        return web.Response()

    store = server_side.store
    client = await make_client(
        ("POST", "/remember", remember), ("GET", "/slow", slow_request), store=store, max_age=3600
    )
    await client.get("/count")
    sid = session_cookie(client)
    pending = asyncio.ensure_future(client.get("/slow"))
    await loaded.wait()  # A holds the session as it was before "remember me"
    await client.post("/remember")
    gate.set()
    resp = await pending

    record = await store.load(sid)
    assert record is not None
    assert record.max_age == MONTH
    for cookie in resp.headers.getall("Set-Cookie", []):  # what A re-sends is the month
        assert f"Max-Age={MONTH}" in cookie
    if slow != "read":
        assert "Set-Cookie" in resp.headers
    if isinstance(store, RedisStore):
        ttl = await store.client.pttl(f"{store.key_prefix}{sid}")
        assert ttl > 3600 * 1000
    # Later requests keep it too, and the browser keeps getting the month.
    resp = await client.get("/count")
    assert f"Max-Age={MONTH}" in resp.headers["Set-Cookie"]
    record = await store.load(sid)
    assert record is not None
    assert record.max_age == MONTH
    assert record.data == {"n": 2, **({"other": 1} if slow == "write" else {})}


async def test_only_the_request_that_sets_max_age_writes_it(
    make_client: MakeClient, server_side: Kit
) -> None:
    """Two requests set different lifetimes: the one that saves last wins, as for a key."""
    arrivals = [asyncio.Event(), asyncio.Event()]
    release = asyncio.Event()

    async def set_age(request: web.Request) -> web.Response:
        session = await get_session(request)
        i = int(request.query["i"])
        arrivals[i].set()
        await release.wait()
        if i == 1:
            await asyncio.sleep(0.05)
        session.max_age = (i + 1) * 1000
        return web.Response()

    client = await make_client(("GET", "/age", set_age), store=server_side.store)
    await client.get("/count")
    sid = session_cookie(client)
    pending = [asyncio.ensure_future(client.get("/age", params={"i": i})) for i in range(2)]
    for event in arrivals:
        await event.wait()
    release.set()
    await asyncio.gather(*pending)
    record = await server_side.store.load(sid)
    assert record is not None
    assert record.max_age == 2000
