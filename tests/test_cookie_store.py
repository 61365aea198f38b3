"""EncryptedCookieStore: byte-compatible with aiohttp-session, key rotation, size limit."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

import pytest
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from aio_sessions import CookieTooLarge, EncryptedCookieStore, get_manager, get_session

from .conftest import MakeClient, aiohttp_session_client, replay, send_cookie, session_cookie

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

RAW_KEY = os.urandom(32)
FERNET_KEY = Fernet.generate_key().decode()


async def theirs_client(aiohttp_client: Any, key: Any, **options: Any) -> Any:
    return await aiohttp_session_client(aiohttp_client, EncryptedCookieStorage(key, **options))


@pytest.mark.parametrize("key", [RAW_KEY, FERNET_KEY], ids=["32-raw-bytes", "fernet-key"])
async def test_cookies_interchangeable_both_ways(
    aiohttp_client: Any, make_client: MakeClient, key: Any
) -> None:
    theirs = await theirs_client(aiohttp_client, key)
    ours = await make_client(store=EncryptedCookieStore(key))

    await theirs.get("/", params={"set": "user", "value": "alice"})
    their_cookie = session_cookie(theirs)
    assert (await replay(ours, "/read", their_cookie))["data"] == {"user": "alice"}

    resp = await send_cookie(ours, "/count", their_cookie)
    our_cookie = resp.cookies["AIOHTTP_SESSION"].value
    assert await resp.json() == {"user": "alice", "n": 1}
    resp = await theirs.get("/", cookies={"AIOHTTP_SESSION": our_cookie})
    assert await resp.json() == {"user": "alice", "n": 1}


async def test_key_rotation(make_client: MakeClient) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    before = await make_client(store=EncryptedCookieStore(old))
    await before.get("/count")
    old_cookie = session_cookie(before)

    rotated = await make_client(store=EncryptedCookieStore([new, old]))
    resp = await send_cookie(rotated, "/count", old_cookie)
    assert await resp.json() == {"n": 2}  # still logged in
    new_cookie = resp.cookies["AIOHTTP_SESSION"].value
    assert Fernet(new).decrypt(new_cookie.encode())  # re-encrypted with the first key

    only_old = await make_client(store=EncryptedCookieStore(old))
    assert (await replay(only_old, "/read", new_cookie))["data"] == {}


async def test_tampered_and_foreign_cookies(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(store=EncryptedCookieStore(FERNET_KEY))
    await client.get("/count")
    token = session_cookie(client)
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"created": 1, "session": {"admin": true}}')
    with caplog.at_level(logging.WARNING, logger="aio_sessions"):
        for bad in (flipped, token[:-10], foreign.decode(), "x" * 3000):
            assert await replay(client, "/read", bad) == {"data": {}, "new": True}
    assert "cannot decrypt" in caplog.text


async def test_max_age_is_the_tokens_ttl(aiohttp_client: Any, make_client: MakeClient) -> None:
    ours = await make_client(store=EncryptedCookieStore(FERNET_KEY), max_age=1)
    await ours.get("/count")
    token = session_cookie(ours)
    assert (await replay(ours, "/read", token))["data"] == {"n": 1}
    await asyncio.sleep(2.1)
    assert (await replay(ours, "/read", token))["data"] == {}
    # An aiohttp-session token (no activity time of ours inside) is judged by its timestamp.
    theirs = await theirs_client(aiohttp_client, FERNET_KEY, max_age=1)
    await theirs.get("/", params={"set": "a", "value": "b"})
    their_token = session_cookie(theirs)
    assert (await replay(ours, "/read", their_token))["data"] == {"a": "b"}
    await asyncio.sleep(2.1)
    assert (await replay(ours, "/read", their_token))["data"] == {}


async def test_oversized_session_fails_at_save(make_client: MakeClient) -> None:
    async def explicit(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["blob"] = "x" * 4000
        try:
            await session.save()
        except CookieTooLarge as exc:
            del session["blob"]
            return web.Response(text=str(exc))
        return web.Response(text="saved?")

    async def implicit(request: web.Request) -> web.Response:
        (await get_session(request))["blob"] = "y" * 5000
        return web.Response()

    client = await make_client(
        ("GET", "/explicit", explicit),
        ("GET", "/implicit", implicit),
        store=EncryptedCookieStore(FERNET_KEY),
    )
    text = await (await client.get("/explicit")).text()
    assert "4096" in text
    resp = await client.get("/implicit")
    assert resp.status == 500
    assert "AIOHTTP_SESSION" not in resp.headers.get("Set-Cookie", "")


def test_bad_keys() -> None:
    for bad in (b"short", "not-base64!", [], base64.urlsafe_b64encode(b"x" * 16)):
        with pytest.raises(ValueError, match="key"):
            EncryptedCookieStore(bad)


async def test_server_side_operations_are_refused(make_client: MakeClient) -> None:
    store = EncryptedCookieStore(FERNET_KEY)
    with pytest.raises(TypeError, match="cookies"):
        await store.count()
    client = await make_client(store=store)
    with pytest.raises(TypeError, match="by id"):
        await get_manager(client.app).delete("x" * 43)
