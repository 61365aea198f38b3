"""The memory store expires, sweeps and caps its entries, and hands out copies."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from aio_sessions import MemoryStore, SerializationError, setup
from aio_sessions._ids import new_id
from aio_sessions.stores import Changes, SessionRecord
from aio_sessions.stores.memory import DEFAULT_MAX_SESSIONS


def record(**data: object) -> SessionRecord:
    now = time.time()
    return SessionRecord(new_id(), dict(data), int(now), now)


async def test_entries_expire_by_ttl() -> None:
    store = MemoryStore()
    rec = record(a=1)
    assert await store.save(rec, None, 0.1) == rec.id
    assert (await store.load(rec.id)) is not None
    await asyncio.sleep(0.15)
    assert await store.load(rec.id) is None
    assert await store.count() == 0


async def test_abandoned_sessions_are_swept() -> None:
    store = MemoryStore(sweep_interval=0.1)
    for _ in range(1000):
        await store.save(record(), None, 0.05)
    await asyncio.sleep(0.15)
    await store.save(record(), None, 60)  # a write triggers the sweep
    assert len(store._items) == 1


async def test_max_sessions_drops_least_recently_written() -> None:
    store = MemoryStore(max_sessions=3)
    recs = [record(i=i) for i in range(4)]
    for rec in recs[:3]:
        await store.save(rec, None, 60)
    await store.save(recs[0], Changes({"i": 0}), 60)  # rewritten: now the freshest
    await store.save(recs[3], None, 60)
    assert await store.load(recs[1].id) is None
    assert all([await store.load(r.id) for r in (recs[0], recs[2], recs[3])])


async def test_a_load_counts_as_use_for_the_cap() -> None:
    store = MemoryStore(max_sessions=3)
    recs = [record(i=i) for i in range(4)]
    for rec in recs[:3]:
        await store.save(rec, None, 60)
    assert await store.load(recs[0].id) is not None  # read: now the most recently used
    await store.save(recs[3], None, 60)
    assert await store.load(recs[1].id) is None
    assert all([await store.load(r.id) for r in (recs[0], recs[2], recs[3])])


async def test_abandoned_logins_stay_within_the_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logins never seen again (each under its own user) fill the store up to its cap and
    no further, the per-user index with it; a session in use stays, and the first drop is
    logged once."""
    app = web.Application()
    manager = setup(app, MemoryStore(max_sessions=1000))
    live = await manager.create({"user": "live"})
    for i in range(20_000):
        await manager.create({"user": f"visitor{i}"})
        if i % 100 == 0:
            assert await manager.get(live) == {"user": "live"}
    assert await manager.count() == 1000
    assert await manager.user_session_ids("live") == [live]
    assert await manager.user_session_ids("visitor0") == []  # dropped, and unlinked
    assert len(await manager.user_session_ids("visitor19999")) == 1
    store = manager.store
    assert isinstance(store, MemoryStore)
    assert len(store._users) <= 2 * 1000 + 1  # the index is pruned as sessions are dropped
    drops = [r for r in caplog.records if "max_sessions=1000" in r.getMessage()]
    assert len(drops) == 1


def test_the_default_cap_is_documented() -> None:
    assert MemoryStore()._max_sessions == 100_000 == DEFAULT_MAX_SESSIONS
    assert MemoryStore(max_sessions=None)._max_sessions is None


async def test_save_of_missing_record_is_refused() -> None:
    store = MemoryStore()
    assert await store.save(record(), Changes({"a": 1}), 60) is None
    assert await store.touch(record(), 60) is None
    assert await store.count() == 0


async def test_loaded_data_is_a_copy_shaped_like_json() -> None:
    store = MemoryStore()
    rec = record(cart=[{"sku": "a"}], pair=(1, 2), counts={7: "x"})
    sid = await store.save(rec, None, 60)
    assert sid is not None
    rec.data["cart"].append("not saved")  # the caller's object is not what is stored
    first = await store.load(sid)
    assert first is not None
    assert first.data == {"cart": [{"sku": "a"}], "pair": [1, 2], "counts": {"7": "x"}}
    first.data["cart"][0]["sku"] = "changed in place"
    again = await store.load(sid)
    assert again is not None
    assert again.data["cart"] == [{"sku": "a"}]


async def test_a_refused_merge_changes_nothing() -> None:
    store = MemoryStore()
    rec = record(a=1, b=2)
    sid = await store.save(rec, None, 60)
    assert sid is not None
    with pytest.raises(SerializationError):
        await store.save(rec, Changes({"c": object()}, frozenset({"a"})), 60)
    stored = await store.load(sid)
    assert stored is not None
    assert stored.data == {"a": 1, "b": 2}


async def test_clear() -> None:
    store = MemoryStore()
    await store.save(record(), None, 60)
    await store.clear()
    assert await store.count() == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        MemoryStore(max_sessions=0)
    with pytest.raises(ValueError, match="sweep_interval"):
        MemoryStore(sweep_interval=0)
