"""setup(secret=...): signed session ids, on every server-side store, through real servers.

A token that does not verify (tampered, unsigned, signed by a secret that left the list) is a
fresh session decided before any store is asked: ``Counted`` proves it by counting the loads
the real store receives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aio_sessions
from aio_sessions import EncryptedCookieStore, MemoryStore, get_manager, get_session
from aio_sessions._ids import valid_id

from .conftest import Counted, MakeClient, counter, send_cookie, session_cookie
from .kits import Kit

Client = TestClient[web.Request, web.Application]

NEW = "the newest secret, at least 32 bytes long"
OLD = b"an older secret, also 32 bytes or more"
OTHER = "another app's secret, 32 bytes or longer"


def sign(session_id: str, secret: str | bytes) -> str:
    """The documented token form, computed here independently of the library."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, session_id.encode(), hashlib.sha256).digest()
    return f"{session_id}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


async def whoami(request: web.Request) -> web.Response:
    session = await get_session(request)
    return web.json_response({"id": session.id, "data": dict(session), "new": session.new})


async def answer(client: Client, path: str, token: str) -> dict[str, Any]:
    resp = await send_cookie(client, path, token)
    assert resp.status == 200
    result: dict[str, Any] = await resp.json()
    return result


async def test_signed_cookie_round_trips(make_client: MakeClient, server_side: Kit) -> None:
    store = Counted(server_side.store)
    client = await make_client(store=store, secret=NEW)
    assert await (await client.get("/count")).json() == {"n": 1}
    resp = await client.get("/count")
    assert await resp.json() == {"n": 2}
    token = session_cookie(client)
    session_id = token.rpartition(".")[0]
    assert valid_id(session_id)
    assert token == sign(session_id, NEW)  # <id>.<HMAC-SHA-256, URL-safe base64, no padding>
    record = await store.inner.load(session_id)  # stored under the bare id
    assert record is not None
    assert record.data == {"n": 2}
    assert get_manager(client.app).token(session_id) == token


def tampered(token: str) -> dict[str, str]:
    """Every way a client may present the right session with the wrong signature."""
    session_id, _, mac = token.rpartition(".")
    flip = {"A": "B"}.get(mac[-1], "A")
    first = "b" if session_id[0] == "a" else "a"
    return {
        "unsigned": session_id,
        "other app's secret": sign(session_id, OTHER),
        "retired secret": sign(session_id, OLD),
        "last character of the mac": f"{session_id}.{mac[:-1]}{flip}",
        "first character of the id": f"{first}{session_id[1:]}.{mac}",
        "padded mac": f"{token}=",
        "empty mac": f"{session_id}.",
        "signed twice": f"{token}.{mac}",
        "mac first": f"{mac}.{session_id}",
        "oversized": f"{session_id}.{mac * 90}",
    }


async def test_bad_signature_is_a_fresh_session_without_lookup(
    make_client: MakeClient, server_side: Kit
) -> None:
    """Nothing a client changes in a token reaches the store, and the session it named keeps
    its data: the request writes to a session of its own."""
    store = Counted(server_side.store)
    client = await make_client(("GET", "/whoami", whoami), store=store, secret=NEW)
    await client.get("/count")
    token = session_cookie(client)
    victim = token.rpartition(".")[0]
    for case, forged in tampered(token).items():
        loads = store.loads
        assert await answer(client, "/count", forged) == {"n": 1}, case
        assert (await answer(client, "/whoami", forged))["id"] != victim, case
        assert store.loads == loads, f"{case}: the store was asked"
        record = await store.inner.load(victim)
        assert record is not None
        assert record.data == {"n": 1}, case
    loads = store.loads
    assert (await answer(client, "/whoami", token))["id"] == victim  # the real one still works
    assert store.loads == loads + 1


_COOKIE_SAFE = string.ascii_letters + string.digits + "-_.=~+/!*%"


@st.composite
def changed(draw: st.DrawFn, token: str) -> str:
    """``token`` with a character replaced, removed or added, or any cookie-safe text."""
    kind = draw(st.sampled_from(["replace", "remove", "add", "any"]))
    if kind == "any":
        return draw(st.text(_COOKIE_SAFE, max_size=120))
    at = draw(st.integers(0, len(token) - 1))
    char = draw(st.sampled_from(_COOKIE_SAFE))
    if kind == "replace":
        return token[:at] + char + token[at + 1 :]
    if kind == "remove":
        return token[:at] + token[at + 1 :]
    return token[:at] + char + token[at:]


@pytest.fixture
async def signed_app(aiohttp_client: Any, server_side: Kit) -> tuple[Client, Counted]:
    store = Counted(server_side.store)
    app = web.Application()
    aio_sessions.setup(app, store, secret=[NEW, OLD])
    app.router.add_get("/whoami", whoami)
    return await aiohttp_client(app), store


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_tampered_token_is_fresh_without_lookup(
    signed_app: tuple[Client, Counted], data: st.DataObject
) -> None:
    client, store = signed_app
    manager = get_manager(client.app)
    victim = await manager.create({"user": "victim"})
    token = manager.token(victim)
    forged = data.draw(changed(token), label="forged")
    if forged == token:
        return
    loads = store.loads
    result = await answer(client, "/whoami", forged)
    assert result["new"]
    assert result["id"] != victim
    assert store.loads == loads
    assert await manager.get(victim) == {"user": "victim"}


async def test_rotation_keeps_users_logged_in(aiohttp_client: Any, server_side: Kit) -> None:
    """Old secret -> [new, old] -> [new]: nobody is logged out by the rotation, and the first
    response after it re-signs the cookie with the new secret."""
    clients = []
    for secret in (OLD, [NEW, OLD], [NEW]):
        app = web.Application()
        aio_sessions.setup(app, Counted(server_side.store), secret=secret)
        app.router.add_get("/count", counter)
        app.router.add_get("/whoami", whoami)
        clients.append(await aiohttp_client(app))
    before, during, after = clients

    await before.get("/count")
    old_token = session_cookie(before)
    session_id = old_token.rpartition(".")[0]
    assert old_token == sign(session_id, OLD)

    resp = await send_cookie(during, "/whoami", old_token)
    assert await resp.json() == {"id": session_id, "data": {"n": 1}, "new": False}
    [cookie] = resp.headers.getall("Set-Cookie")
    new_token = sign(session_id, NEW)
    assert cookie.startswith(f"AIOHTTP_SESSION={new_token};")
    resp = await send_cookie(during, "/whoami", new_token)
    assert await resp.json() == {"id": session_id, "data": {"n": 1}, "new": False}
    assert "Set-Cookie" not in resp.headers  # signed with the newest: nothing to re-send

    assert await answer(after, "/whoami", new_token) == {
        "id": session_id,
        "data": {"n": 1},
        "new": False,
    }
    assert (await answer(after, "/whoami", old_token))["new"]  # its secret left the list


async def test_websocket_handshake_verifies_the_cookie(
    make_client: MakeClient, server_side: Kit
) -> None:
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = await aio_sessions.get_ws_session(ws)
        await ws.send_json({"user": session.get("user"), "new": session.new})
        await ws.close()
        return ws

    store = Counted(server_side.store)
    client = await make_client(("GET", "/ws", socket), store=store, secret=NEW)
    manager = get_manager(client.app)
    session_id = await manager.create({"user": "ann"})
    token = manager.token(session_id)
    url = client.make_url("/ws")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as raw:
        for cookie, expected in (
            (token, {"user": "ann", "new": False}),
            (session_id, {"user": None, "new": True}),
            (sign(session_id, OTHER), {"user": None, "new": True}),
        ):
            loads = store.loads
            headers = {"Cookie": f"AIOHTTP_SESSION={cookie}"}
            async with raw.ws_connect(url, headers=headers) as ws:
                assert await ws.receive_json() == expected
            assert store.loads == loads + (not expected["new"])


async def test_without_secret_the_cookie_is_the_bare_id(make_client: MakeClient) -> None:
    """The default stays aiohttp-session's cookie: the id alone."""
    client = await make_client(("GET", "/whoami", whoami))
    await client.get("/count")
    token = session_cookie(client)
    assert valid_id(token)
    assert (await answer(client, "/whoami", token))["id"] == token


def test_secret_with_the_cookie_store_is_refused() -> None:
    """Its cookie is already authenticated by the store's key: a signature would only add
    bytes to a cookie capped at 4096, so the combination is an error at setup."""
    store = EncryptedCookieStore(Fernet.generate_key())
    with pytest.raises(ValueError, match="EncryptedCookieStore") as info:
        aio_sessions.setup(web.Application(), store, secret=NEW)
    assert NEW not in str(info.value)
    assert "leave secret out" in str(info.value).lower()
    with pytest.raises(ValueError, match="EncryptedCookieStore"):
        aio_sessions.session_middleware(store, secret=[NEW])


@pytest.mark.parametrize(
    ("secret", "error", "named"),
    [
        ("too short", ValueError, "secret=<hidden, length 9> (str)"),
        (b"x" * 31, ValueError, "secret=<hidden, length 31> (bytes)"),
        ([NEW, "short one"], ValueError, "secret[1]=<hidden, length 9> (str)"),
        ([], ValueError, "secret=<hidden, length 0> (list)"),
        (12345678901234567890123456789012, TypeError, "secret=<hidden> (int)"),
        ([NEW, 42], TypeError, "secret[1]=<hidden> (int)"),
        ({"key": NEW}, TypeError, "(dict)"),
    ],
)
def test_bad_secret_fails_at_setup_without_showing_it(
    secret: object, error: type[Exception], named: str
) -> None:
    for make in (
        lambda: aio_sessions.setup(web.Application(), MemoryStore(), secret=secret),
        lambda: aio_sessions.session_middleware(MemoryStore(), secret=secret),
    ):
        with pytest.raises(error) as info:
            make()
        message = str(info.value)
        assert named in message
        assert "at least 32 bytes" in message
        for shown in ("too short", "short one", "xxxx", NEW, "1234567890"):
            assert shown not in message


def test_secret_never_in_the_config_repr() -> None:
    config = aio_sessions.setup(web.Application(), secret=[NEW, OLD]).config
    assert NEW not in repr(config)
    assert repr(OLD) not in repr(config)
    assert config.secret == (NEW.encode(), OLD)  # newest first, as bytes
