"""SQLiteStore and FileStore: sessions survive restarts, processes share them safely."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aio_sessions import FileStore, SQLiteStore, Store
from aio_sessions._ids import new_id
from aio_sessions.stores import Changes, SessionRecord

from .conftest import MakeClient, replay, session_cookie

T = TypeVar("T")

STORES = {
    "sqlite": lambda root: SQLiteStore(root / "s.sqlite3"),
    "file": lambda root: FileStore(root / "s"),
}


@pytest.fixture(params=list(STORES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return lambda: STORES[request.param](tmp_path)


async def test_sessions_survive_a_restart(make_client: MakeClient, make_store: Any) -> None:
    first = await make_client(store=make_store())
    await first.get("/count")
    sid = session_cookie(first)
    await first.close()  # app cleanup closes the store
    second = await make_client(store=make_store())
    assert (await replay(second, "/read", sid))["data"] == {"n": 1}


def _writer(kind: str, root: str, sid: str, worker: int, n: int) -> None:
    async def run() -> None:
        store: Store = STORES[kind](Path(root))
        for i in range(n):
            record = await store.load(sid)
            assert record is not None
            key = f"w{worker}-{i}"
            record.data[key] = i
            record.accessed = time.time()
            assert await store.save(record, Changes({key: i}), 60) == sid
        await store.close()

    asyncio.run(run())


@pytest.mark.parametrize("kind", list(STORES))
async def test_processes_keep_each_others_writes(kind: str, tmp_path: Path) -> None:
    store = STORES[kind](tmp_path)
    now = time.time()
    sid = new_id()
    await store.save(SessionRecord(sid, {}, int(now), now), None, 60)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(kind, str(tmp_path), sid, worker, 40))
        for worker in range(3)
    ]
    for proc in procs:
        proc.start()
    await asyncio.get_running_loop().run_in_executor(None, lambda: [p.join(60) for p in procs])
    assert [p.exitcode for p in procs] == [0, 0, 0]
    record = await store.load(sid)
    assert record is not None
    assert len(record.data) == 120
    await store.close()


async def test_file_names_come_from_ids_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    for evil in ("../escape", "/etc/passwd", "a/b" * 20, "..", "x" * 65, "é" * 40):
        assert await store.load(evil) is None
        assert not await store.delete(evil)
    now = time.time()
    rec = SessionRecord(new_id(), {"a": 1}, int(now), now)
    await store.save(rec, None, 60)
    assert {p.name for p in (tmp_path / "s").iterdir()} == {".lock", f"{rec.id}.json", "users"}
    assert not (tmp_path / "escape").exists()
    await store.close()


async def test_expired_files_and_rows_are_swept(tmp_path: Path) -> None:
    for store in (
        SQLiteStore(tmp_path / "x.sqlite3", sweep_interval=0.1),
        FileStore(tmp_path / "f", sweep_interval=0.1),
    ):
        now = time.time()
        for _ in range(20):
            await store.save(SessionRecord(new_id(), {}, int(now), now), None, 0.05)
        await asyncio.sleep(0.2)
        await store.save(SessionRecord(new_id(), {}, int(now), now), None, 60)
        assert await store.count() == 1
        if isinstance(store, FileStore):
            assert len(list((tmp_path / "f").glob("*.json"))) == 1
        await store.close()


@pytest.mark.parametrize("kind", list(STORES))
async def test_unusable_storage_gives_503_then_recovers(
    make_client: MakeClient, tmp_path: Path, kind: str
) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the store wants a directory")
    root = blocker / "inner"
    store = SQLiteStore(root / "s.sqlite3") if kind == "sqlite" else FileStore(root)
    client = await make_client(store=store)
    resp = await client.get("/count")
    assert resp.status == 503
    blocker.unlink()
    root.mkdir(parents=True)
    assert await (await client.get("/count")).json() == {"n": 1}


def _hold_write_lock(path: str, seconds: float, locked: Any) -> None:
    """Another process: take SQLite's write lock on ``path`` and keep it for ``seconds``."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    db.execute("ROLLBACK")
    db.close()


@contextlib.asynccontextmanager
async def write_lock_held(path: Path, seconds: float) -> AsyncIterator[None]:
    """Another process holds SQLite's write lock on ``path`` for ``seconds`` from the start
    of the block; at its end the process has let go (or is killed)."""
    context = multiprocessing.get_context("spawn")
    locked = context.Event()
    holder = context.Process(target=_hold_write_lock, args=(str(path), seconds, locked))
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        yield
        await asyncio.to_thread(holder.join, 10)
    finally:
        holder.kill()


async def test_a_write_lock_held_elsewhere_is_waited_for_then_a_503(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A second process holds the write lock for 1.5 s. With ``lock_timeout=0.5`` writes
    give up after half a second with a 503, never a 500; reads still answer (WAL); once the
    lock is gone every write answers 200, and each write answered 200 is in the file."""
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, lock_timeout=0.5)
    client = await make_client(store=store)
    assert await (await client.get("/count")).json() == {"n": 1}
    acknowledged = 1
    async with write_lock_held(path, 1.5):
        started = time.monotonic()
        resp = await client.get("/count")
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert 0.5 <= time.monotonic() - started < 1.4
        read = await client.get("/read")
        assert read.status == 200  # on the event loop's connection, which WAL lets read
    for _ in range(3):
        resp = await client.get("/count")
        assert resp.status == 200
        acknowledged += 1
    assert (await resp.json())["n"] == acknowledged  # the 503 wrote nothing, nothing lost
    await store.close()
    reopened = SQLiteStore(path)
    [record_id] = [r for r in await _ids(reopened)]
    stored = await reopened.load(record_id)
    assert stored is not None
    assert stored.data["n"] == acknowledged
    await reopened.close()


async def _ids(store: SQLiteStore) -> list[str]:
    """Every session id in the file (the test's own look, outside the store's API)."""
    import sqlite3

    with sqlite3.connect(store.path) as db:
        return [row[0] for row in db.execute("SELECT id FROM sessions")]


def test_lock_timeout_is_checked() -> None:
    for bad in (0, -1, float("inf"), "10", None):
        with pytest.raises((TypeError, ValueError), match="lock_timeout"):
            SQLiteStore("s.sqlite3", lock_timeout=bad)


def _at_once(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in one step: it must finish on the event loop, never waiting for the
    store's worker thread (which would suspend it)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise AssertionError("it waited for the worker thread")


def _record(sid: str | None = None) -> SessionRecord:
    now = time.time()
    return SessionRecord(sid or new_id(), {}, int(now), now)


async def test_loads_and_merges_run_on_the_event_loop(tmp_path: Path) -> None:
    """No thread hop per request: loads, creates, merges and touches finish without
    suspending (the sweep and checkpoints run beside them, in the worker thread)."""
    store = SQLiteStore(tmp_path / "s.sqlite3")
    first = _record()
    assert _at_once(store.load(first.id)) is None
    assert await store.save(first, None, 60) == first.id
    second = _record()
    assert _at_once(store.save(second, None, 60)) == second.id
    first.data["a"] = 1
    assert _at_once(store.save(first, Changes({"a": 1}, max_age=True), 60)) == first.id
    assert _at_once(store.touch(second, 60)) == second.id
    loaded = _at_once(store.load(first.id))
    assert loaded is not None
    assert loaded.data == {"a": 1}
    assert await store.count() == 2
    await store.close()


async def test_reads_answer_at_once_while_another_process_writes(tmp_path: Path) -> None:
    """Another process holds the write lock for 1 s: loads still answer on the event loop,
    even while a merge waits for the lock; the merge then succeeds."""
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, lock_timeout=5)
    record = _record()
    await store.save(record, None, 60)
    async with write_lock_held(path, 1.0):
        started = time.monotonic()
        record.data["k"] = 1
        write = asyncio.create_task(store.save(record, Changes({"k": 1}), 60))
        await asyncio.sleep(0.2)
        assert not write.done()  # waiting for the lock, in pauses on the loop
        loaded = _at_once(store.load(record.id))
        assert loaded is not None
        assert loaded.data == {}
        assert await write == record.id
        assert time.monotonic() - started >= 0.5
    loaded = _at_once(store.load(record.id))
    assert loaded is not None
    assert loaded.data == {"k": 1}
    await store.close()


async def test_two_connections_merging_one_session_lose_nothing(tmp_path: Path) -> None:
    """Two stores on one file (two connections each, as two processes would have) merge
    different keys of one session concurrently. A tiny ``sweep_interval`` keeps both
    worker threads sweeping, so merges on the loop also meet locks held by the other
    store and by their own store's thread, and wait for them; every key is kept."""
    path = tmp_path / "s.sqlite3"
    stores = [SQLiteStore(path, sweep_interval=0.001) for _ in range(2)]
    sid = new_id()
    await stores[0].save(_record(sid), None, 60)

    async def writer(n: int, store: SQLiteStore) -> None:
        for i in range(60):
            key = f"s{n}-{i}"
            record = await store.load(sid)
            assert record is not None
            record.data[key] = i
            assert await store.save(record, Changes({key: i}), 60) == sid

    await asyncio.gather(*(writer(n, stores[n % 2]) for n in range(6)))
    for store in stores:
        loaded = await store.load(sid)
        assert loaded is not None
        assert len(loaded.data) == 360
        await store.close()


async def test_checkpoints_keep_the_wal_bounded(tmp_path: Path) -> None:
    """Commits on the event loop never checkpoint; the worker thread does, every 250, so
    the write-ahead log of 3000 merges of small sessions stays near SQLite's own
    1000-page threshold (without checkpoints it would hold all of them: about 9000 pages).
    Each merge lets the loop run other tasks, as a server does between requests."""
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    records = [_record() for _ in range(20)]
    for record in records:
        await store.save(record, None, 60)
    for i in range(3000):
        record = records[i % 20]
        changes = {"n": i, "pad": "v" * 200}
        record.data.update(changes)
        await store.save(record, Changes(changes), 60)
        await asyncio.sleep(0)
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size < 1500 * 4096
    await store.close()
