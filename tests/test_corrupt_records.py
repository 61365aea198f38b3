"""Whatever a store holds that is not a valid record loads as no record: a fresh session and
a warning, never a 500, on every store. And what a store writes always loads back."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aio_sessions import SerializationError, get_session
from aio_sessions._ids import new_id, valid_id
from aio_sessions.stores import SessionRecord
from aio_sessions.stores._json import MAX_DEPTH, dump_record
from aio_sessions.stores._record import LATEST_EPOCH, MAX_AGE_LIMIT, is_epoch

from ._raw_kits import KIT_NAMES, RawKit, open_kit
from .conftest import MakeClient, send_cookie, session_cookie

#: Stored documents stay live for this long: FileStore reads ``expires`` from the document.
LIVE = time.time() + 3600


@pytest.fixture(params=KIT_NAMES)
async def raw_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RawKit]:
    """Every store."""
    kits = open_kit(request.param, request, tmp_path)
    yield await anext(kits)
    await anext(kits, None)


@pytest.fixture(params=[name for name in KIT_NAMES if name != "memory"])
async def plantable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RawKit]:
    """Every store that keeps bytes somewhere a disk, a person or a program could damage."""
    kits = open_kit(request.param, request, tmp_path)
    yield await anext(kits)
    await anext(kits, None)


@pytest.fixture(params=["redis", "redis-cluster", "sqlite"])
async def other_kind(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RawKit]:
    """Every store that can hold something other than a string where a record should be."""
    kits = open_kit(request.param, request, tmp_path)
    yield await anext(kits)
    await anext(kits, None)


def record_text(session: str = "{}", **fields: str) -> bytes:
    """A record whose fields are JSON text as given, live for every store."""
    now = int(time.time())
    parts = {"created": str(now), "accessed": f"{now}.5", "expires": str(LIVE), **fields}
    body = ", ".join(f'"{name}": {value}' for name, value in parts.items())
    return f'{{{body}, "session": {session}}}'.encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Each kind of record that is not one, as a store could hold it.
CORRUPT: dict[str, bytes] = {
    # Numbers that are not numbers: the stdlib reads them, so they must be refused on purpose.
    "Infinity created": record_text(created="Infinity"),
    "-Infinity accessed": record_text(accessed="-Infinity"),
    "NaN max_age": record_text(max_age="NaN"),
    "NaN in the data": record_text('{"x": NaN}'),
    "overflowing float created": record_text(created="1e400"),
    "overflowing float in the data": record_text('{"x": [1, -1e999]}'),
    # Numbers out of range.
    "negative created": record_text(created="-5"),
    "created after the year 9999": record_text(created=str(LATEST_EPOCH + 1)),
    "accessed after the year 9999": record_text(accessed="1e300"),
    "max_age zero": record_text(max_age="0"),
    "max_age a float": record_text(max_age="3600.0"),
    "max_age over ten years": record_text(max_age=str(MAX_AGE_LIMIT + 1)),
    "max_age a bool": record_text(max_age="true"),
    "created past the int-str limit": record_text(created="9" * 5000),
    "integer in the data past the int-str limit": record_text('{"n": -' + "1" * 5000 + "}"),
    # Nesting past the limit, and far past any stack.
    "data nested past the limit": record_text('{"x": ' + nested(MAX_DEPTH) + "}"),
    "data nested past the stack": record_text('{"x": ' + "[" * 100_000 + "}"),
    "arrays nested past the stack": b"[" * 100_000,
    "objects nested past the stack": b'{"a":' * 100_000,
    # Wrong types.
    "created a string": record_text(created='"soon"'),
    "created missing": b'{"session": {}, "expires": %d}' % LIVE,
    "session a list": record_text("[]"),
    "session null": record_text("null"),
    "a list": b"[1, 2]",
    "a string": b'"text"',
    "null": b"null",
    # Bytes that are not UTF-8 JSON.
    "invalid UTF-8 in a string": record_text('{"x": "?"}').replace(b"?", b"\xff\xfe"),
    "invalid UTF-8 bytes": b"\xff\xfe garbage",
    "an encoded lone surrogate": record_text('{"x": "?"}').replace(b"?", b"\xed\xa0\x80"),
    "not JSON": b"{broken",
    "truncated": record_text()[:20],
    "empty": b"",
    "NUL bytes": b"\x00" * 16,
}

# FileStore and MemcachedStore keep the expiry in the document too.
CORRUPT_EXPIRES: dict[str, bytes] = {
    f"expires {value}": record_text(expires=value)
    for value in ("NaN", "Infinity", "1e400", "true", '"later"', "null", "-1", str(2**70))
}
# A cookie store takes the id from the document.
CORRUPT_IDS: dict[str, bytes] = {
    f"id {value}": record_text(id=value) for value in ("7", '"short"', '"../' + "x" * 40 + '"')
}


def corrupt_kinds(kit: RawKit) -> dict[str, bytes]:
    extra = {
        "file": CORRUPT_EXPIRES,
        "memcached": CORRUPT_EXPIRES,
        "cookie": CORRUPT_IDS,
        "nacl": CORRUPT_IDS,
    }.get(kit.name, {})
    return {**CORRUPT, **extra}


async def count_with(client: TestClient[web.Request, web.Application], cookie: str) -> Any:
    resp = await send_cookie(client, "/count", cookie)
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- through a real server ----------------------------------------------------------------


async def test_a_valid_planted_record_loads(plantable: RawKit, make_client: MakeClient) -> None:
    """The planting works: without this, every test below could pass by never loading."""
    assert plantable.plant is not None
    client = await make_client(store=plantable.store)
    cookie = await plantable.plant(record_text('{"n": 41}'))
    assert await count_with(client, cookie) == {"n": 42}


async def test_every_kind_of_corrupt_record_gives_a_fresh_session(
    plantable: RawKit, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert plantable.plant is not None
    client = await make_client(store=plantable.store)
    for kind, raw in corrupt_kinds(plantable).items():
        cookie = await plantable.plant(raw)
        assert await plantable.store.load(cookie) is None, kind
        if len(cookie) > 4096:  # a token no browser would send: the load above must do
            continue
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="aio_sessions"):
            assert await count_with(client, cookie) == {"n": 1}, kind
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings, f"{kind}: no warning logged"


async def test_an_entry_of_another_kind_gives_a_fresh_session(
    other_kind: RawKit, make_client: MakeClient
) -> None:
    """A Redis hash, or a SQLite integer, where the record should be."""
    assert other_kind.plant_other_kind is not None
    client = await make_client(store=other_kind.store)
    cookie = await other_kind.plant_other_kind()
    assert await count_with(client, cookie) == {"n": 1}
    assert await count_with(client, cookie) == {"n": 1}


async def test_what_saved_always_loads(raw_kit: RawKit, make_client: MakeClient) -> None:
    """Deep data: stored up to the limit and read back (MemoryStore copies it recursively);
    deeper, refused at save with the key named, and the stored session kept as it was."""

    async def deep(request: web.Request) -> web.Response:
        session = await get_session(request)
        value: Any = []
        for _ in range(int(request.query["depth"]) - 1):
            value = [value]
        session["deep"] = value
        return web.Response()

    client = await make_client(("POST", "/deep", deep), store=raw_kit.store)
    await client.get("/count")
    cookie = session_cookie(client)
    # The session is an object, so the value may be one level less deep than the limit.
    assert (await client.post("/deep", params={"depth": MAX_DEPTH - 1})).status == 200
    cookie = session_cookie(client)  # a cookie store's token changes with the data
    data = (await (await send_cookie(client, "/read", cookie)).json())["data"]
    assert data["n"] == 1
    assert json.dumps(data["deep"]) == nested(MAX_DEPTH - 1)
    for depth in (MAX_DEPTH, 1000, 100_000):
        assert (await client.post("/deep", params={"depth": depth})).status == 500
        assert (await send_cookie(client, "/read", cookie)).status == 200


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1, {"x": math.nan}]], ids=repr)
async def test_non_finite_numbers_are_refused_alike(raw_kit: RawKit, value: object) -> None:
    store = raw_kit.store
    record = SessionRecord(new_id(), {"a": 1}, int(time.time()), time.time())
    token = await store.save(record, None, 60)
    assert token is not None
    bad = SessionRecord(new_id(), {"a": 1, "bad": value}, int(time.time()), time.time())
    with pytest.raises(SerializationError, match="'bad'"):
        await store.save(bad, None, 60)
    loaded = await store.load(token)
    assert loaded is not None
    assert loaded.data == {"a": 1}


# -- property-based: any bytes, any document, any Cookie header ---------------------------


def check_loaded(record: SessionRecord | None) -> None:
    """A load gives None or a record every part of the library can use, and save again."""
    if record is None:
        return
    assert isinstance(record, SessionRecord)
    assert type(record.id) is str
    assert valid_id(record.id)
    assert type(record.data) is dict
    assert type(record.created) is int
    assert is_epoch(record.created)
    assert record.accessed is None or (type(record.accessed) is float and is_epoch(record.accessed))
    assert record.max_age is None or (
        type(record.max_age) is int and 0 < record.max_age <= MAX_AGE_LIMIT
    )
    dump_record(record)  # what loads, saves


_TEXT = st.text(st.characters(exclude_categories=())) | st.sampled_from(
    ["", "\ud800", "é", "\x00", "now"]
)
_NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.sampled_from([0, -1, 1.5, LATEST_EPOCH, LATEST_EPOCH + 1, MAX_AGE_LIMIT + 1, 2**64])
    | st.floats(min_value=0, max_value=LATEST_EPOCH)
)
_VALUES = st.recursive(
    st.none() | st.booleans() | _NUMBERS | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=10,
)
_RECORDS = st.fixed_dictionaries(
    {"created": _NUMBERS | _VALUES, "session": st.dictionaries(_TEXT, _VALUES) | _VALUES},
    optional={
        "accessed": _NUMBERS | _VALUES,
        "max_age": st.integers(min_value=-5, max_value=MAX_AGE_LIMIT + 5) | _VALUES,
        "id": st.just(new_id()) | _TEXT | _VALUES,
        "expires": st.just(LIVE) | _NUMBERS | _VALUES,
    },
)
_LITERALS = st.sampled_from(["NaN", "-Infinity", "1e400", "9" * 5000, "-0", "1E+2", "[" * 5000])
_JSON_TEXT = st.from_regex(r"-?\d{1,25}(\.\d{1,20})?([eE][+-]?\d{1,4})?", fullmatch=True)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """JSON documents, most of them shaped like records, written as a store could hold them."""
    doc = draw(_RECORDS | _VALUES)
    text = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):  # a number literal the encoders never write, in a record
        literal = draw(_LITERALS | _JSON_TEXT)
        field = draw(st.sampled_from(["created", "accessed", "max_age", "expires"]))
        text = record_text(**{field: literal}).decode()
    return text.encode("utf-8", "surrogatepass")


LOADS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@LOADS
@given(raw=st.binary(max_size=300) | documents())
async def test_any_stored_bytes_load_as_a_record_or_none(plantable: RawKit, raw: bytes) -> None:
    assert plantable.plant is not None
    record = await plantable.store.load(await plantable.plant(raw))
    event("loaded" if record else "no record")  # both must happen (--hypothesis-show-statistics)
    check_loaded(record)


_NAMES = st.sampled_from(["AIOHTTP_SESSION", "aiohttp_session", "AIOHTTP_SESSION ", "x", ""])
_COOKIE_VALUES = (
    _TEXT
    | st.just(new_id())
    | st.text(st.sampled_from('"\\;, =\t%éA'), max_size=12)
    | st.text(min_size=3000, max_size=5000)
)


@st.composite
def cookie_headers(draw: st.DrawFn, session: str) -> bytes:
    """Cookie headers: pairs (the session's own among them, the name twice), or any text."""
    if draw(st.booleans()):
        text = draw(st.text(st.characters(exclude_categories=()), max_size=200))
    else:
        pairs = draw(
            st.lists(st.tuples(_NAMES, _COOKIE_VALUES | st.just(session)), min_size=1, max_size=4)
        )
        separator = draw(st.sampled_from(["; ", ";", ", ", " "]))
        text = separator.join(
            f'{name}="{value}"' if draw(st.booleans()) else f"{name}={value}"
            for name, value in pairs
        )
    raw = text.encode("utf-8", "surrogatepass")
    return raw.replace(b"\r", b"").replace(b"\n", b"")  # one header line


async def status_for(client: TestClient[web.Request, web.Application], cookie: bytes) -> int:
    """GET /count with exactly this Cookie header line, over a raw connection."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            b"GET /count HTTP/1.1\r\nHost: test\r\nCookie: "
            + cookie
            + b"\r\nConnection: close\r\n\r\n"
        )
        status_line = await asyncio.wait_for(reader.readline(), 10)
        await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


COOKIES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def counting_client(
    raw_kit: RawKit, make_client: MakeClient
) -> tuple[TestClient[web.Request, web.Application], str]:
    """One server per store for all the examples, and a real session cookie of it."""
    client = await make_client(store=raw_kit.store)
    await client.get("/count")
    return client, session_cookie(client)


@COOKIES
@given(data=st.data())
async def test_any_cookie_header_is_never_a_500(
    counting_client: tuple[TestClient[web.Request, web.Application], str], data: st.DataObject
) -> None:
    client, session = counting_client
    header = data.draw(cookie_headers(session))
    status = await status_for(client, header)
    assert status < 500
