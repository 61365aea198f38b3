"""The cookie at its edges: same-name cookies, no deletion a request did not earn, and a
cookie with a Max-Age that follows the session whenever the server extends it."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from aio_sessions import get_session

from .conftest import MakeClient, session_cookie
from .kits import Kit

Client = TestClient[web.Request, web.Application]
STALE = "Q" * 43  # a well-formed id that names no session


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.regenerate()
    session["user"] = "alice"
    return web.Response()


async def whoami(request: web.Request) -> web.Response:
    session = await get_session(request)
    return web.json_response({"user": session.get("user")})


async def with_cookies(client: Client, path: str, *values: str) -> aiohttp.ClientResponse:
    """GET ``path`` sending exactly these AIOHTTP_SESSION values, in this order."""
    return await with_header(client, path, "; ".join(f"AIOHTTP_SESSION={v}" for v in values))


async def with_header(client: Client, path: str, header: str) -> aiohttp.ClientResponse:
    """GET ``path`` with exactly this Cookie header, from a client that keeps no cookies."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        resp = await raw.get(client.make_url(path), headers={"Cookie": header})
        await resp.read()
        return resp


def app_cookie(client: Client) -> str:
    """The session cookie the client holds for ``/app``."""
    return client.session.cookie_jar.filter_cookies(client.make_url("/app/"))[
        "AIOHTTP_SESSION"
    ].value


def deletions(resp: aiohttp.ClientResponse) -> list[str]:
    return [c for c in resp.headers.getall("Set-Cookie", []) if "Max-Age=0" in c]


# -- same-name cookies (a cookie that moved from "/" to "/app") ----------------------------


@pytest.mark.parametrize("order", ["live-first", "stale-first"])
async def test_first_live_of_same_name_cookies_wins(
    make_client: MakeClient, kit: Kit, order: str
) -> None:
    client = await make_client(
        ("POST", "/app/login", login), ("GET", "/app/me", whoami), store=kit.store, path="/app"
    )
    await client.post("/app/login")
    live = app_cookie(client)
    values = (live, STALE) if order == "live-first" else (STALE, live)
    for _ in range(2):  # and again: nothing was deleted by the first
        resp = await with_cookies(client, "/app/me", *values)
        assert resp.status == 200
        assert await resp.json() == {"user": "alice"}
        assert deletions(resp) == []


async def test_relogin_beside_a_stale_cookie_sticks(make_client: MakeClient, kit: Kit) -> None:
    client = await make_client(
        ("POST", "/app/login", login), ("GET", "/app/me", whoami), store=kit.store, path="/app"
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        resp = await raw.post(
            client.make_url("/app/login"), headers={"Cookie": f"AIOHTTP_SESSION={STALE}"}
        )
        assert deletions(resp) == []
        [issued] = [c for c in resp.headers.getall("Set-Cookie") if "Path=/app" in c]
    new = issued.split(";")[0].split("=", 1)[1]
    assert await (await with_cookies(client, "/app/me", new, STALE)).json() == {"user": "alice"}


@pytest.mark.parametrize(
    "header",
    [
        'AIOHTTP_SESSION="{live}"; AIOHTTP_SESSION={stale}',
        "AIOHTTP_SESSION=; AIOHTTP_SESSION={live}",
        "a=1; AIOHTTP_SESSION={stale};AIOHTTP_SESSION={live} ; b=2",
        "AIOHTTP_SESSION={stale}; AIOHTTP_SESSION={stale}; AIOHTTP_SESSION={live}",
    ],
)
async def test_same_name_cookie_header_forms(make_client: MakeClient, header: str) -> None:
    client = await make_client(("POST", "/login", login), ("GET", "/me", whoami))
    await client.post("/login")
    cookie = header.format(live=session_cookie(client), stale=STALE)
    resp = await with_header(client, "/me", cookie)
    assert await resp.json() == {"user": "alice"}
    assert deletions(resp) == []


# -- a request that neither wrote nor ended the session sends no Set-Cookie ----------------


@pytest.mark.parametrize("poll", ["read", "rolling-touch", "write"])
async def test_poll_racing_a_login_keeps_the_login(
    make_client: MakeClient, server_side: Kit, poll: str
) -> None:
    loaded, gate = asyncio.Event(), asyncio.Event()

    async def slow_poll(request: web.Request) -> web.Response:
        session = await get_session(request)
        loaded.set()
        await gate.wait()
        if poll == "write":
            session["seen"] = True
        return web.Response()

    client = await make_client(
        ("POST", "/login", login),
        ("GET", "/poll", slow_poll),
        ("GET", "/me", whoami),
        store=server_side.store,
        rolling=poll == "rolling-touch",
    )
    await client.get("/count")  # an anonymous session: the poll's cookie
    pending = asyncio.ensure_future(client.get("/poll"))
    await loaded.wait()
    await client.post("/login")  # regenerate: the poll's id is gone
    gate.set()
    resp = await pending
    assert resp.status == 200
    assert "Set-Cookie" not in resp.headers
    assert await (await client.get("/me")).json() == {"user": "alice"}


@pytest.mark.parametrize("path", ["/read", "/count", "/end"])
async def test_unknown_or_expired_ids_are_not_deleted(
    make_client: MakeClient, kit: Kit, path: str
) -> None:
    async def end(request: web.Request) -> web.Response:
        (await get_session(request)).invalidate()  # ends nothing: the session is fresh
        return web.Response()

    client = await make_client(("GET", "/end", end), store=kit.store, idle_timeout=0.3)
    await client.get("/count")
    expired = session_cookie(client)
    await asyncio.sleep(0.5)
    for cookie in (STALE, expired, "not an id"):
        resp = await with_cookies(client, path, cookie)
        assert resp.status == 200
        assert deletions(resp) == []


async def test_logout_deletes_the_cookie(make_client: MakeClient, kit: Kit) -> None:
    async def logout(request: web.Request) -> web.Response:
        (await get_session(request)).invalidate()
        return web.Response()

    client = await make_client(("POST", "/logout", logout), store=kit.store)
    await client.get("/count")
    resp = await client.post("/logout")
    assert len(deletions(resp)) == 1


# -- a cookie with a Max-Age follows every extension ---------------------------------------


def max_age_cookie(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    [header] = resp.headers.getall("Set-Cookie")
    attrs = dict(
        part.strip().split("=", 1) if "=" in part else (part.strip(), "")
        for part in header.split(";")[1:]
    )
    expires = parsedate_to_datetime(attrs["expires"]).timestamp()
    return {"max_age": int(attrs["Max-Age"]), "expires": expires}


async def test_every_extension_resends_a_max_age_cookie(make_client: MakeClient, kit: Kit) -> None:
    client = await make_client(store=kit.store, max_age=2)
    first = max_age_cookie(await client.get("/count"))
    assert first["max_age"] == 2
    await asyncio.sleep(1.1)
    second = max_age_cookie(await client.get("/count"))  # a write extends the session
    assert second["max_age"] == 2
    assert second["expires"] > first["expires"]
    await asyncio.sleep(1.1)
    # More than half the lifetime since the last write: a read extends it too.
    third = max_age_cookie(await client.get("/read"))
    assert third["expires"] > second["expires"]
    # Right after, a read extends nothing and sends nothing.
    assert "Set-Cookie" not in (await client.get("/read")).headers


async def test_active_user_stays_logged_in_past_max_age(
    make_client: MakeClient, server_side: Kit
) -> None:
    """The issue's timeline, scaled: max_age=2, writes at 0 and 1.2 s, a read at 2.6 s."""
    client = await make_client(store=server_side.store, max_age=2)
    await client.get("/count")
    await asyncio.sleep(1.2)
    await client.get("/count")
    await asyncio.sleep(1.4)  # the first cookie has expired in the browser by now
    assert (await (await client.get("/read")).json())["data"] == {"n": 2}


@pytest.mark.parametrize("options", [{"rolling": True}, {"rolling": True, "max_age": 60}])
async def test_rolling_sends_the_cookie_on_every_response(
    make_client: MakeClient, options: dict[str, Any]
) -> None:
    client = await make_client(**options)
    await client.get("/count")
    for _ in range(3):
        resp = await client.get("/read")
        [cookie] = resp.headers.getall("Set-Cookie")
        assert ("Max-Age=60" in cookie) == ("max_age" in options)


async def test_a_header_stuffed_with_same_name_cookies_costs_a_few_lookups(
    make_client: MakeClient,
) -> None:
    from .conftest import CountingStore

    store = CountingStore()
    client = await make_client(("GET", "/me", whoami), store=store)
    values = [f"{i:043d}" for i in range(100)]  # well-formed ids, none live, ~6 KB
    resp = await with_cookies(client, "/me", *values, *values[:3])
    assert resp.status == 200
    assert store.calls.count("load") == 4
