"""MemcachedStore as aiohttp-session's test_memcached_storage.py checks its MemcachedStorage,
on a real memcached.

Items are written and read here as aiohttp-session writes and reads them
(``AIOHTTP_SESSION_<key>`` holding its JSON), so each test also pins the stored format.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import aiomcache
import pytest
from aiohttp import web

from aio_sessions import MemcachedStore, get_session

from ..conftest import MakeClient, replay
from .conftest import (
    COOKIE,
    EPOCH_EXPIRES,
    RESENDS_ONLY_WITH_MAX_AGE,
    end,
    fixation,
    give_cookie,
    memcached_record,
    memcached_stored,
    report,
    storage_key,
    write_c,
)

THIRTY_DAYS = 30 * 24 * 3600


async def write_ab(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["a"] = 1
    session["b"] = 2
    return web.Response(text="OK")


async def bad_record(memcached: aiomcache.Client) -> str:
    """A session whose item is empty, as aiohttp-session's test makes one."""
    key = await memcached_record(memcached, {})
    await memcached.set(storage_key(key), b"")
    return key


async def test_create_new_session(memcached_store: MemcachedStore, make_client: MakeClient) -> None:
    client = await make_client(("GET", "/", report), store=memcached_store)
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["new"], body["dirty"], body["data"]) == (True, False, {})


async def test_load_existing_session(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    client = await make_client(("GET", "/", report), store=memcached_store)
    created = int(time.time()) - 60
    give_cookie(client, await memcached_record(peer_memcached, {"a": 1, "b": 12}, created))
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() == {
        "data": {"a": 1, "b": 12},
        "new": False,
        "dirty": False,
        "empty": False,
        "created": created,
    }


async def test_load_bad_session(
    memcached_store: MemcachedStore,
    make_client: MakeClient,
    peer_memcached: aiomcache.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await make_client(("GET", "/", report), store=memcached_store)
    give_cookie(client, await bad_record(peer_memcached))
    with caplog.at_level(logging.WARNING, logger="aio_sessions"):
        resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["data"], body["dirty"]) == ({}, False)
    assert "corrupt" in caplog.text


@pytest.mark.xfail(
    strict=True,
    reason="docs/stores.md#what-every-store-guarantees: a corrupt record gives a fresh "
    "session (new), where aiohttp-session keeps its id and reports new=False",
)
async def test_load_bad_session_is_not_new(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    client = await make_client(("GET", "/", report), store=memcached_store)
    give_cookie(client, await bad_record(peer_memcached))
    assert not (await (await client.get("/")).json())["new"]


async def test_change_session(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    client = await make_client(("GET", "/", write_c), store=memcached_store)
    created = int(time.time()) - 60
    key = await memcached_record(peer_memcached, {"a": 1, "b": 2}, created)
    give_cookie(client, key)
    assert (await client.get("/")).status == 200
    doc = await memcached_stored(peer_memcached, key)
    assert doc is not None
    assert doc["session"] == {"a": 1, "b": 2, "c": 3}
    assert doc["created"] == created


@RESENDS_ONLY_WITH_MAX_AGE
async def test_change_session_resends_the_cookie(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    client = await make_client(("GET", "/", write_c), store=memcached_store)
    give_cookie(client, await memcached_record(peer_memcached, {"a": 1, "b": 2}))
    morsel = (await client.get("/")).cookies[COOKIE]
    assert morsel["httponly"]
    assert morsel["path"] == "/"


async def test_clear_cookie_on_session_invalidation(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    client = await make_client(("GET", "/", end), store=memcached_store)
    key = await memcached_record(peer_memcached, {"a": 1, "b": 2})
    give_cookie(client, key)
    resp = await client.get("/")
    assert resp.status == 200
    # aiohttp-session overwrites the item with {}; here it is deleted
    # (docs/migration.md#new_session-and-invalidate-delete-the-stored-session).
    assert await memcached_stored(peer_memcached, key) is None
    morsel = resp.cookies[COOKIE]
    assert morsel["path"] == "/"
    assert morsel["expires"] == EPOCH_EXPIRES
    assert morsel["max-age"] == "0"


async def test_create_cookie_in_handler(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    client = await make_client(("GET", "/", write_ab), store=memcached_store)
    resp = await client.get("/")
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    assert morsel["httponly"]
    assert morsel["path"] == "/"
    doc = await memcached_stored(peer_memcached, morsel.value)
    assert doc is not None
    assert doc["session"] == {"a": 1, "b": 2}
    assert isinstance(doc["created"], int)


async def test_create_new_session_if_key_doesnt_exists_in_memcached(
    memcached_store: MemcachedStore, make_client: MakeClient
) -> None:
    client = await make_client(("GET", "/", report), store=memcached_store)
    give_cookie(client, "invalid_key")
    resp = await client.get("/")
    assert resp.status == 200
    assert (await resp.json())["new"]


async def test_create_storage_with_custom_key_factory(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    async def handler(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["key"] = "value"
        return web.json_response(session.new)

    # aiohttp-session's factory returns "test-key"; ids are 32 to 64 URL-safe characters here
    # (docs/migration.md#options-of-the-storages, the key_factory row), so this one is longer.
    fixed = f"test-key-{uuid.uuid4().hex}"
    client = await make_client(
        ("GET", "/", handler), store=memcached_store, max_age=8, id_factory=lambda: fixed
    )
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() is True
    assert resp.cookies[COOKIE].value == fixed
    doc = await memcached_stored(peer_memcached, fixed)
    assert doc is not None
    assert doc["session"] == {"key": "value"}


async def test_memcached_session_fixation(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    evil, logged_out, again = await fixation(make_client, memcached_store)
    assert logged_out == ""
    assert again != evil
    assert await memcached_stored(peer_memcached, evil) is None


async def test_load_session_dont_load_expired_session(
    memcached_store: MemcachedStore, make_client: MakeClient
) -> None:
    client = await make_client(("GET", "/", write_ab), store=memcached_store, max_age=2)
    key = (await client.get("/")).cookies[COOKIE].value
    assert (await replay(client, "/read", key))["data"] == {"a": 1, "b": 2}
    await asyncio.sleep(2.5)  # aiohttp-session waits 5 s; the record's end is exact here
    assert await replay(client, "/read", key) == {"data": {}, "new": True}


async def test_memcached_max_age_over_30_days(
    memcached_store: MemcachedStore, make_client: MakeClient, peer_memcached: aiomcache.Client
) -> None:
    async def handler(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["stored"] = "TEST_VALUE"
        session.max_age = THIRTY_DAYS + 1  # memcached reads this as a point in time
        return web.json_response(session.new)

    async def get_value(request: web.Request) -> web.Response:
        session = await get_session(request)
        return web.json_response([session.new, session["stored"]])

    client = await make_client(
        ("GET", "/", handler), ("GET", "/get_value", get_value), store=memcached_store
    )
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() is True
    doc = await memcached_stored(peer_memcached, resp.cookies[COOKIE].value)
    assert doc is not None
    assert doc["session"]["stored"] == "TEST_VALUE"
    resp = await client.get("/get_value")
    assert resp.status == 200
    assert await resp.json() == [False, "TEST_VALUE"]
