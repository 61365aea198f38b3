"""One suite that every store passes, through the protocol and through a real server."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from aiohttp import web

from aio_sessions import (
    get_manager,
    get_session,
)
from aio_sessions._ids import new_id
from aio_sessions.stores import Changes, SessionRecord

from .conftest import Arrivals, MakeClient, replay, session_cookie
from .kits import Kit


def record(**data: Any) -> SessionRecord:
    now = time.time()
    return SessionRecord(new_id(), dict(data), int(now), now)


# -- the protocol -------------------------------------------------------------------------


async def test_save_load_roundtrip(kit: Kit) -> None:
    rec = record(user="alice", n=1, nested={"list": [], "big": 2**62, "f": 0.1})
    token = await kit.store.save(rec, None, 60)
    assert token is not None
    loaded = await kit.store.load(token)
    assert loaded is not None
    assert loaded.id == rec.id
    assert loaded.data == rec.data
    assert loaded.created == rec.created
    assert loaded.accessed == pytest.approx(rec.accessed)


async def test_unknown_and_malformed_tokens(kit: Kit) -> None:
    for token in (new_id(), "", "x", "a" * 5000, "../../x", "gAAAAA" + "B" * 80):
        assert await kit.store.load(token) is None


async def test_ttl_expiry(server_side: Kit) -> None:
    store = server_side.store
    rec = record(a=1)
    await store.save(rec, None, 0.3)
    await asyncio.sleep(0.5)
    assert await store.load(rec.id) is None


async def test_touch_extends_lifetime(server_side: Kit) -> None:
    store = server_side.store
    rec = record(a=1)
    await store.save(rec, None, 1)
    loaded = await store.load(rec.id)
    assert loaded is not None
    loaded.accessed = time.time()
    assert await store.touch(loaded, 5) == rec.id
    await asyncio.sleep(1.2)
    again = await store.load(rec.id)
    assert again is not None
    assert again.accessed == pytest.approx(loaded.accessed)
    assert again.data == {"a": 1}


async def test_delete(server_side: Kit) -> None:
    store = server_side.store
    rec = record(a=1)
    await store.save(rec, None, 60)
    assert await store.delete(rec.id)
    assert not await store.delete(rec.id)
    assert await store.load(rec.id) is None


async def test_merge_keeps_other_writers_keys(server_side: Kit) -> None:
    store = server_side.store
    rec = record(a=1, b=2, c=3)
    await store.save(rec, None, 60)
    first = await store.load(rec.id)
    second = await store.load(rec.id)
    assert first is not None
    assert second is not None
    first.data["a"] = 10
    assert await store.save(first, Changes({"a": 10}), 60) == rec.id
    del second.data["b"]
    second.data["d"] = 4
    assert await store.save(second, Changes({"d": 4}, frozenset({"b"})), 60) == rec.id
    final = await store.load(rec.id)
    assert final is not None
    assert final.data == {"a": 10, "c": 3, "d": 4}


async def test_merge_into_missing_record_is_refused(server_side: Kit) -> None:
    store = server_side.store
    rec = record(a=1)
    await store.save(rec, None, 60)
    loaded = await store.load(rec.id)
    assert loaded is not None
    await store.delete(rec.id)
    assert await store.save(loaded, Changes({"a": 2}), 60) is None
    assert await store.touch(loaded, 60) is None
    assert await store.load(rec.id) is None


async def test_user_index(server_side: Kit) -> None:
    store = server_side.store
    alice = [record(user="alice") for _ in range(3)]
    bob = record(user="bob")
    for rec in [*alice, bob]:
        await store.save(rec, None, 60)
        await store.link_user(rec.data["user"], rec.id, 60)
    await store.delete(alice[0].id)
    assert sorted(await store.user_sessions("alice")) == sorted(r.id for r in alice[1:])
    assert await store.user_sessions("bob") == [bob.id]
    assert await store.user_sessions("nobody") == []


async def test_count_and_clear(server_side: Kit) -> None:
    store = server_side.store
    for _ in range(5):
        await store.save(record(), None, 60)
    assert await store.count() == 5
    await store.clear()
    assert await store.count() == 0


# -- through a real server ----------------------------------------------------------------


async def test_http_counter(make_client: MakeClient, kit: Kit) -> None:
    client = await make_client(store=kit.store)
    for n in (1, 2, 3):
        assert await (await client.get("/count")).json() == {"n": n}


async def test_http_unknown_and_expired_ids(make_client: MakeClient, kit: Kit) -> None:
    client = await make_client(store=kit.store, idle_timeout=0.5)
    assert await replay(client, "/read", new_id()) == {"data": {}, "new": True}
    await client.get("/count")
    old = session_cookie(client)
    await asyncio.sleep(0.8)
    assert await replay(client, "/read", old) == {"data": {}, "new": True}


async def test_http_regenerate_and_invalidate(make_client: MakeClient, server_side: Kit) -> None:
    async def login(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.regenerate()
        session["user"] = "alice"
        return web.Response()

    async def logout(request: web.Request) -> web.Response:
        (await get_session(request)).invalidate()
        return web.Response()

    client = await make_client(
        ("POST", "/login", login), ("POST", "/logout", logout), store=server_side.store
    )
    await client.get("/count")
    anonymous = session_cookie(client)
    await client.post("/login")
    logged_in = session_cookie(client)
    assert logged_in != anonymous
    assert (await replay(client, "/read", anonymous))["data"] == {}
    assert (await replay(client, "/read", logged_in))["data"] == {"n": 1, "user": "alice"}
    assert await get_manager(client.app).store.user_sessions("alice") == [logged_in]
    await client.post("/logout")
    assert (await replay(client, "/read", logged_in))["data"] == {}
    assert await server_side.store.load(logged_in) is None


async def test_http_concurrent_writers(make_client: MakeClient, server_side: Kit) -> None:
    writers = 8
    arrivals = Arrivals(writers)

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        await arrivals.wait()  # every request holds the same old snapshot
        session[request.query["k"]] = int(request.query["v"])
        return web.Response()

    client = await make_client(("GET", "/w", write), store=server_side.store)
    await client.get("/count")
    await asyncio.gather(*(client.get("/w", params={"k": f"k{i}", "v": i}) for i in range(writers)))
    data = (await (await client.get("/read")).json())["data"]
    assert data == {"n": 1, **{f"k{i}": i for i in range(writers)}}


async def test_http_corrupt_record(
    make_client: MakeClient, on_disk: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(store=on_disk.store)
    await client.get("/count")
    assert on_disk.corrupt is not None
    await on_disk.corrupt(session_cookie(client))
    with caplog.at_level(logging.WARNING, logger="aio_sessions"):
        resp = await client.get("/count")
    assert resp.status == 200
    assert await resp.json() == {"n": 1}
    assert "corrupt" in caplog.text
