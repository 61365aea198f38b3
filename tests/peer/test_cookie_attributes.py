"""The session cookie's attributes and lifetime.

From aiohttp-session's test_abstract_storage.py (max_age and Expires, expiry pushed back by
writes) and test_path_domain.py (a cookie of another path or domain is not this session's),
plus its cookie options (domain, path, secure, httponly, samesite, max_age) side by side with
the real package: the same options give the same attributes.
"""

from __future__ import annotations

import asyncio
from http.cookies import Morsel
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from aio_sessions import EncryptedCookieStore, get_session

from ..conftest import MakeClient, aiohttp_session_client, replay
from .conftest import (
    COOKIE,
    Client,
    end,
    expires,
    expires_in,
    fernet_cookie,
    give_cookie,
    opened,
    state,
)

KEY = Fernet.generate_key()
FERNET = Fernet(KEY)
HOST = "127.0.0.1"  # the test server's host, as aiohttp-session's path/domain tests use


async def write(request: web.Request) -> web.Response:
    """Set the key named by ``?k=`` (default "c"); answer with the session's state."""
    session = await get_session(request)
    session[request.query.get("k", "c")] = True
    return web.json_response(state(session))


def sent(resp: ClientResponse) -> Morsel[str]:
    """The session cookie a response sets."""
    return resp.cookies[COOKIE]


# -- test_abstract_storage.py ---------------------------------------------------------------


async def test_max_age_also_returns_expires(make_client: MakeClient) -> None:
    client = await make_client(("GET", "/", write), max_age=10)
    morsel = sent(await client.get("/"))
    assert morsel["max-age"] == "10"
    assert 8 <= expires_in(morsel) <= 11  # Expires names the same moment as Max-Age


async def test_max_age_session_reset(make_client: MakeClient) -> None:
    # aiohttp-session: max_age=10 with a mocked clock; here max_age=2 on the real one.
    client = await make_client(("GET", "/", write), store=EncryptedCookieStore(KEY), max_age=2)
    first = sent(await client.get("/", params={"k": "a"}))
    assert 0 < expires_in(first) <= 2
    assert opened(FERNET, first.value)["session"].keys() == {"a"}

    await asyncio.sleep(1.3)
    second = sent(await client.get("/", params={"k": "b"}))
    assert expires(second) - expires(first) >= 1  # a write pushes the end back
    assert opened(FERNET, second.value)["session"].keys() == {"a", "b"}

    await asyncio.sleep(1.2)  # past the first cookie's end, within the second's
    assert (await replay(client, "/read", first.value))["data"] == {}
    assert (await replay(client, "/read", second.value))["data"] == {"a": True, "b": True}
    third = sent(await client.get("/", params={"k": "c"}))
    assert opened(FERNET, third.value)["session"].keys() == {"a", "b", "c"}

    await asyncio.sleep(2.3)  # max_age without a request: the server has forgotten it
    assert await replay(client, "/read", third.value) == {"data": {}, "new": True}


# -- test_path_domain.py --------------------------------------------------------------------


async def path_domain_client(make_client: MakeClient, *routes: Any) -> Client:
    """aiohttp-session's setup there: max_age=10, path="/anotherpath", domain=127.0.0.1."""
    return await make_client(
        ("GET", "/anotherpath", write),
        *routes,
        store=EncryptedCookieStore(KEY),
        max_age=10,
        path="/anotherpath",
        domain=HOST,
    )


def check_attributes(morsel: Morsel[str]) -> None:
    assert morsel["httponly"]
    assert morsel["path"] == "/anotherpath"
    assert morsel["domain"] == HOST


async def test_with_same_path_domain(make_client: MakeClient) -> None:
    client = await path_domain_client(make_client)
    give_cookie(client, fernet_cookie(FERNET, {"a": 1, "b": 2}), path="/anotherpath", domain=HOST)
    resp = await client.get("/anotherpath")
    assert resp.status == 200
    assert not (await resp.json())["new"]
    morsel = sent(resp)
    doc = opened(FERNET, morsel.value)
    assert doc["session"] == {"a": 1, "b": 2, "c": True}
    assert isinstance(doc["created"], int)
    check_attributes(morsel)


@pytest.mark.parametrize(
    ("path", "domain"),
    [("/NotTheSame", HOST), ("/anotherpath", "localhost")],
    ids=["test_with_different_path", "test_with_different_domain"],
)
async def test_cookie_of_another_path_or_domain_is_not_sent(
    make_client: MakeClient, path: str, domain: str
) -> None:
    client = await path_domain_client(make_client)
    give_cookie(client, fernet_cookie(FERNET, {"a": 1, "b": 2}), path=path, domain=domain)
    resp = await client.get("/anotherpath")
    assert resp.status == 200
    body = await resp.json()
    assert body["new"]  # the browser did not send that cookie here
    assert body["data"] == {"c": True}
    morsel = sent(resp)
    assert opened(FERNET, morsel.value)["session"] == {"c": True}
    check_attributes(morsel)


async def test_invalidate_with_same_path_domain(make_client: MakeClient) -> None:
    client = await path_domain_client(make_client, ("GET", "/anotherpath/end", end))
    give_cookie(client, fernet_cookie(FERNET, {"a": 1, "b": 2}), path="/anotherpath", domain=HOST)
    resp = await client.get("/anotherpath/end")
    assert resp.status == 200
    morsel = sent(resp)
    # aiohttp-session's SimpleCookieStorage writes "{}" there; a deletion empties it here
    # (docs/migration.md#new_session-and-invalidate-delete-the-stored-session).
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    check_attributes(morsel)


# -- the cookie options, side by side with aiohttp-session ----------------------------------

ATTRIBUTES = ("path", "domain", "httponly", "secure", "samesite", "max-age")


def attributes(morsel: Morsel[str]) -> dict[str, Any]:
    found: dict[str, Any] = {name: morsel[name] for name in ATTRIBUTES}
    for flag in ("httponly", "secure"):
        found[flag] = bool(found[flag])
    found["samesite"] = found["samesite"].lower()
    return found


@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
@pytest.mark.parametrize(
    ("options", "ours_differ"),
    [
        # docs/options.md#options: samesite defaults to "Lax" here, absent there.
        pytest.param({}, {"samesite": "lax"}, id="defaults"),
        pytest.param({"cookie_name": "sid"}, {"samesite": "lax"}, id="cookie_name"),
        pytest.param({"domain": HOST, "samesite": None}, {}, id="domain"),
        pytest.param({"path": "/app", "samesite": None}, {}, id="path"),
        pytest.param({"secure": True, "samesite": None}, {}, id="secure"),
        pytest.param({"httponly": False, "samesite": None}, {}, id="httponly=False"),
        pytest.param({"samesite": "Strict"}, {}, id="samesite=Strict"),
        pytest.param({"samesite": "Lax"}, {}, id="samesite=Lax"),
        # docs/options.md#cookies-browsers-would-drop: SameSite=None is always Secure here.
        pytest.param({"samesite": "None"}, {"secure": True}, id="samesite=None"),
        pytest.param({"max_age": 60, "samesite": None}, {}, id="max_age"),
    ],
)
async def test_options_give_aiohttp_sessions_attributes(
    aiohttp_client: Any, make_client: MakeClient, options: dict[str, Any], ours_differ: Any
) -> None:
    name = options.get("cookie_name", COOKIE)
    theirs = await aiohttp_session_client(
        aiohttp_client, EncryptedCookieStorage(KEY.decode(), **options)
    )
    ours = await make_client(store=EncryptedCookieStore(KEY), **options)
    their_cookie = (await theirs.get("/", params={"set": "n", "value": "1"})).cookies[name]
    our_cookie = (await ours.get("/count")).cookies[name]
    assert attributes(our_cookie) == attributes(their_cookie) | ours_differ
    if "max_age" in options:
        assert abs(expires_in(our_cookie) - expires_in(their_cookie)) <= 2
    else:
        assert not our_cookie["expires"]
        assert not their_cookie["expires"]
    # The same document inside, under the same key.
    assert opened(FERNET, our_cookie.value)["session"] == {"n": 1}
    assert opened(FERNET, their_cookie.value)["session"] == {"n": "1"}
