"""Idle and absolute timeouts are enforced by the server, whatever the client sends."""

from __future__ import annotations

import asyncio

from aio_sessions import MemoryStore

from .conftest import CountingStore, MakeClient, replay, session_cookie


async def test_idle_timeout_expires_on_the_server(make_client: MakeClient) -> None:
    store = MemoryStore()
    client = await make_client(store=store, idle_timeout=1)
    await client.get("/count")
    old = session_cookie(client)
    await asyncio.sleep(0.5)
    assert (await (await client.get("/count")).json()) == {"n": 2}  # activity keeps it alive
    await asyncio.sleep(0.6)  # past the first request's deadline
    assert (await (await client.get("/count")).json()) == {"n": 3}
    await asyncio.sleep(1.3)
    assert (await replay(client, "/read", old)) == {"data": {}, "new": True}
    assert await store.load(old) is None  # and it was removed, not just ignored


async def test_reads_count_as_activity_for_idle_timeout(make_client: MakeClient) -> None:
    store = CountingStore()
    client = await make_client(store=store, idle_timeout=1)
    await client.get("/count")
    for _ in range(4):
        await asyncio.sleep(0.4)
        assert (await (await client.get("/read")).json())["data"] == {"n": 1}
    assert "touch" in store.calls
    assert store.calls.count("save") == 1


async def test_absolute_timeout_ignores_activity(make_client: MakeClient) -> None:
    # ``created`` is whole seconds (aiohttp-session's format), so allow a second of slack.
    client = await make_client(absolute_timeout=3)
    for expected in (1, 2, 3):
        assert (await (await client.get("/count")).json()) == {"n": expected}
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.8)
    assert (await (await client.get("/count")).json()) == {"n": 1}


async def test_rolling_resends_cookie_on_read(make_client: MakeClient) -> None:
    client = await make_client(rolling=True, max_age=600)
    await client.get("/count")
    resp = await client.get("/read")
    [cookie] = resp.headers.getall("Set-Cookie")
    assert "Max-Age=600" in cookie


async def test_renew_resends_cookie_only_when_half_expired(make_client: MakeClient) -> None:
    client = await make_client(renew=True, max_age=2)
    await client.get("/count")
    resp = await client.get("/read")
    assert resp.headers.getall("Set-Cookie", []) == []
    await asyncio.sleep(1.1)
    resp = await client.get("/read")
    assert "Max-Age=2" in resp.headers["Set-Cookie"]
    await asyncio.sleep(1.1)  # past the original expiry: renewed, so still alive
    assert (await (await client.get("/read")).json())["data"] == {"n": 1}
