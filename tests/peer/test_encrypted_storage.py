"""EncryptedCookieStore as aiohttp-session's test_encrypted_cookie_storage.py checks its
EncryptedCookieStorage, and the cookie's wire format with the real package, both ways."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from aio_sessions import EncryptedCookieStore, new_session

from ..conftest import MakeClient, aiohttp_session_client, replay, send_cookie
from .conftest import COOKIE, end, fernet_cookie, fixation, give_cookie, opened, report, write_c

# aiohttp-session 2.12 keeps request state under string keys, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

FERNET_KEY = Fernet.generate_key()
FERNET = Fernet(FERNET_KEY)
RAW_KEY = base64.urlsafe_b64decode(FERNET_KEY)  # the 32 bytes aiohttp-session's docs use


def test_invalid_key() -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        EncryptedCookieStore(b"123")


def test_str_key() -> None:
    assert EncryptedCookieStore(Fernet.generate_key().decode())


async def test_create_new_session_broken_by_format(make_client: MakeClient) -> None:
    client = await make_client(("GET", "/", report), store=EncryptedCookieStore(RAW_KEY))
    give_cookie(client, fernet_cookie(Fernet(Fernet.generate_key()), {"a": 1, "b": 12}))
    resp = await client.get("/")
    assert resp.status == 200
    body = await resp.json()
    assert (body["new"], body["dirty"], body["data"]) == (True, False, {})


@pytest.mark.parametrize(
    "key", [RAW_KEY, FERNET], ids=["raw-key", "test_load_existing_session_with_fernet"]
)
async def test_load_existing_session(make_client: MakeClient, key: Any) -> None:
    client = await make_client(("GET", "/", report), store=EncryptedCookieStore(key))
    created = int(time.time()) - 60
    give_cookie(client, fernet_cookie(FERNET, {"a": 1, "b": 12}, created))
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.json() == {
        "data": {"a": 1, "b": 12},
        "new": False,
        "dirty": False,
        "empty": False,
        "created": created,
    }
    assert COOKIE not in resp.cookies  # read only: nothing to send back


async def test_change_session(make_client: MakeClient) -> None:
    client = await make_client(("GET", "/", write_c), store=EncryptedCookieStore(RAW_KEY))
    created = int(time.time()) - 60
    give_cookie(client, fernet_cookie(FERNET, {"a": 1, "b": 2}, created))
    resp = await client.get("/")
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    doc = opened(FERNET, morsel.value)
    assert doc["session"] == {"a": 1, "b": 2, "c": 3}
    assert doc["created"] == created
    assert morsel["httponly"]
    assert morsel["path"] == "/"


async def test_clear_cookie_on_session_invalidation(make_client: MakeClient) -> None:
    client = await make_client(("GET", "/", end), store=EncryptedCookieStore(RAW_KEY))
    give_cookie(client, fernet_cookie(FERNET, {"a": 1, "b": 2}))
    resp = await client.get("/")
    assert resp.status == 200
    morsel = resp.cookies[COOKIE]
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert morsel["path"] == "/"
    # aiohttp-session's deletion drops HttpOnly; here it repeats the cookie's attributes
    # (docs/migration.md#cookie-attributes-by-default).
    assert morsel["httponly"]


async def test_encrypted_cookie_session_fixation(make_client: MakeClient) -> None:
    evil, logged_out, again = await fixation(make_client, EncryptedCookieStore(RAW_KEY))
    assert logged_out == ""
    assert again != evil


async def test_fernet_ttl(make_client: MakeClient) -> None:
    async def login(request: web.Request) -> web.Response:
        session = await new_session(request)
        session["created"] = int(time.time())
        return web.Response()

    client = await make_client(("POST", "/", login), store=EncryptedCookieStore(RAW_KEY), max_age=1)
    token = (await client.post("/")).cookies[COOKIE].value
    assert (await replay(client, "/read", token))["data"] != {}
    await asyncio.sleep(2.1)
    assert await replay(client, "/read", token) == {"data": {}, "new": True}


# -- the wire format, with the real aiohttp-session package ---------------------------------


async def test_aiohttp_session_reads_our_cookie_and_we_read_its(
    aiohttp_client: Any, make_client: MakeClient
) -> None:
    theirs = await aiohttp_session_client(aiohttp_client, EncryptedCookieStorage(RAW_KEY))
    ours = await make_client(store=EncryptedCookieStore(FERNET_KEY))

    their_cookie = (await theirs.get("/", params={"set": "user", "value": "alice"})).cookies[COOKIE]
    resp = await send_cookie(ours, "/count", their_cookie.value)
    assert await resp.json() == {"user": "alice", "n": 1}

    our_cookie = resp.cookies[COOKIE].value
    doc = opened(FERNET, our_cookie)
    assert doc["session"] == {"user": "alice", "n": 1}
    assert doc["created"] == opened(FERNET, their_cookie.value)["created"]
    back = await theirs.get("/", cookies={COOKIE: our_cookie})
    assert await back.json() == {"user": "alice", "n": 1}
