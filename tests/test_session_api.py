"""The Session API through a real server: regenerate, invalidate, flash, max_age, save, reload."""

from __future__ import annotations

import logging
import time

import pytest
from aiohttp import web

import aio_sessions
from aio_sessions import MemoryStore, SerializationError, get_session, new_session

from .conftest import MakeClient, replay, session_cookie


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.regenerate()
    session["user"] = "alice"
    return web.Response(text="ok")


async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.invalidate()
    return web.Response(text="bye")


async def test_regenerate_changes_id_keeps_data_and_kills_old_id(make_client: MakeClient) -> None:
    store = MemoryStore()
    client = await make_client(("POST", "/login", login), store=store)
    await client.get("/count")
    old = session_cookie(client)
    await client.post("/login")
    new = session_cookie(client)
    assert new != old
    assert (await (await client.get("/read")).json())["data"] == {"n": 1, "user": "alice"}
    assert (await replay(client, "/read", old))["data"] == {}
    assert await store.count() == 1


async def test_invalidate_removes_data_and_deletes_cookie(make_client: MakeClient) -> None:
    store = MemoryStore()
    client = await make_client(("POST", "/logout", logout), store=store)
    await client.get("/count")
    old = session_cookie(client)
    resp = await client.post("/logout")
    [cookie] = resp.headers.getall("Set-Cookie")
    assert cookie.startswith('AIOHTTP_SESSION=""')
    assert "Max-Age=0" in cookie
    assert await store.count() == 0
    assert await store.load(old) is None
    assert (await replay(client, "/read", old)) == {"data": {}, "new": True}


async def test_write_after_invalidate_starts_a_new_session(make_client: MakeClient) -> None:
    async def switch(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.invalidate()
        session["fresh"] = True
        return web.Response()

    store = MemoryStore()
    client = await make_client(("POST", "/switch", switch), store=store)
    await client.get("/count")
    old = session_cookie(client)
    await client.post("/switch")
    assert session_cookie(client) != old
    assert (await (await client.get("/read")).json())["data"] == {"fresh": True}
    assert await store.count() == 1


async def test_new_session_destroys_the_old_one(make_client: MakeClient) -> None:
    async def fresh(request: web.Request) -> web.Response:
        session = await new_session(request)
        assert session.new
        assert session.empty
        session["started"] = "over"
        return web.Response()

    store = MemoryStore()
    client = await make_client(("POST", "/fresh", fresh), store=store)
    await client.get("/count")
    old = session_cookie(client)
    await client.post("/fresh")
    assert (await (await client.get("/read")).json())["data"] == {"started": "over"}
    assert (await replay(client, "/read", old))["data"] == {}


async def test_flash_messages(make_client: MakeClient) -> None:
    async def post(request: web.Request) -> web.Response:
        (await get_session(request)).flash("saved")
        (await get_session(request)).flash({"level": "info"})
        raise web.HTTPSeeOther("/show")

    async def show(request: web.Request) -> web.Response:
        return web.json_response((await get_session(request)).pop_flash())

    client = await make_client(("POST", "/post", post), ("GET", "/show", show))
    resp = await client.post("/post")
    assert await resp.json() == ["saved", {"level": "info"}]
    assert await (await client.get("/show")).json() == []


async def test_nested_mutation_needs_changed(make_client: MakeClient) -> None:
    async def add(request: web.Request) -> web.Response:
        session = await get_session(request)
        cart = session.setdefault("cart", [])
        cart.append(request.query["item"])
        if "mark" in request.query:
            session.changed("cart")
        return web.Response()

    client = await make_client(("GET", "/add", add))
    await client.get("/add", params={"item": "a"})  # new key: stored
    await client.get("/add", params={"item": "b"})  # in place, unmarked: lost
    await client.get("/add", params={"item": "c", "mark": "1"})
    assert (await (await client.get("/read")).json())["data"] == {"cart": ["a", "c"]}


async def test_remember_me_max_age_per_session(make_client: MakeClient) -> None:
    async def remember(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["user"] = "bob"
        session.max_age = 30 * 24 * 3600
        return web.Response()

    client = await make_client(("POST", "/remember", remember), max_age=3600)
    resp = await client.get("/count")
    assert "Max-Age=3600" in resp.headers["Set-Cookie"]
    resp = await client.post("/remember")
    assert "Max-Age=2592000" in resp.headers["Set-Cookie"]
    with pytest.raises(ValueError, match="max_age"):
        (await aio_sessions.get_manager(client.app).load(None)).max_age = -1  # type: ignore[arg-type]


async def test_unserialisable_value_names_the_key(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explicit(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["fine"] = 1
        session["when"] = object()
        try:
            await session.save()
        except SerializationError as exc:
            del session["when"]  # otherwise the commit fails the same way
            return web.Response(text=str(exc))
        return web.Response(text="saved?")

    async def implicit(request: web.Request) -> web.Response:
        (await get_session(request))["socket"] = {1, 2}
        return web.Response()

    client = await make_client(("GET", "/explicit", explicit), ("GET", "/implicit", implicit))
    text = await (await client.get("/explicit")).text()
    assert "'when'" in text
    assert "not JSON serializable" in text
    assert (await (await client.get("/read")).json())["data"] == {"fine": 1}
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/implicit")
    assert resp.status == 500
    assert "'socket'" in caplog.text
    assert resp.headers.getall("Set-Cookie", []) == []


async def test_explicit_save_and_reload(make_client: MakeClient) -> None:
    async def slow_writer(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["step"] = 1
        await session.save()
        manager = aio_sessions.get_manager(request.app)
        await manager.update(session.id, {"from_elsewhere": True})
        await session.reload()
        return web.json_response(dict(session))

    client = await make_client(("GET", "/slow", slow_writer))
    await client.get("/count")
    resp = await client.get("/slow")
    assert await resp.json() == {"n": 1, "step": 1, "from_elsewhere": True}


async def test_explicit_save_of_new_session_still_sets_cookie(make_client: MakeClient) -> None:
    async def early(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["early"] = True
        await session.save()
        return web.Response()

    client = await make_client(("GET", "/early", early))
    resp = await client.get("/early")
    assert len(resp.headers.getall("Set-Cookie")) == 1
    assert (await (await client.get("/read")).json())["data"] == {"early": True}


async def test_session_id_never_logged(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def show(request: web.Request) -> web.Response:
        session = await get_session(request)
        logging.getLogger("app").info("session is %r", session)
        return web.Response(text=repr(session))

    client = await make_client(
        ("POST", "/login", login), ("POST", "/logout", logout), ("GET", "/show", show)
    )
    with caplog.at_level(logging.DEBUG):
        await client.get("/count")
        sid = session_cookie(client)
        text = await (await client.get("/show")).text()
        await client.post("/login")
        sid2 = session_cookie(client)
        await client.post("/logout")
    assert sid not in text
    assert sid not in caplog.text
    assert sid2 not in caplog.text


async def test_expires_at_over_http_and_by_id(make_client: MakeClient) -> None:
    async def when(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["x"] = 1
        await session.save()
        return web.json_response({"expires_at": session.expires_at})

    client = await make_client(("GET", "/when", when), idle_timeout=600)
    before = time.time()
    expires_at = (await (await client.get("/when")).json())["expires_at"]
    assert before + 600 <= expires_at <= time.time() + 600
    manager = aio_sessions.get_manager(client.app)
    sid = session_cookie(client)
    assert await manager.expires_at(sid) == pytest.approx(expires_at, abs=1)
    await manager.delete(sid)
    assert await manager.expires_at(sid) is None


async def test_dirty_says_what_a_commit_would_write(make_client: MakeClient) -> None:
    """A fresh session that nothing wrote is not dirty; writes, touches, ends and a new id
    for a stored session are."""

    async def states(request: web.Request) -> web.Response:
        session = await get_session(request)
        seen = {"loaded": session.dirty}
        session.regenerate()
        seen["regenerated"] = session.dirty
        if "write" in request.query:
            session["x"] = 1
            seen["written"] = session.dirty
        if "end" in request.query:
            session.invalidate()
            seen["ended"] = session.dirty
        return web.json_response(seen)

    client = await make_client(("GET", "/states", states))
    assert await (await client.get("/states")).json() == {"loaded": False, "regenerated": False}
    assert await (await client.get("/states", params={"write": "1"})).json() == {
        "loaded": False,
        "regenerated": False,
        "written": True,
    }
    assert await (await client.get("/states", params={"end": "1"})).json() == {
        "loaded": False,  # stored, and this request wrote nothing yet
        "regenerated": True,  # the old id must be deleted
        "ended": True,
    }


async def test_dirty_after_touch_and_delete(make_client: MakeClient) -> None:
    async def touch(request: web.Request) -> web.Response:
        session = await get_session(request)
        before = session.dirty
        if "x" in session:
            del session["x"]
        else:
            session.touch()
        return web.json_response([before, session.dirty])

    client = await make_client(("GET", "/touch", touch))
    assert await (await client.get("/touch")).json() == [False, True]  # fresh, then touched
    await client.get("/count")
    assert await (await client.get("/touch")).json() == [False, True]


async def test_new_session_is_the_request_session(make_client: MakeClient) -> None:
    """new_session returns the one Session of the request, emptied with a new id: the object
    get_session returned before, and returns afterwards."""

    async def restart(request: web.Request) -> web.Response:
        before = await get_session(request)
        old_id = before.id
        fresh = await new_session(request)
        after = await get_session(request)
        return web.json_response(
            {
                "same": fresh is before is after,
                "new_id": fresh.id != old_id,
                "empty": before.empty,
                "dirty": fresh.dirty,
            }
        )

    client = await make_client(("POST", "/restart", restart))
    await client.get("/count")
    assert await (await client.post("/restart")).json() == {
        "same": True,
        "new_id": True,
        "empty": True,
        "dirty": True,  # the old session is to be deleted
    }
