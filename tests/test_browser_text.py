"""Any text a browser sends is stored and read back alike by every store.

``JSON.stringify`` writes a lone surrogate (half of a UTF-16 pair: a truncated emoji) as
``\\ud83d``, and ``json.loads`` turns it into a ``str`` that UTF-8 cannot encode. Stores write
it escaped in their JSON, so it reads back as itself, here and in aiohttp-session.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from aio_sessions import RedisStore, get_session
from aio_sessions._ids import new_id
from aio_sessions.stores import SessionRecord

from ._raw_kits import KIT_NAMES, RawKit, open_kit
from .conftest import MakeClient, session_cookie


@pytest.fixture(params=KIT_NAMES)
async def raw_kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RawKit]:
    """Every store."""
    kits = open_kit(request.param, request, tmp_path)
    yield await anext(kits)
    await anext(kits, None)


async def store_body(request: web.Request) -> web.Response:
    """Store every key of a JSON body in the session, as a form-saving handler would."""
    session = await get_session(request)
    session.update(await request.json())
    return web.Response()


# Bodies as a browser's JSON.stringify writes them (lone surrogates escaped, the rest as is).
BODIES = [
    '{"name": "Anna \\ud83d"}',
    '{"low first": "\\ude00\\ud83d", "alone": "\\udfff"}',
    '{"\\ud800key": ["x", "\\udbff", {"deep": "\\udc00!"}]}',
    '{"emoji": "😀", "pair": "\\ud83d\\ude00", "accents": "Zoë, Łódź", "nul": "a\\u0000b"}',
    '{"separators": "\\u2028\\u2029", "quote": "\\"\\\\", "long": "' + "é\\ud83d" * 200 + '"}',
]


async def test_text_a_browser_sends_round_trips(raw_kit: RawKit, make_client: MakeClient) -> None:
    client = await make_client(("POST", "/store", store_body), store=raw_kit.store)
    expected: dict[str, Any] = {}
    for body in BODIES:
        resp = await client.post(
            "/store", data=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200, body
        expected.update(json.loads(body))
        read = await client.get("/read")
        assert read.status == 200
        assert (await read.json())["data"] == expected


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_aiohttp_session_reads_the_escaped_text(
    redis: Redis, make_client: MakeClient
) -> None:
    """aiohttp-session's RedisStorage decodes with json.loads: the record must be UTF-8 JSON
    that reads back the same there."""
    store = RedisStore(redis, key_prefix=f"text-{new_id()[:8]}_")
    client = await make_client(("POST", "/store", store_body), store=store)
    body = '{"name": "Anna \\ud83d"}'
    await client.post("/store", data=body.encode(), headers={"Content-Type": "application/json"})
    raw = await redis.get(f"{store.key_prefix}{session_cookie(client)}")
    assert raw is not None
    assert json.loads(raw.decode("utf-8"))["session"] == {"name": "Anna \ud83d"}
    assert b"\\ud83d" in raw
    await store.clear()


def utf16(text: str) -> str:
    """``text`` as a UTF-16 reader sees it: a high and a low surrogate next to each other are
    one character. JSON cannot keep them apart (its decoders join the escaped pair), so every
    store gives this back, MemoryStore included; anything else comes back exactly."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30) | st.text(
    st.sampled_from('aé\x00"\\\u2028\ud800\udbff\udc00\udfff\U0001f600'), max_size=12
)
TEXT = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@TEXT
@given(items=st.dictionaries(_ANY_TEXT, _ANY_TEXT | st.lists(_ANY_TEXT, max_size=3), max_size=4))
async def test_any_text_round_trips_on_every_store(raw_kit: RawKit, items: dict[str, Any]) -> None:
    store = raw_kit.store
    now = time.time()
    token = await store.save(SessionRecord(new_id(), dict(items), int(now), now), None, 60)
    assert token is not None
    loaded = await store.load(token)
    assert loaded is not None
    assert loaded.data == json.loads(json.dumps(items))  # as json.loads gives it back
    written = json.dumps(items, ensure_ascii=False)
    if utf16(written) == written:  # no surrogates side by side: exactly what was saved
        assert loaded.data == items
