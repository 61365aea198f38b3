"""Bad cookies on the stores aiohttp-session has too (its cookie, Redis and memory-like
storages): tampered, truncated and foreign cookies give a fresh session, never a 500 or
another session's data, and leave the real session alone.

aiohttp-session's own tests of this (a cookie of another key, a Redis key that holds no
session, an unknown key) are ported in the storage modules; these widen them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from aio_sessions import EncryptedCookieStore, MemoryStore

from ..conftest import MakeClient, aiohttp_session_client, replay, send_cookie
from ..kits import Kit
from .conftest import COOKIE, document

pytestmark = [
    pytest.mark.parametrize("kit", ["memory", "redis", "cookie"], indirect=True),
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]


@dataclass
class Peers:
    """What a damage needs to forge a cookie: the store under test and other apps."""

    kit: Kit
    aiohttp_client: Any
    make_client: MakeClient


Damage = Callable[[str, Peers], Awaitable[str]]


async def tampered(cookie: str, peers: Peers) -> str:
    middle = len(cookie) // 2
    return cookie[:middle] + ("B" if cookie[middle] == "A" else "A") + cookie[middle + 1 :]


async def truncated(cookie: str, peers: Peers) -> str:
    return cookie[: len(cookie) - 8]


async def aiohttp_sessions(cookie: str, peers: Peers) -> str:
    """A cookie that aiohttp-session issued with another key, holding what an attacker wants."""
    storage = EncryptedCookieStorage(Fernet.generate_key().decode())
    theirs = await aiohttp_session_client(peers.aiohttp_client, storage)
    resp = await theirs.get("/", params={"set": "user", "value": "admin"})
    value: str = resp.cookies[COOKIE].value
    return value


async def another_apps(cookie: str, peers: Peers) -> str:
    """A live session of another app of ours, on a store of the same kind."""
    stateless = peers.kit.stateless
    store = EncryptedCookieStore(Fernet.generate_key()) if stateless else MemoryStore()
    other = await peers.make_client(store=store)
    value: str = (await other.get("/count")).cookies[COOKIE].value
    return value


async def plain_json(cookie: str, peers: Peers) -> str:
    """What aiohttp-session's SimpleCookieStorage sends: the document in clear."""
    return document({"user": "admin"})


@pytest.mark.parametrize(
    "damage", [tampered, truncated, aiohttp_sessions, another_apps, plain_json]
)
async def test_bad_cookie_gives_a_fresh_session(
    kit: Kit, make_client: MakeClient, aiohttp_client: Any, damage: Damage
) -> None:
    # kit first: set up before the app, so it closes the store's client after the app stops.
    client = await make_client(store=kit.store)
    good = (await client.get("/count")).cookies[COOKIE].value
    bad = await damage(good, Peers(kit, aiohttp_client, make_client))
    assert bad != good

    assert await replay(client, "/read", bad) == {"data": {}, "new": True}
    resp = await send_cookie(client, "/read", bad)
    assert "Set-Cookie" not in resp.headers  # ignored, not deleted (docs/session.md#errors)
    resp = await send_cookie(client, "/count", bad)
    assert await resp.json() == {"n": 1}  # a fresh session of its own
    assert await replay(client, "/read", good) == {"data": {"n": 1}, "new": False}
