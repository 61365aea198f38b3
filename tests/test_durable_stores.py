"""SQLiteStore and FileStore: sessions survive restarts, processes share them safely."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from aio_sessions import FileStore, SQLiteStore, Store
from aio_sessions._ids import new_id
from aio_sessions.stores import Changes, SessionRecord

from .conftest import MakeClient, replay, session_cookie

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
