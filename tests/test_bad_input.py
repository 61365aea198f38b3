"""Hostile cookies give a fresh session, never a 500, another's data or a deleted cookie."""

from __future__ import annotations

import aiohttp
import pytest

from aio_sessions import MemoryStore

from .conftest import MakeClient, send_cookie, session_cookie

BAD_COOKIES = [
    pytest.param("", id="empty"),
    pytest.param("!!!not-an-id!!!", id="malformed"),
    pytest.param("a" * 5000, id="oversized"),
    pytest.param("x" * 43, id="unknown-id"),
    pytest.param('"quoted;value"', id="quoted"),
    pytest.param("../../etc/passwd", id="path"),
    pytest.param("é" * 40, id="non-ascii"),
    pytest.param("gAAAAABlZ" + "A" * 100, id="foreign-token"),
]


@pytest.mark.parametrize("cookie", BAD_COOKIES)
async def test_bad_cookie_gives_fresh_session(make_client: MakeClient, cookie: str) -> None:
    store = MemoryStore()
    client = await make_client(store=store)
    await client.get("/count")
    await client.get("/count")
    victim = session_cookie(client)
    before = await store.load(victim)

    resp = await send_cookie(client, "/count", cookie)
    assert resp.status == 200
    assert await resp.json() == {"n": 1}  # a fresh session, not the victim's
    resp = await send_cookie(client, "/read", cookie)
    assert resp.status == 200

    after = await store.load(victim)
    assert before is not None
    assert after is not None
    assert after.data == before.data == {"n": 2}


async def test_unknown_cookie_is_left_alone_on_read(make_client: MakeClient) -> None:
    """A deletion could only hit a newer cookie of the same name (one set by a login that
    raced this request, or one of another path): a request that wrote nothing sends none."""
    client = await make_client()
    for path in ("/read", "/count"):
        resp = await send_cookie(client, path, "y" * 43)
        assert resp.status == 200
        for cookie in resp.headers.getall("Set-Cookie", []):
            assert "Max-Age=0" not in cookie


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("AIOHTTP_SESSION={sid}", {"n": 1}),
        ("a=1; AIOHTTP_SESSION={sid}; b=2", {"n": 1}),
        ('AIOHTTP_SESSION="{sid}"', {"n": 1}),
        ("XAIOHTTP_SESSION=zzz; AIOHTTP_SESSION={sid}", {"n": 1}),
        ("other=AIOHTTP_SESSION={sid}", {}),
        ("XAIOHTTP_SESSION={sid}", {}),
        ("AIOHTTP_SESSION=; other=1", {}),
    ],
)
async def test_cookie_header_forms(make_client: MakeClient, header: str, expected: object) -> None:
    client = await make_client()
    await client.get("/count")
    url = client.make_url("/read")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        headers = {"Cookie": header.format(sid=session_cookie(client))}
        async with raw.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["data"] == expected
