"""encoder= and decoder= on every store, with aiohttp-session's meaning.

The pair gets the whole record document and the text stored, as in aiohttp-session, so a
session written by either library with one pair reads in the other with the same pair. What a
pair gives back is checked like JSON: a decoder that raises or returns something else than a
record is a corrupt record (a fresh session and a warning, never a 500); an encoder that
raises or returns something else than text is a SerializationError at save.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiomcache
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nacl.encoding import Base64Encoder
from nacl.secret import SecretBox
from redis.asyncio import Redis
from redis.asyncio import RedisCluster as ClusterClient

from aio_sessions import (
    EncryptedCookieStore,
    FileStore,
    MemcachedStore,
    MemoryStore,
    NaClCookieStore,
    RedisStore,
    SerializationError,
    SQLiteStore,
    Store,
    get_session,
)
from aio_sessions._ids import new_id
from aio_sessions.stores import SessionRecord
from aio_sessions.stores._json import MAX_DEPTH

from .conftest import MakeClient, send_cookie, session_cookie

Client = TestClient[web.Request, web.Application]

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
AIOHTTP_SESSION_WARNS = pytest.mark.filterwarnings(
    "ignore::aiohttp.web_exceptions.NotAppKeyWarning"
)


# -- a pair as aiohttp-session users write one: datetimes as {"$dt": iso} --------------------


def _tagged(value: object) -> object:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"cannot store a {type(value).__name__}")


def _untagged(obj: dict[str, Any]) -> object:
    return datetime.fromisoformat(obj["$dt"]) if obj.keys() == {"$dt"} else obj


def encode(document: object) -> str:
    return json.dumps(document, default=_tagged)


def decode(text: str) -> Any:
    return json.loads(text, object_hook=_untagged)


class Switch:
    """An encoder or decoder that a test makes misbehave after the store has checked it."""

    def __init__(self, normal: Callable[[Any], Any]) -> None:
        self.normal = normal
        self.instead: Callable[[Any], Any] | None = None

    def __call__(self, value: Any) -> Any:
        return (self.instead or self.normal)(value)


def raising(exc: BaseException) -> Callable[[Any], Any]:
    def fail(value: Any) -> Any:
        raise exc

    return fail


def returning(result: Any) -> Callable[[Any], Any]:
    return lambda value: result


# -- every store, built with a pair ----------------------------------------------------------

STORES = ["memory", "redis", "redis-cluster", "memcached", "sqlite", "file", "cookie", "nacl"]


async def open_store(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, **codec: Any
) -> AsyncIterator[Store]:
    """The store called ``name`` with these ``encoder``/``decoder``, on a real backend."""
    if name in ("redis", "redis-cluster"):
        client: Redis | ClusterClient
        if name == "redis":
            client = Redis.from_url(request.getfixturevalue("redis_url"))
        else:
            client = ClusterClient.from_url(request.getfixturevalue("redis_cluster_url"))
        store = RedisStore(client, key_prefix=f"codec-{new_id()[:8]}:", **codec)
        yield store
        await store.clear()
        await client.aclose()
    elif name == "memcached":
        mc = aiomcache.Client(*request.getfixturevalue("memcached_address"))
        cached = MemcachedStore(mc, key_prefix=f"codec-{new_id()[:8]}_", **codec)
        yield cached
        await cached.clear()
        await mc.close()
    elif name in ("sqlite", "file"):
        blocking: Store
        if name == "sqlite":
            blocking = SQLiteStore(tmp_path / "codec.sqlite3", **codec)
        else:
            blocking = FileStore(tmp_path / "codec-files", **codec)
        yield blocking
        await blocking.close()
    elif name == "cookie":
        yield EncryptedCookieStore(Fernet.generate_key(), **codec)
    elif name == "nacl":
        yield NaClCookieStore(os.urandom(32), **codec)
    else:
        yield MemoryStore(**codec)


@dataclass
class Coded:
    name: str
    store: Store
    encoder: Switch
    decoder: Switch


@pytest.fixture(params=STORES)
async def coded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Coded]:
    """Every store, with the datetime pair (each side a Switch). List it before make_client:
    the app stops before the Redis client it shares is closed."""
    encoder, decoder = Switch(encode), Switch(decode)
    stores = open_store(request.param, request, tmp_path, encoder=encoder, decoder=decoder)
    yield Coded(request.param, await anext(stores), encoder, decoder)
    await anext(stores, None)


def described(session: Any) -> dict[str, Any]:
    """A session's data as JSON, each datetime as ["datetime", iso] so its type shows."""
    return {
        key: ["datetime", value.isoformat()] if isinstance(value, datetime) else value
        for key, value in session.items()
    }


async def stamp(request: web.Request) -> web.Response:
    """Put WHEN under ?key=, and describe the session."""
    session = await get_session(request)
    session[request.query["key"]] = WHEN
    return web.json_response(described(session))


async def show(request: web.Request) -> web.Response:
    session = await get_session(request)
    return web.json_response({"new": session.new, "data": described(session)})


def ours(make_client: MakeClient, store: Store, *routes: tuple[str, str, Any]) -> Any:
    return make_client(("GET", "/stamp", stamp), ("GET", "/show", show), *routes, store=store)


STAMPED = ["datetime", WHEN.isoformat()]


# -- round trips through a real server --------------------------------------------------------


async def test_datetimes_round_trip_on_every_store(coded: Coded, make_client: MakeClient) -> None:
    client = await ours(make_client, coded.store)
    resp = await client.get("/stamp", params={"key": "first"})
    assert await resp.json() == {"first": STAMPED}
    # A second request: the store loads through the decoder and merges into what it holds.
    resp = await client.get("/stamp", params={"key": "second"})
    assert await resp.json() == {"first": STAMPED, "second": STAMPED}
    resp = await client.get("/show")
    assert await resp.json() == {"new": False, "data": {"first": STAMPED, "second": STAMPED}}


async def test_default_codec_still_refuses_datetimes(make_client: MakeClient) -> None:
    """Without a pair nothing changes: a datetime is a SerializationError, so a 500."""
    client = await ours(make_client, MemoryStore())
    assert (await client.get("/stamp", params={"key": "when"})).status == 500


async def test_memory_store_hands_out_what_the_pair_gives(make_client: MakeClient) -> None:
    """MemoryStore keeps the encoder's text: a tuple comes back as the decoder's list, a
    datetime as a datetime, and mutating what a request read changes nothing stored."""

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["pair"] = (1, WHEN)
        return web.Response()

    async def mutate(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["pair"].append("not saved")  # in place: the session does not know
        return web.json_response([type(v).__name__ for v in session["pair"]])

    store = MemoryStore(encoder=encode, decoder=decode)
    client = await make_client(("GET", "/write", write), ("GET", "/mutate", mutate), store=store)
    await client.get("/write")
    assert await (await client.get("/mutate")).json() == ["int", "datetime", "str"]
    assert await (await client.get("/mutate")).json() == ["int", "datetime", "str"]
    record = await store.load(session_cookie(client))
    assert record is not None
    assert record.data == {"pair": [1, WHEN]}


@pytest.mark.parametrize("name", STORES)
async def test_an_encoder_alone_keeps_the_json_decoder(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, make_client: MakeClient
) -> None:
    """aiohttp-session's idiom, json.dumps(default=str): datetimes are written as text and
    read back as text, by our JSON decoder (either side may be given alone)."""
    stores = open_store(name, request, tmp_path, encoder=functools.partial(json.dumps, default=str))
    client = await ours(make_client, await anext(stores))
    await client.get("/stamp", params={"key": "when"})
    resp = await client.get("/show")
    assert (await resp.json())["data"] == {"when": str(WHEN)}
    await client.close()
    await anext(stores, None)


async def test_a_decoder_alone_reads_our_json(make_client: MakeClient) -> None:
    client = await ours(make_client, MemoryStore(decoder=json.loads))
    await client.get("/count")
    await client.get("/count")
    assert await (await client.get("/show")).json() == {"new": False, "data": {"n": 2}}


# -- a decoder that fails: a corrupt record, a fresh session, never a 500 ----------------------

_DEEP: list[Any] = []
for _ in range(MAX_DEPTH + 5):
    _DEEP = [_DEEP]
_CIRCULAR: list[Any] = []
_CIRCULAR.append(_CIRCULAR)
NOW = int(time.time())

DECODER_FAILURES: dict[str, Callable[[Any], Any]] = {
    "raises ValueError": raising(ValueError("bad text")),
    "raises KeyError": raising(KeyError("$dt")),
    "raises RecursionError": raising(RecursionError()),
    "raises ZeroDivisionError": raising(ZeroDivisionError()),
    "returns None": returning(None),
    "returns a list": returning([NOW, {}]),
    "returns text": returning('{"created": 1, "session": {}}'),
    "returns an empty dict": returning({}),
    "returns no created time": returning({"session": {"n": 5}}),
    "returns a created time that is text": returning({"created": "soon", "session": {}}),
    "returns data that is a list": returning({"created": NOW, "session": [1]}),
    "returns data with keys that are not str": returning({"created": NOW, "session": {1: 2}}),
    "returns data nested too deep": returning({"created": NOW, "session": {"x": _DEEP}}),
    "returns circular data": returning({"created": NOW, "session": {"x": _CIRCULAR}}),
    "returns a max_age of 0": returning({"created": NOW, "session": {}, "max_age": 0}),
    "returns a time before 1970": returning({"created": NOW, "session": {}, "accessed": -1}),
}


@pytest.mark.parametrize("failure", DECODER_FAILURES.values(), ids=DECODER_FAILURES.keys())
async def test_a_failing_decoder_gives_a_fresh_session(
    coded: Coded,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    failure: Callable[[Any], Any],
) -> None:
    client = await ours(make_client, coded.store)
    assert await (await client.get("/count")).json() == {"n": 1}
    cookie = session_cookie(client)
    coded.decoder.instead = failure
    caplog.clear()
    with caplog.at_level(logging.WARNING, "aio_sessions"):
        resp = await send_cookie(client, "/count", cookie)
    assert resp.status == 200
    assert await resp.json() == {"n": 1}  # a fresh session
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


_KEYS = st.text(max_size=5).filter(lambda key: key != "user")  # user_key takes str or int only
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.datetimes(timezones=st.none() | st.just(timezone.utc))
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)
_TIMES = st.just(NOW) | st.floats(min_value=NOW - 60, max_value=NOW + 60) | _VALUES
_RECORDS = st.fixed_dictionaries(
    {"created": _TIMES, "session": st.dictionaries(_KEYS, _VALUES, max_size=3) | _VALUES},
    optional={
        "accessed": _TIMES,
        "max_age": st.integers(min_value=-5, max_value=10**9) | _VALUES,
        "id": st.just(new_id()) | st.text(max_size=8),
        "expires": st.just(NOW + 3600) | _VALUES,
    },
)
_ERRORS = st.sampled_from(
    [ValueError("x"), TypeError("x"), KeyError("x"), RecursionError(), OverflowError()]
)


@pytest.fixture
async def written(coded: Coded, make_client: MakeClient) -> tuple[Coded, Client]:
    """One server per store for all the examples; GET /write writes a key and says if the
    session is new."""

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["seen"] = True
        return web.json_response({"new": session.new})

    return coded, await ours(make_client, coded.store, ("GET", "/write", write))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(returned=_RECORDS | _VALUES | _ERRORS)
async def test_whatever_the_decoder_does_is_never_a_500(
    written: tuple[Coded, Client], caplog: pytest.LogCaptureFixture, returned: Any
) -> None:
    coded, client = written
    coded.decoder.instead = None
    resp = await send_cookie(client, "/count", "")  # a new session, written by the real pair
    cookie = resp.cookies["AIOHTTP_SESSION"].value
    if isinstance(returned, BaseException):
        coded.decoder.instead = raising(returned)
    else:
        coded.decoder.instead = returning(returned)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "aio_sessions"):
        resp = await send_cookie(client, "/write", cookie)
    assert resp.status == 200
    new = (await resp.json())["new"]
    warned = any(r.levelno >= logging.WARNING for r in caplog.records)
    event(f"new={new} warned={warned}")
    assert new or not warned  # a record called corrupt is never used
    if not isinstance(returned, dict):
        assert new
        assert warned


# -- an encoder that fails: a SerializationError at save, nothing stored changes ----------------


ENCODER_FAILURES: dict[str, tuple[Callable[[Any], Any] | None, str]] = {
    "refuses one value": (None, "cannot serialise session key 'bad': cannot store a set"),
    "returns bytes": (lambda doc: encode(doc).encode(), "the encoder returned bytes, not str"),
    "returns None": (returning(None), "the encoder returned NoneType, not str"),
    "raises on everything": (raising(RuntimeError("down")), "cannot serialise the session: down"),
    "writes a lone surrogate": (returning('{"x": "\ud800"}'), "lone surrogate"),
}


@pytest.mark.parametrize(
    ("failure", "message"), ENCODER_FAILURES.values(), ids=ENCODER_FAILURES.keys()
)
async def test_a_failing_encoder_is_a_serialization_error(
    coded: Coded, make_client: MakeClient, failure: Callable[[Any], Any] | None, message: str
) -> None:
    async def save(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["fine"] = 1
        if failure is None:
            session["bad"] = {1, 2}  # a set: the datetime pair refuses it
        coded.encoder.instead = failure
        try:
            await session.save()
        except SerializationError as exc:
            session.pop("bad", None)  # and the encoder works again: the commit succeeds
            return web.Response(text=str(exc))
        finally:
            coded.encoder.instead = None
        return web.Response(text="saved?")

    client = await ours(make_client, coded.store, ("GET", "/save", save))
    await client.get("/stamp", params={"key": "when"})
    resp = await client.get("/save")
    assert resp.status == 200
    assert message in await resp.text()
    resp = await client.get("/show")
    assert await resp.json() == {"new": False, "data": {"when": STAMPED, "fine": 1}}


@pytest.mark.parametrize(
    "data",
    [{"deep": _DEEP}, {"loop": _CIRCULAR}, {"deep in a dict": {"x": _DEEP}}],
    ids=["deep list", "circular", "deep in a dict"],
)
async def test_data_too_deep_for_the_pair_is_refused_on_save(
    coded: Coded, data: dict[str, Any]
) -> None:
    """The JSON codec's depth limit holds with a pair too (and circular data is caught
    before the encoder recurses into it)."""
    record = SessionRecord(new_id(), data, NOW, float(NOW))
    with pytest.raises(SerializationError, match=f"nested deeper than {MAX_DEPTH} levels") as e:
        await coded.store.save(record, None, 60)
    assert e.value.key == next(iter(data))


@settings(max_examples=60, deadline=None)
@given(
    failure=st.sampled_from([ValueError("x"), TypeError("x"), OSError(), MemoryError()]).map(
        raising
    )
    | (st.none() | st.integers() | st.binary() | st.lists(st.text()) | st.just(b"{}")).map(
        returning
    )
)
async def test_any_encoder_failure_is_a_serialization_error(failure: Callable[[Any], Any]) -> None:
    encoder = Switch(encode)
    store = MemoryStore(encoder=encoder, decoder=decode)
    sid = await store.save(SessionRecord(new_id(), {"n": 1}, NOW), None, 60)
    assert sid is not None
    encoder.instead = failure
    with pytest.raises(SerializationError):
        await store.save(SessionRecord(sid, {"n": 2}, NOW), None, 60)
    stored = await store.load(sid)
    assert stored is not None
    assert stored.data == {"n": 1}


# -- the constructors check the pair at once ---------------------------------------------------

CONSTRUCTORS: dict[str, Callable[..., Store]] = {
    "memory": MemoryStore,
    "redis": lambda **codec: RedisStore(Redis(), **codec),
    "redis-url": lambda **codec: RedisStore.from_url("redis://127.0.0.1:1", **codec),
    "memcached": lambda **codec: MemcachedStore(aiomcache.Client("127.0.0.1", 1), **codec),
    "sqlite": lambda **codec: SQLiteStore("never-opened.sqlite3", **codec),
    "file": lambda **codec: FileStore("never-made", **codec),
    "cookie": lambda **codec: EncryptedCookieStore(Fernet.generate_key(), **codec),
    "nacl": lambda **codec: NaClCookieStore(os.urandom(32), **codec),
}

BAD_PAIRS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"encoder": "json"}, TypeError, "encoder='json' (str): expected a callable"),
    ({"decoder": 42}, TypeError, "decoder=42 (int): expected a callable"),
    ({"encoder": json.JSONEncoder}, TypeError, "encoder=JSONEncoder().encode"),
    ({"decoder": json.JSONDecoder}, TypeError, "decoder=JSONDecoder().decode"),
    ({"encoder": lambda doc: encode(doc).encode()}, TypeError, "returned bytes, not str"),
    ({"encoder": json.loads, "decoder": json.dumps}, TypeError, "encoder=<function loads"),
    ({"decoder": functools.partial(json.loads, parse_float=str)}, TypeError, "accessed time"),
    (
        {"encoder": encode, "decoder": returning({"created": NOW, "session": {}})},
        ValueError,
        "do not read back what they write",
    ),
]


@pytest.mark.parametrize("make", CONSTRUCTORS.values(), ids=CONSTRUCTORS.keys())
@pytest.mark.parametrize(
    ("codec", "error", "message"),
    BAD_PAIRS,
    ids=[
        "not-callable",
        "not-callable-decoder",
        "encoder-class",
        "decoder-class",
        "bytes",
        "swapped",
        "floats-as-text",
        "cannot-read-back",
    ],
)
def test_a_bad_pair_fails_in_the_constructor(
    make: Callable[..., Store], codec: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        make(**codec)
    assert message in str(raised.value)


# -- both ways with aiohttp-session's own storages ---------------------------------------------


async def their_client(aiohttp_client: Any, storage: Any) -> Client:
    """A real aiohttp-session app: /stamp?key= puts WHEN under key, / describes the session."""
    import aiohttp_session

    async def their_stamp(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        session[request.query["key"]] = WHEN
        return web.json_response(described(session))

    async def their_show(request: web.Request) -> web.Response:
        return web.json_response(described(await aiohttp_session.get_session(request)))

    app = web.Application()
    aiohttp_session.setup(app, storage)
    app.router.add_get("/stamp", their_stamp)
    app.router.add_get("/", their_show)
    client: Client = await aiohttp_client(app)
    return client


@dataclass
class Interop:
    """aiohttp-session's storage and ours on one backend (or one key), with the same pair."""

    theirs: Any
    ours: Store
    #: The text the backend keeps for a cookie value: the item, or the sealed plaintext.
    stored: Callable[[str], Awaitable[str]]


def _opened(cookie: str, key: bytes, kind: str) -> str:
    if kind == "cookie":
        return Fernet(base64.urlsafe_b64encode(key)).decrypt(cookie.encode()).decode()
    return SecretBox(key).decrypt(cookie.encode(), encoder=Base64Encoder).decode()


@pytest.fixture(params=["redis", "memcached", "cookie", "nacl"])
async def interop(request: pytest.FixtureRequest) -> AsyncIterator[Interop]:
    """Each storage of aiohttp-session that has our counterpart, both given the datetime
    pair. List it before make_client: the apps stop before the client they share closes."""
    pair: dict[str, Any] = {"encoder": encode, "decoder": decode}
    seen: list[bytes] = []  # server-side keys to delete afterwards
    if request.param == "redis":
        from aiohttp_session.redis_storage import RedisStorage

        redis = Redis.from_url(request.getfixturevalue("redis_url"))

        async def in_redis(cookie: str) -> str:
            seen.append(f"AIOHTTP_SESSION_{cookie}".encode())
            raw = await redis.get(seen[-1])
            return raw.decode() if isinstance(raw, bytes) else str(raw)

        yield Interop(RedisStorage(redis, **pair), RedisStore(redis, **pair), in_redis)
        if seen:
            await redis.delete(*seen)
        await redis.aclose()
    elif request.param == "memcached":
        from aiohttp_session.memcached_storage import MemcachedStorage

        mc = aiomcache.Client(*request.getfixturevalue("memcached_address"))

        async def in_memcached(cookie: str) -> str:
            seen.append(f"AIOHTTP_SESSION_{cookie}".encode())
            return (await mc.get(seen[-1]) or b"").decode()

        yield Interop(MemcachedStorage(mc, **pair), MemcachedStore(mc, **pair), in_memcached)
        for key in seen:
            await mc.delete(key)
        await mc.close()
    else:
        from aiohttp_session.cookie_storage import EncryptedCookieStorage
        from aiohttp_session.nacl_storage import NaClCookieStorage

        key, kind = os.urandom(32), request.param  # aiohttp-session's raw-bytes key form

        async def sealed_in(cookie: str) -> str:
            return _opened(cookie, key, kind)

        if kind == "cookie":
            yield Interop(
                EncryptedCookieStorage(key, **pair), EncryptedCookieStore(key, **pair), sealed_in
            )
        else:
            yield Interop(NaClCookieStorage(key, **pair), NaClCookieStore(key, **pair), sealed_in)


def cookie_after(resp: Any, sent: str) -> str:
    """The session cookie a response set, else the one sent (a server-side id kept as is)."""
    morsel = resp.cookies.get("AIOHTTP_SESSION")
    return sent if morsel is None else str(morsel.value)


TAGGED = '{"$dt": "' + WHEN.isoformat() + '"}'


@AIOHTTP_SESSION_WARNS
async def test_sessions_interoperate_with_aiohttp_session_given_the_same_pair(
    interop: Interop, aiohttp_client: Any, make_client: MakeClient
) -> None:
    """Redis, Memcached, Fernet and NaCl cookies: a session with datetimes written by either
    library reads and writes in the other, and both keep the pair's text."""
    theirs = await their_client(aiohttp_client, interop.theirs)
    us = await ours(make_client, interop.ours)

    # They write, we read and write, they read.
    await theirs.get("/stamp", params={"key": "theirs"})
    cookie = session_cookie(theirs)
    assert TAGGED in await interop.stored(cookie)
    resp = await send_cookie(us, "/stamp?key=ours", cookie)
    assert await resp.json() == {"theirs": STAMPED, "ours": STAMPED}
    cookie = cookie_after(resp, cookie)
    assert (await interop.stored(cookie)).count(TAGGED) == 2
    resp = await theirs.get("/", cookies={"AIOHTTP_SESSION": cookie})
    assert await resp.json() == {"theirs": STAMPED, "ours": STAMPED}

    # We write first, they read and write, we read.
    await us.get("/stamp", params={"key": "first"})
    cookie = session_cookie(us)
    assert TAGGED in await interop.stored(cookie)
    resp = await send_cookie(theirs, "/stamp?key=then", cookie)
    assert await resp.json() == {"first": STAMPED, "then": STAMPED}
    cookie = cookie_after(resp, cookie)
    resp = await send_cookie(us, "/show", cookie)
    assert await resp.json() == {"new": False, "data": {"first": STAMPED, "then": STAMPED}}
