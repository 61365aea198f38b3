"""RedisStore as aiohttp-session's test_redis_storage.py checks its RedisStorage, on a real
Redis, and the stored records with the real package, both ways."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp_session.redis_storage import RedisStorage
from redis.asyncio import Redis

from aio_sessions import RedisStore, get_session

from ..conftest import MakeClient, aiohttp_session_client, import_without, replay, send_cookie
from .conftest import (
    COOKIE,
    EPOCH_EXPIRES,
    RESENDS_ONLY_WITH_MAX_AGE,
    end,
    fixation,
    give_cookie,
    redis_record,
    report,
    stored,
    write_c,
)

# aiohttp-session 2.12 keeps request state under string keys, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def write_ab(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["a"] = 1
    session["b"] = 2
    return web.Response(text="OK")


async def test_create_new_session(make_client: MakeClient, redis_store: RedisStore) -> None:
    client = await make_client(("GET", "/", report), store=redis_store)
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["new"], body["dirty"], body["data"], body["empty"]) == (True, False, {}, True)


async def test_load_existing_session(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", report), store=redis_store)
    created = int(time.time()) - 60
    give_cookie(client, await redis_record(peer_redis, {"a": 1, "b": 12}, created))
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() == {
        "data": {"a": 1, "b": 12},
        "new": False,
        "dirty": False,
        "empty": False,
        "created": created,
    }


async def bad_record(peer_redis: Redis) -> str:
    """A session whose stored value is empty, as aiohttp-session's test makes one."""
    key = await redis_record(peer_redis, {})
    await peer_redis.set(f"{COOKIE}_{key}", "")
    return key


async def test_load_bad_session(
    make_client: MakeClient,
    redis_store: RedisStore,
    peer_redis: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await make_client(("GET", "/", report), store=redis_store)
    give_cookie(client, await bad_record(peer_redis))
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
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", report), store=redis_store)
    give_cookie(client, await bad_record(peer_redis))
    assert not (await (await client.get("/")).json())["new"]


async def test_change_session(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", write_c), store=redis_store)
    created = int(time.time()) - 60
    key = await redis_record(peer_redis, {"a": 1, "b": 2}, created)
    give_cookie(client, key)
    assert (await client.get("/")).status == 200
    doc = await stored(peer_redis, key)
    assert doc is not None
    assert doc["session"] == {"a": 1, "b": 2, "c": 3}
    assert doc["created"] == created


@RESENDS_ONLY_WITH_MAX_AGE
async def test_change_session_resends_the_cookie(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", write_c), store=redis_store)
    give_cookie(client, await redis_record(peer_redis, {"a": 1, "b": 2}))
    morsel = (await client.get("/")).cookies[COOKIE]
    assert morsel["httponly"]
    assert morsel["path"] == "/"


async def test_clear_cookie_on_session_invalidation(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", end), store=redis_store)
    key = await redis_record(peer_redis, {"a": 1, "b": 2})
    give_cookie(client, key)
    resp = await client.get("/")
    assert resp.status == 200
    # aiohttp-session overwrites the record with {}; here it is deleted
    # (docs/migration.md#new_session-and-invalidate-delete-the-stored-session).
    assert await stored(peer_redis, key) is None
    morsel = resp.cookies[COOKIE]
    assert morsel["path"] == "/"
    assert morsel["expires"] == EPOCH_EXPIRES
    assert morsel["max-age"] == "0"


async def test_create_cookie_in_handler(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", write_ab), store=redis_store)
    resp = await client.get("/")
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    assert morsel["httponly"]
    assert morsel["path"] == "/"
    doc = await stored(peer_redis, morsel.value)
    assert doc is not None
    assert doc["session"] == {"a": 1, "b": 2}
    assert isinstance(doc["created"], int)


async def test_set_ttl_on_session_saving(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(store=redis_store, max_age=10)
    key = (await client.get("/count")).cookies[COOKIE].value
    assert 9 < await peer_redis.ttl(f"{COOKIE}_{key}") <= 10


async def test_set_ttl_manually_set(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    async def handler(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.max_age = 10
        session["a"] = 1
        return web.Response(text="OK")

    client = await make_client(("GET", "/", handler), store=redis_store)
    key = (await client.get("/")).cookies[COOKIE].value
    assert 9 < await peer_redis.ttl(f"{COOKIE}_{key}") <= 10


async def test_create_new_session_if_key_doesnt_exists_in_redis(
    make_client: MakeClient, redis_store: RedisStore
) -> None:
    client = await make_client(("GET", "/", report), store=redis_store)
    give_cookie(client, "invalid_key")
    resp = await client.get("/")
    assert resp.status == 200
    assert (await resp.json())["new"]


async def test_create_storage_with_custom_key_factory(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    async def handler(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["key"] = "value"
        return web.json_response(session.new)

    # aiohttp-session's factory returns "test-key"; ids are 32 to 64 URL-safe characters here
    # (docs/migration.md#options-of-the-storages, the key_factory row), so this one is longer.
    fixed = f"test-key-{uuid.uuid4().hex}"
    client = await make_client(
        ("GET", "/", handler), store=redis_store, max_age=8, id_factory=lambda: fixed
    )
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() is True
    assert resp.cookies[COOKIE].value == fixed
    doc = await stored(peer_redis, fixed)
    assert doc is not None
    assert doc["session"] == {"key": "value"}


async def test_redis_session_fixation(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    evil, logged_out, again = await fixation(make_client, redis_store)
    assert logged_out == ""
    assert again != evil
    assert await stored(peer_redis, evil) is None


async def test_redis_from_create_pool(make_client: MakeClient, redis_url: str) -> None:
    # A client made by redis' from_url and given to the store, and one the store makes itself.
    given = Redis.from_url(redis_url)
    for store in (RedisStore(given), RedisStore.from_url(redis_url)):
        client = await make_client(store=store)
        assert await (await client.get("/count")).json() == {"n": 1}
        await client.close()  # the app's cleanup; a client the store was given stays open
    assert await given.ping()
    await given.aclose()


def test_not_redis_provided_to_storage() -> None:
    with pytest.raises(TypeError, match="redis"):
        RedisStore(None)  # type: ignore[arg-type]


def test_no_aioredis_installed() -> None:
    # aiohttp-session mocks the import away and expects a RuntimeError from the storage; here
    # a fresh interpreter without redis gets an ImportError naming the extra
    # (docs/stores.md#redisstore), and the other stores still work there.
    assert "pip install 'aio-sessions[redis]'" in import_without("redis", "RedisStore")


async def test_load_session_dont_load_expired_session(
    make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    client = await make_client(("GET", "/", write_ab), store=redis_store, max_age=2)
    key = (await client.get("/")).cookies[COOKIE].value
    await asyncio.sleep(2.5)
    assert await replay(client, "/read", key) == {"data": {}, "new": True}
    assert await stored(peer_redis, key) is None


# -- the stored record, with the real aiohttp-session package -------------------------------


async def test_aiohttp_session_reads_our_record_and_we_read_its(
    aiohttp_client: Any, make_client: MakeClient, redis_store: RedisStore, peer_redis: Redis
) -> None:
    theirs = await aiohttp_session_client(aiohttp_client, RedisStorage(peer_redis))
    ours = await make_client(store=redis_store)

    their_key = (await theirs.get("/", params={"set": "user", "value": "alice"})).cookies[COOKIE]
    resp = await send_cookie(ours, "/count", their_key.value)
    assert await resp.json() == {"user": "alice", "n": 1}
    doc = await stored(peer_redis, their_key.value)
    assert doc is not None
    assert doc["session"] == {"user": "alice", "n": 1}

    our_key = (await ours.get("/count")).cookies[COOKIE].value
    back = await theirs.get("/", cookies={COOKIE: our_key}, params={"set": "m", "value": "2"})
    assert await back.json() == {"n": 1, "m": "2"}
    assert await replay(ours, "/read", our_key) == {"data": {"n": 1, "m": "2"}, "new": False}
