"""Programmatic access by id, outside any request, on the same sessions HTTP uses."""

from __future__ import annotations

from aiohttp import web

from aio_sessions import get_manager

from .conftest import MakeClient, replay, session_cookie


async def test_create_then_use_from_http(make_client: MakeClient) -> None:
    client = await make_client()
    manager = get_manager(client.app)
    sid = await manager.create({"user": "admin-made"})
    assert (await replay(client, "/read", sid))["data"] == {"user": "admin-made"}


async def test_update_merges_and_delete_destroys(make_client: MakeClient) -> None:
    client = await make_client()
    manager = get_manager(client.app)
    await client.get("/count")
    sid = session_cookie(client)
    assert await manager.get(sid) == {"n": 1}
    assert await manager.update(sid, {"role": "editor"})
    assert (await (await client.get("/count")).json()) == {"n": 2, "role": "editor"}
    assert await manager.count() == 1
    assert await manager.delete(sid)
    assert not await manager.delete(sid)
    assert not await manager.update(sid, {"role": "ghost"})
    assert await manager.get(sid) is None
    assert await manager.count() == 0
    assert (await (await client.get("/read")).json())["data"] == {}


async def test_get_copy_does_not_alias_store(make_client: MakeClient) -> None:
    client = await make_client()
    manager = get_manager(client.app)
    sid = await manager.create({"items": [1]})
    data = await manager.get(sid)
    assert data is not None
    data["items"].append(2)
    assert await manager.get(sid) == {"items": [1]}


async def test_bad_ids_are_just_missing(make_client: MakeClient) -> None:
    client = await make_client()
    manager = get_manager(client.app)
    for bad in ("", "short", "x" * 5000, "../etc/passwd"):
        assert await manager.get(bad) is None
        assert not await manager.update(bad, {"a": 1})
        assert not await manager.delete(bad)


def test_setup_returns_the_manager() -> None:
    import aio_sessions

    app = web.Application()
    assert aio_sessions.setup(app) is get_manager(app)
