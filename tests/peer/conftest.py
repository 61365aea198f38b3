"""Helpers of the peer tests: aiohttp-session's own tests, written anew against this API.

Each module here takes one of aiohttp-session's test files, learns what each test checks,
and checks the same through a real server and client. A test that cannot hold because this
library documents another behaviour is ``xfail(strict=True)`` with the doc link as reason.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any

import aiomcache
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from nacl.encoding import Base64Encoder
from nacl.secret import SecretBox
from redis.asyncio import Redis

from aio_sessions import MemcachedStore, RedisStore, Session, Store, get_session

from ..conftest import MakeClient

Client = TestClient[web.Request, web.Application]
COOKIE = "AIOHTTP_SESSION"
#: The Expires of a cookie being deleted, as aiohttp-session's tests expect it.
EPOCH_EXPIRES = "Thu, 01 Jan 1970 00:00:00 GMT"


def state(session: Session) -> dict[str, Any]:
    """What aiohttp-session's tests inspect inside a handler, as JSON for the test to check."""
    return {
        "data": dict(session),
        "new": session.new,
        "dirty": session.dirty,
        "empty": session.empty,
        "created": session.created,
    }


async def report(request: web.Request) -> web.Response:
    """A handler that only reads the session and reports its state."""
    return web.json_response(state(await get_session(request)))


async def write_c(request: web.Request) -> web.Response:
    """Write one key, as most of aiohttp-session's handlers do."""
    (await get_session(request))["c"] = 3
    return web.Response(text="OK")


async def end(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return web.Response(text="OK")


async def fixation(make_client: MakeClient, store: Store) -> tuple[str, str, str]:
    """aiohttp-session's session fixation check: log in, log out, come back with the cookie
    of the logged-out session and log in again. The three cookies the responses set."""

    async def login(request: web.Request) -> web.Response:
        (await get_session(request))["k"] = "v"
        return web.Response()

    client = await make_client(("GET", "/", login), ("DELETE", "/", end), store=store)
    evil = (await client.get("/")).cookies[COOKIE].value
    logged_out = (await client.delete("/")).cookies[COOKIE].value
    give_cookie(client, evil)
    return evil, logged_out, (await client.get("/")).cookies[COOKIE].value


def document(data: dict[str, Any], created: int | None = None) -> str:
    """The JSON document aiohttp-session stores for a session (its storages' wire format)."""
    return json.dumps(
        {"created": int(time.time()) if created is None else created, "session": data}
    )


def fernet_cookie(fernet: Fernet, data: dict[str, Any], created: int | None = None) -> str:
    """A cookie as aiohttp-session's EncryptedCookieStorage makes it: the document, Fernet'd."""
    return fernet.encrypt(document(data, created).encode()).decode()


def opened(fernet: Fernet, token: str) -> dict[str, Any]:
    """The document inside a Fernet session cookie."""
    doc: dict[str, Any] = json.loads(fernet.decrypt(token.encode()))
    return doc


def nacl_cookie(box: SecretBox, data: dict[str, Any], created: int | None = None) -> str:
    """A cookie as aiohttp-session's NaClCookieStorage makes it: a random nonce and the
    sealed document, in standard base64."""
    return box.encrypt(document(data, created).encode(), encoder=Base64Encoder).decode()


def nacl_opened(box: SecretBox, token: str) -> dict[str, Any]:
    """The document inside a NaCl session cookie, opened as aiohttp-session opens it."""
    doc: dict[str, Any] = json.loads(box.decrypt(token.encode(), encoder=Base64Encoder))
    return doc


async def redis_record(redis: Redis, data: dict[str, Any], created: int | None = None) -> str:
    """Store a session as aiohttp-session's RedisStorage does (a uuid4 hex key); its cookie."""
    key = uuid.uuid4().hex
    await redis.set(f"{COOKIE}_{key}", document(data, created))
    return key


async def stored(redis: Redis, key: str) -> dict[str, Any] | None:
    """The document Redis holds for a session id, or None."""
    raw = await redis.get(f"{COOKIE}_{key}")
    return None if raw is None else dict(json.loads(raw))


def storage_key(key: str) -> bytes:
    """The memcached item of a session, as aiohttp-session's MemcachedStorage names it."""
    return f"{COOKIE}_{key}".encode()


async def memcached_record(
    memcached: aiomcache.Client, data: dict[str, Any], created: int | None = None
) -> str:
    """Store a session as aiohttp-session's MemcachedStorage does (a uuid4 hex key); its cookie."""
    key = uuid.uuid4().hex
    await memcached.set(storage_key(key), document(data, created).encode())
    return key


async def memcached_stored(memcached: aiomcache.Client, key: str) -> dict[str, Any] | None:
    """The document memcached holds for a session id, or None."""
    raw = await memcached.get(storage_key(key))
    return None if raw is None else dict(json.loads(raw))


def give_cookie(client: Client, value: str, *, path: str = "/", domain: str = "") -> None:
    """Put a session cookie in the client's jar in place of any it holds (quoted if need be)."""
    client.session.cookie_jar.clear(lambda morsel: morsel.key == COOKIE)
    jar: SimpleCookie = SimpleCookie()
    jar[COOKIE] = value
    jar[COOKIE]["path"] = path
    if domain:
        jar[COOKIE]["domain"] = domain
    client.session.cookie_jar.update_cookies(jar)


def expires(morsel: Morsel[str]) -> float:
    """The cookie's Expires attribute, in epoch seconds."""
    return parsedate_to_datetime(morsel["expires"]).timestamp()


def expires_in(morsel: Morsel[str]) -> float:
    """Seconds from now until the cookie's Expires attribute."""
    return expires(morsel) - time.time()


#: aiohttp-session re-sends the cookie on every change; here only when it has a Max-Age.
RESENDS_ONLY_WITH_MAX_AGE = pytest.mark.xfail(
    strict=True,
    reason="docs/migration.md#the-cookie-follows-the-session: a change to a stored session "
    "re-sends its cookie only when the cookie has a Max-Age",
)


@pytest.fixture
async def peer_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the suite's real Redis, to look at what the stores wrote."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def redis_store(redis_url: str) -> RedisStore:
    """A RedisStore on the suite's Redis with aiohttp-session's key format (the default).

    It owns its client, which the app closes on cleanup: a client the test closed first
    would cut the store's event listener off while the app still runs.
    """
    return RedisStore.from_url(redis_url)


@pytest.fixture
async def peer_memcached(memcached_address: tuple[str, int]) -> AsyncIterator[aiomcache.Client]:
    """A client of the suite's real memcached, to look at what the store wrote."""
    client = aiomcache.Client(*memcached_address)
    yield client
    await client.close()


@pytest.fixture
def memcached_store(peer_memcached: aiomcache.Client) -> MemcachedStore:
    """A MemcachedStore with aiohttp-session's item names (the default ``key_prefix``).

    The store leaves the client open; ``peer_memcached`` closes it after the app stopped, as
    long as a test names this fixture before ``make_client``.
    """
    return MemcachedStore(peer_memcached)
