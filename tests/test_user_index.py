"""Log out everywhere is a security promise: the per-user index covers every live session of
the user, however the session was extended, re-timed, re-assigned or first written."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from aio_sessions import RedisStore, get_manager, get_session
from aio_sessions._ids import new_id
from aio_sessions.stores import SessionRecord

from .conftest import MakeClient, replay, session_cookie
from .kits import Kit


async def login(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.regenerate()
    raw = request.query["user"]
    session["user"] = int(raw) if raw.isdigit() else raw
    return web.Response()


async def remember(request: web.Request) -> web.Response:
    (await get_session(request)).max_age = 3 * 86400
    return web.Response()


async def forget_user(request: web.Request) -> web.Response:
    del (await get_session(request))["user"]
    return web.Response()


ROUTES = (
    ("POST", "/login", login),
    ("POST", "/remember", remember),
    ("POST", "/forget", forget_user),
)


async def assert_index_outlives_session(kit: Kit, sid: str, user: str) -> None:
    """On Redis the index is a key with a TTL: it must not expire before the session."""
    store = kit.store
    if isinstance(store, RedisStore):
        session_ttl = await store.client.pttl(f"{store.key_prefix}{sid}")
        index_ttl = await store.client.pttl(f"{store.key_prefix}user:{user}")
        assert index_ttl >= session_ttl > 0


async def test_active_session_stays_in_the_index(make_client: MakeClient, server_side: Kit) -> None:
    """The issue's input, scaled: idle_timeout=1, a request every 0.3 s for 1.8 s."""
    client = await make_client(*ROUTES, store=server_side.store, idle_timeout=1)
    await client.post("/login", params={"user": "alice"})
    sid = session_cookie(client)
    for _ in range(6):
        await asyncio.sleep(0.3)
        assert (await (await client.get("/read")).json())["data"] == {"user": "alice"}
        await assert_index_outlives_session(server_side, sid, "alice")
    assert await get_manager(client.app).logout_user("alice") == 1
    assert (await replay(client, "/read", sid))["data"] == {}


async def test_retimed_session_stays_in_the_index(
    make_client: MakeClient, server_side: Kit
) -> None:
    """A longer max_age set after login (remember me) is covered by the index too."""
    client = await make_client(*ROUTES, store=server_side.store, max_age=2)
    await client.post("/login", params={"user": "alice"})
    sid = session_cookie(client)
    await client.post("/remember")
    await assert_index_outlives_session(server_side, sid, "alice")
    await asyncio.sleep(2.2)  # past the TTL the index had at login
    assert (await (await client.get("/read")).json())["data"] == {"user": "alice"}
    assert await get_manager(client.app).logout_user("alice") == 1
    assert (await replay(client, "/read", sid))["data"] == {}


async def test_unindexed_records_join_on_first_use(
    make_client: MakeClient, server_side: Kit
) -> None:
    """aiohttp-session's records carry a user but were never indexed."""
    client = await make_client(store=server_side.store)
    sid = new_id()
    await server_side.store.save(SessionRecord(sid, {"user": "carol"}, int(time.time())), None, 60)
    manager = get_manager(client.app)
    assert await manager.logout_user("carol") == 0  # not yet known: nothing to end
    assert (await replay(client, "/read", sid))["data"] == {"user": "carol"}  # a read
    assert await manager.logout_user("carol") == 1
    assert (await replay(client, "/read", sid))["data"] == {}


async def test_reassigned_or_anonymous_sessions_are_not_logged_out(
    make_client: MakeClient, server_side: Kit
) -> None:
    client = await make_client(*ROUTES, store=server_side.store)
    manager = get_manager(client.app)
    await client.post("/login", params={"user": "alice"})
    await client.post("/login", params={"user": "bob"})  # the same browser, another user
    bob = session_cookie(client)
    assert await manager.logout_user("alice") == 0
    assert (await replay(client, "/read", bob))["data"] == {"user": "bob"}
    await client.post("/forget")  # logged out by deleting the key: an anonymous session
    assert await manager.logout_user("bob") == 0
    assert (await replay(client, "/read", bob))["new"] is False


@pytest.mark.parametrize("logout_as", [42, "42"])
async def test_int_and_str_users_are_one_user(
    make_client: MakeClient, server_side: Kit, logout_as: int | str
) -> None:
    client = await make_client(*ROUTES, store=server_side.store)
    await client.post("/login", params={"user": "42"})  # stored as the int 42
    sid = session_cookie(client)
    assert (await replay(client, "/read", sid))["data"] == {"user": 42}
    assert await get_manager(client.app).logout_user(logout_as) == 1
    assert (await replay(client, "/read", sid))["data"] == {}


@pytest.mark.parametrize("value", [{"id": 1}, ["alice"], 4.2, True])
async def test_unindexable_user_values_are_refused_at_save(
    make_client: MakeClient, server_side: Kit, value: object
) -> None:
    manager = get_manager((await make_client(store=server_side.store)).app)
    with pytest.raises(TypeError, match=r"str or an int.*user_key") as refused:
        await manager.create({"user": value})
    assert type(value).__name__ in str(refused.value)
    with pytest.raises(TypeError, match="str or an int"):
        await manager.logout_user(value)  # type: ignore[arg-type]


async def test_user_key_none_keeps_no_index(make_client: MakeClient) -> None:
    client = await make_client(user_key=None)
    await client.get("/count")
    with pytest.raises(TypeError, match="user_key=None"):
        await get_manager(client.app).logout_user("alice")
