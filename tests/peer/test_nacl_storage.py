"""NaClCookieStore as aiohttp-session's test_nacl_storage.py checks its NaClCookieStorage.

Cookies are made and opened here as aiohttp-session makes and opens them (a SecretBox, a
random nonce, standard base64), so each test also pins the wire format both ways.
"""

from __future__ import annotations

import asyncio
import time

import nacl.utils
import pytest
from aiohttp import web
from nacl.secret import SecretBox

from aio_sessions import NaClCookieStore, get_session, new_session

from ..conftest import MakeClient, replay
from .conftest import (
    COOKIE,
    Client,
    end,
    fixation,
    give_cookie,
    nacl_cookie,
    nacl_opened,
    report,
    write_c,
)


@pytest.fixture
def key() -> bytes:
    return nacl.utils.random(SecretBox.KEY_SIZE)


@pytest.fixture
def box(key: bytes) -> SecretBox:
    return SecretBox(key)


async def reporting(make_client: MakeClient, key: bytes, **options: int) -> Client:
    return await make_client(("GET", "/", report), store=NaClCookieStore(key), **options)


def test_invalid_key() -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        NaClCookieStore(b"123")


async def test_create_new_session(make_client: MakeClient, key: bytes) -> None:
    client = await reporting(make_client, key)
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["new"], body["dirty"], body["data"]) == (True, False, {})
    assert COOKIE not in resp.cookies  # nothing written, nothing sent


async def test_load_existing_session(make_client: MakeClient, key: bytes, box: SecretBox) -> None:
    client = await reporting(make_client, key)
    created = int(time.time()) - 60
    give_cookie(client, nacl_cookie(box, {"a": 1, "b": 12}, created))
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() == {
        "data": {"a": 1, "b": 12},
        "new": False,
        "dirty": False,
        "empty": False,
        "created": created,
    }


async def test_change_session(make_client: MakeClient, key: bytes, box: SecretBox) -> None:
    client = await make_client(("GET", "/", write_c), store=NaClCookieStore(key))
    created = int(time.time()) - 60
    give_cookie(client, nacl_cookie(box, {"a": 1, "b": 2}, created))
    resp = await client.get("/")
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    doc = nacl_opened(box, morsel.value)  # opened as aiohttp-session opens it
    assert doc["session"] == {"a": 1, "b": 2, "c": 3}
    assert doc["created"] == created
    assert morsel["httponly"]
    assert morsel["path"] == "/"


async def test_del_cookie_on_session_invalidation(
    make_client: MakeClient, key: bytes, box: SecretBox
) -> None:
    client = await make_client(("GET", "/", end), store=NaClCookieStore(key))
    give_cookie(client, nacl_cookie(box, {"a": 1, "b": 2}))
    resp = await client.get("/")
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert morsel["path"] == "/"
    # aiohttp-session's deletion drops HttpOnly; here it repeats the cookie's attributes
    # (docs/migration.md#cookie-attributes-by-default).
    assert morsel["httponly"]


async def test_nacl_session_fixation(make_client: MakeClient, key: bytes) -> None:
    evil, logged_out, again = await fixation(make_client, NaClCookieStore(key))
    assert logged_out == ""
    assert again != evil


async def test_load_session_dont_load_expired_session(make_client: MakeClient, key: bytes) -> None:
    async def write_ab(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["a"] = 1
        session["b"] = 2
        return web.Response(text="OK")

    client = await make_client(("GET", "/", write_ab), store=NaClCookieStore(key), max_age=2)
    token = (await client.get("/")).cookies[COOKIE].value
    assert (await replay(client, "/read", token))["data"] == {"a": 1, "b": 2}
    await asyncio.sleep(2.5)  # aiohttp-session waits 5 s; the server decides, not the cookie
    assert await replay(client, "/read", token) == {"data": {}, "new": True}


async def test_load_corrupted_session(make_client: MakeClient, key: bytes) -> None:
    client = await reporting(make_client, key)
    give_cookie(client, "bad key")
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["new"], body["data"]) == (True, {})


async def test_load_session_different_key(make_client: MakeClient, key: bytes) -> None:
    client = await reporting(make_client, key)
    other = SecretBox(nacl.utils.random(SecretBox.KEY_SIZE))
    give_cookie(client, nacl_cookie(other, {"a": 1, "b": 12}))
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["new"], body["data"]) == (True, {})


async def test_load_expired_session(make_client: MakeClient, key: bytes) -> None:
    async def login(request: web.Request) -> web.Response:
        session = await new_session(request)
        session["created"] = int(time.time())
        return web.Response()

    client = await make_client(("POST", "/", login), store=NaClCookieStore(key), max_age=2)
    token = (await client.post("/")).cookies[COOKIE].value
    assert (await replay(client, "/read", token))["data"] != {}
    await asyncio.sleep(3)  # MAX_AGE + 1, as aiohttp-session waits
    assert await replay(client, "/read", token) == {"data": {}, "new": True}
