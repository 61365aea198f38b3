"""setup(id_factory=...): the app's ids for new sessions and regenerate(), on every store."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable

import pytest
from aiohttp import web

import aio_sessions
from aio_sessions import MemoryStore, get_manager, get_session

from .conftest import MakeClient, session_cookie
from .kits import Kit


class Ids:
    """An id factory that remembers what it issued: ids the app can recognise as its own."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def __call__(self) -> str:
        self.issued.append(f"app_{uuid.uuid4().hex}")
        return self.issued[-1]


async def whoami(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["seen"] = session.get("seen", 0) + 1
    return web.json_response({"id": session.id})


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    old = session.id
    session.regenerate()
    session["user"] = "ann"
    return web.json_response({"old": old, "id": session.id})


async def test_new_sessions_and_regenerate_use_the_factory(
    make_client: MakeClient, kit: Kit
) -> None:
    ids = Ids()
    client = await make_client(
        ("GET", "/whoami", whoami), ("POST", "/login", login), store=kit.store, id_factory=ids
    )
    assert len(ids.issued) == 1  # setup tried it once
    first = (await (await client.get("/whoami")).json())["id"]
    assert first in ids.issued
    assert (await (await client.get("/whoami")).json())["id"] == first
    if not kit.stateless:
        assert session_cookie(client) == first  # the cookie is the factory's id
    swap = await (await client.post("/login")).json()
    assert swap["old"] == first
    assert swap["id"] in ids.issued
    assert swap["id"] != first
    assert (await (await client.get("/whoami")).json())["id"] == swap["id"]
    made = await get_manager(client.app).create({"user": "bob"})
    if not kit.stateless:
        assert made == ids.issued[-1]


async def test_factory_ids_are_signed_with_a_secret(make_client: MakeClient) -> None:
    ids = Ids()
    secret = "a secret of thirty-two bytes or more"
    client = await make_client(("GET", "/whoami", whoami), id_factory=ids, secret=secret)
    session_id = (await (await client.get("/whoami")).json())["id"]
    assert session_id in ids.issued
    assert session_cookie(client) == get_manager(client.app).token(session_id)
    assert session_cookie(client).startswith(f"{session_id}.")


def uuid_object() -> uuid.UUID:
    return uuid.uuid4()


@pytest.mark.parametrize(
    ("factory", "error", "parts"),
    [
        ("token_urlsafe", TypeError, ["id_factory='token_urlsafe' (str)", "a callable"]),
        (uuid_object, TypeError, ["id_factory()=<hidden> (uuid.UUID)", "uuid.uuid4().hex"]),
        (lambda: 42, TypeError, ["id_factory()=<hidden> (int)", "a str"]),
        (lambda: "short", ValueError, ["<hidden, length 5> (str)", "32 to 64"]),
        (lambda: "x" * 65, ValueError, ["<hidden, length 65> (str)", "32 to 64"]),
        (lambda: str(uuid.uuid4()) + "!", ValueError, ["holds '!'"]),
        (lambda: "a+b/c=" * 8, ValueError, ["holds '+/='"]),
        (lambda: "é" * 40, ValueError, ["holds 'é'"]),
    ],
)
def test_bad_factory_fails_at_setup(
    factory: object, error: type[Exception], parts: list[str]
) -> None:
    """setup calls the factory once; the message names the fix, never the id it made."""
    for make in (
        lambda: aio_sessions.setup(web.Application(), MemoryStore(), id_factory=factory),
        lambda: aio_sessions.session_middleware(MemoryStore(), id_factory=factory),
    ):
        with pytest.raises(error) as info:
            make()
        message = str(info.value)
        for part in parts:
            assert part in message
        assert "xxxx" not in message
        assert "short'" not in message


@pytest.mark.parametrize(
    "factory",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: uuid.uuid4().hex,
        lambda: "A" * 32,
        lambda: "z" * 64,
        lambda: "-_" * 16,
    ],
)
def test_good_factories_pass(factory: Callable[[], str]) -> None:
    manager = aio_sessions.setup(web.Application(), id_factory=factory)
    assert manager.config.id_factory is factory


async def test_a_bad_id_later_is_a_clear_error(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A factory that goes wrong after setup fails the request that needed an id (500, the
    error logged), instead of handing out a cookie that no store would accept."""
    calls = 0

    def flaky() -> str:  # good at setup, wrong on the first request
        nonlocal calls
        calls += 1
        return uuid.uuid4().hex if calls == 1 else "bad id"

    store = MemoryStore()
    client = await make_client(("GET", "/whoami", whoami), store=store, id_factory=flaky)
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/whoami")
    assert resp.status == 500
    assert "Set-Cookie" not in resp.headers
    assert await store.count() == 0
    assert "id_factory()=<hidden, length 6> (str)" in caplog.text
    assert "bad id" not in caplog.text
