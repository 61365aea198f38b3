"""A user's sessions as devices, through a real server and real clients on every server-side
store: listed (with what each device showed, only when tracked), one ended by its handle, the
others logged out, the cap, and every way a session ends heard by ``on_session_end``.

Each device is its own ``aiohttp.ClientSession`` with its own User-Agent and cookie jar.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

import aio_sessions
from aio_sessions import (
    CLOSE_SESSION_EXPIRED,
    CLOSE_SESSION_REVOKED,
    EncryptedCookieStore,
    FileStore,
    MemoryStore,
    RedisStore,
    SessionInfo,
    Store,
    get_manager,
    get_session,
    new_session,
    require_session,
)
from aio_sessions._ids import new_id

from .conftest import Counted
from .kits import Kit

Server = Callable[..., Any]


# -- the app: login, an account page's API, a socket ------------------------------------------


async def login(request: web.Request) -> web.Response:
    session = await new_session(request)
    session["user"] = request.query["user"]
    await session.save()  # stored now, so it has a handle to show
    return web.json_response({"handle": session.handle})


async def me(request: web.Request) -> web.Response:
    session = await get_session(request)
    return web.json_response({"user": session.get("user"), "handle": session.handle})


async def devices(request: web.Request) -> web.Response:
    session = await get_session(request)
    listed = await get_manager(request).user_sessions(session["user"])
    return web.json_response([_as_dict(info) for info in listed])


async def end(request: web.Request) -> web.Response:
    session = await get_session(request)
    manager = get_manager(request)
    ended = await manager.end_session(request.match_info["handle"], user=session.get("user"))
    return web.json_response(ended)


async def log_out_others(request: web.Request) -> web.Response:
    session = await get_session(request)
    ended = await get_manager(request).logout_user(session["user"], keep=session.id)
    return web.json_response(ended)


async def logout(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return web.json_response(True)


async def regenerate(request: web.Request) -> web.Response:
    (await get_session(request)).regenerate()
    return web.json_response(True)


@require_session("user")
async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for _ in ws:
        pass
    return ws


def _as_dict(info: SessionInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in SessionInfo.__dataclass_fields__}


def make_app(store: Store, **options: Any) -> web.Application:
    app = web.Application()
    aio_sessions.setup(app, store, **options)
    app.router.add_post("/login", login)
    app.router.add_get("/me", me)
    app.router.add_get("/devices", devices)
    app.router.add_post("/end/{handle}", end)
    app.router.add_post("/log-out-others", log_out_others)
    app.router.add_post("/logout", logout)
    app.router.add_post("/regenerate", regenerate)
    app.router.add_get("/ws", socket)
    return app


class Device:
    """One browser: its own cookies and User-Agent, against one server."""

    def __init__(self, server: TestServer, agent: str) -> None:
        self.server = server
        self.http = aiohttp.ClientSession(
            headers={"User-Agent": agent}, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.server.make_url(path), **kwargs) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def login(self, user: str) -> str:
        handle: str = (await self.call("POST", "/login", params={"user": user}))["handle"]
        return handle

    async def user(self) -> str | None:
        user: str | None = (await self.call("GET", "/me"))["user"]
        return user

    def session_id(self) -> str:
        return self.http.cookie_jar.filter_cookies(self.server.make_url("/"))[
            "AIOHTTP_SESSION"
        ].value

    async def socket(self) -> aiohttp.ClientWebSocketResponse:
        own = str(self.server.make_url("/").origin())
        return await self.http.ws_connect(self.server.make_url("/ws"), origin=own)


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The close code the server ends a socket with."""
    msg = await ws.receive(timeout=10)
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    code: int = msg.data
    return code


class Heard:
    """An ``on_session_end`` callback that remembers what it heard."""

    def __init__(self) -> None:
        self.events: list[tuple[str, SessionInfo]] = []

    async def __call__(self, info: SessionInfo, reason: str) -> None:
        self.events.append((reason, info))

    async def reasons(self, n: int) -> list[str]:
        """The reasons heard, once there are ``n`` (callbacks run as tasks)."""
        for _ in range(500):
            if len(self.events) >= n:
                break
            await asyncio.sleep(0.01)
        return [reason for reason, _ in self.events]


@pytest.fixture
async def start(aiohttp_server: Any) -> AsyncIterator[Callable[..., Any]]:
    """Serve ``make_app(store, **options)``; return the server and a way to add devices."""
    async with AsyncExitStack() as stack:

        async def serve(store: Store, **options: Any) -> tuple[TestServer, Callable[[str], Device]]:
            server: TestServer = await aiohttp_server(make_app(store, **options))

            def device(agent: str) -> Device:
                made = Device(server, agent)
                stack.push_async_callback(made.http.close)
                return made

            return server, device

        yield serve


def manager_of(server: TestServer) -> aio_sessions.SessionManager:
    return get_manager(server.app)


# -- listing ---------------------------------------------------------------------------------


async def test_two_devices_listed_with_what_they_showed(
    server_side: Kit, start: Callable[..., Any]
) -> None:
    _server, device = await start(server_side.store, track_devices=True)
    phone, laptop = device("Phone/1.0"), device("Laptop/2.0")
    phone_handle = await phone.login("alice")
    await asyncio.sleep(1.1)  # created is whole seconds: the phone's session is older
    laptop_handle = await laptop.login("alice")
    await device("Other/1.0").login("bob")
    listed = await laptop.call("GET", "/devices")
    assert [d["handle"] for d in listed] == [phone_handle, laptop_handle]  # oldest first
    assert [d["user_agent"] for d in listed] == ["Phone/1.0", "Laptop/2.0"]
    assert {d["ip"] for d in listed} == {"127.0.0.1"}
    assert {d["user"] for d in listed} == {"alice"}
    assert all(d["last_seen"] >= d["created"] > time.time() - 60 for d in listed)
    assert (await laptop.call("GET", "/me"))["handle"] == laptop_handle
    record = await server_side.store.load(phone.session_id())
    assert record is not None
    assert (record.agent, record.ip) == ("Phone/1.0", "127.0.0.1")


async def test_without_tracking_nothing_personal_is_stored(
    server_side: Kit, start: Callable[..., Any]
) -> None:
    _server, device = await start(server_side.store)
    phone, laptop = device("Phone/1.0"), device("Laptop/2.0")
    await phone.login("alice")
    await laptop.login("alice")
    listed = await phone.call("GET", "/devices")
    assert len(listed) == 2
    assert {(d["user_agent"], d["ip"]) for d in listed} == {(None, None)}
    assert all(d["last_seen"] is not None for d in listed)
    for each in (phone, laptop):
        record = await server_side.store.load(each.session_id())
        assert record is not None
        assert (record.agent, record.ip) == (None, None)


async def test_a_long_user_agent_is_cut(server_side: Kit, start: Callable[..., Any]) -> None:
    _server, device = await start(server_side.store, track_devices=True)
    phone = device("x" * 8000)  # as long as aiohttp lets a header be
    await phone.login("alice")
    record = await server_side.store.load(phone.session_id())
    assert record is not None
    assert record.agent == "x" * 256


async def test_forwarded_address_only_with_trust_proxy(start: Callable[..., Any]) -> None:
    headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
    for trust, expected in ((False, "127.0.0.1"), (True, "203.0.113.9")):
        store = MemoryStore()
        _server, device = await start(store, track_devices=True, trust_proxy=trust)
        phone = device("Phone/1.0")
        await phone.call("POST", "/login", params={"user": "alice"}, headers=headers)
        [listed] = await phone.call("GET", "/devices")
        assert listed["ip"] == expected
    _server, device = await start(MemoryStore(), track_devices=True, trust_proxy=True)
    spoof = device("Phone/1.0")
    await spoof.call("POST", "/login", params={"user": "alice"}, headers={"X-Forwarded-For": "me"})
    assert (await spoof.call("GET", "/devices"))[0]["ip"] == "127.0.0.1"


async def test_read_only_requests_write_nothing_with_tracking(
    server_side: Kit, start: Callable[..., Any]
) -> None:
    store = Counted(server_side.store)
    _server, device = await start(store, track_devices=True, idle_timeout=1800)
    phone = device("Phone/1.0")
    await phone.login("alice")
    written = store.writes
    for _ in range(5):
        assert await phone.user() == "alice"
    await phone.call("GET", "/devices")
    assert store.writes == written


# -- ending ----------------------------------------------------------------------------------


async def test_one_device_ended_by_its_handle(server_side: Kit, start: Callable[..., Any]) -> None:
    server, device = await start(server_side.store)
    heard = Heard()
    manager_of(server).on_session_end.append(heard)
    phone, laptop = device("Phone/1.0"), device("Laptop/2.0")
    phone_handle = await phone.login("alice")
    await laptop.login("alice")
    phone_ws, laptop_ws = await phone.socket(), await laptop.socket()
    assert await laptop.call("POST", f"/end/{phone_handle}") is True
    assert await closed_with(phone_ws) == CLOSE_SESSION_REVOKED
    assert await phone.user() is None
    assert await laptop.user() == "alice"
    assert not laptop_ws.closed
    assert [d["handle"] for d in await laptop.call("GET", "/devices")] != [phone_handle]
    assert len(await laptop.call("GET", "/devices")) == 1
    assert await heard.reasons(1) == ["ended"]
    assert heard.events[0][1].handle == phone_handle
    assert await laptop.call("POST", f"/end/{phone_handle}") is False  # already ended
    await laptop_ws.close()


async def test_a_handle_of_another_users_session_is_refused(
    server_side: Kit, start: Callable[..., Any]
) -> None:
    _server, device = await start(server_side.store)
    alice, bob = device("A/1"), device("B/1")
    await alice.login("alice")
    bob_handle = await bob.login("bob")
    assert await alice.call("POST", f"/end/{bob_handle}") is False
    # Bob's fingerprint under Alice's name names no session of hers either.
    alice_name = (await alice.call("GET", "/me"))["handle"].partition(".")[0]
    forged = f"{alice_name}.{bob_handle.partition('.')[2]}"
    assert await alice.call("POST", f"/end/{forged}") is False
    for garbage in ("nothing", "YWxpY2U.zz", "YWxpY2U." + "0" * 32, "!!." + "a" * 32):
        assert await alice.call("POST", f"/end/{garbage}") is False
    assert await bob.user() == "bob"
    assert await alice.user() == "alice"


async def test_log_out_all_other_devices(server_side: Kit, start: Callable[..., Any]) -> None:
    server, device = await start(server_side.store)
    heard = Heard()
    manager_of(server).on_session_end.append(heard)
    mine, phone, tablet = device("Mine/1"), device("Phone/1"), device("Tablet/1")
    for each in (mine, phone, tablet):
        await each.login("alice")
    mine_ws, phone_ws = await mine.socket(), await phone.socket()
    assert await mine.call("POST", "/log-out-others") == 2
    assert await closed_with(phone_ws) == CLOSE_SESSION_REVOKED
    assert [await each.user() for each in (mine, phone, tablet)] == ["alice", None, None]
    await asyncio.sleep(0.1)
    assert not mine_ws.closed  # the kept session's socket stays open
    assert await heard.reasons(2) == ["logout_user", "logout_user"]
    await mine_ws.close()


async def test_the_cap_ends_the_least_recently_seen(
    server_side: Kit, start: Callable[..., Any]
) -> None:
    server, device = await start(server_side.store, max_sessions_per_user=2, rolling=True)
    heard = Heard()
    manager_of(server).on_session_end.append(heard)
    first, second, third = device("First/1"), device("Second/1"), device("Third/1")
    await first.login("alice")
    await asyncio.sleep(0.05)
    second_handle = await second.login("alice")
    second_ws = await second.socket()
    await asyncio.sleep(0.05)
    assert await first.user() == "alice"  # rolling: the first is now the more recently seen
    await asyncio.sleep(0.05)
    await third.login("alice")
    assert await closed_with(second_ws) == CLOSE_SESSION_REVOKED
    assert [await each.user() for each in (first, second, third)] == ["alice", None, "alice"]
    assert await heard.reasons(1) == ["evicted"]
    assert heard.events[0][1].handle == second_handle
    assert len(await first.call("GET", "/devices")) == 2


# -- hearing every end -----------------------------------------------------------------------


async def test_every_reason_is_heard(server_side: Kit, start: Callable[..., Any]) -> None:
    server, device = await start(server_side.store, max_sessions_per_user=3, idle_timeout=3)
    manager = manager_of(server)
    heard = Heard()
    manager.on_session_end.append(heard)
    a, b, c, d = (device(f"{n}/1") for n in "abcd")
    await a.login("alice")
    await a.call("POST", "/logout")  # logout
    await b.login("alice")
    await b.call("POST", "/regenerate")  # regenerate
    c_handle = await c.login("alice")
    assert await manager.end_session(c_handle)  # ended
    await c.login("alice")
    await d.login("alice")
    assert await manager.logout_user("alice", keep=d.session_id()) == 2  # logout_user
    for each in (a, b, c):
        await each.login("alice")  # the fourth session: d, the least recently seen, evicted
    assert await heard.reasons(6) == [
        "logout",
        "regenerate",
        "ended",
        "logout_user",
        "logout_user",
        "evicted",
    ]
    # Expired, noticed on load: a record past its end (written by a process with another
    # idle timeout), and noticed by a socket's deadline.
    record = await server_side.store.load(a.session_id())
    assert record is not None
    record.accessed = time.time() - 60
    await server_side.store.save(record, None, 600)
    assert await a.user() is None
    ws = await b.socket()
    assert await closed_with(ws) == CLOSE_SESSION_EXPIRED
    reasons = await heard.reasons(8)
    assert reasons[6:] == ["expired", "expired"]
    assert all(info.user == "alice" for _, info in heard.events)


async def test_a_failing_callback_is_logged_and_the_request_answers(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server, device = await start(MemoryStore())
    heard = Heard()

    async def broken(info: SessionInfo, reason: str) -> None:
        raise RuntimeError("the audit log is down")

    manager_of(server).on_session_end.extend([broken, heard])
    phone = device("Phone/1")
    await phone.login("alice")
    with caplog.at_level(logging.ERROR, logger="aio_sessions"):
        assert await phone.call("POST", "/logout") is True  # a 200
        assert await heard.reasons(1) == ["logout"]
        await asyncio.sleep(0.05)
    assert "on_session_end callback failed" in caplog.text
    assert await phone.user() is None


# -- several processes on one Redis ----------------------------------------------------------


async def test_two_apps_on_one_redis_end_and_evict_across(
    redis_url: str, start: Callable[..., Any]
) -> None:
    prefix = f"test-{new_id()[:8]}:"
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    one, device_one = await start(RedisStore(clients[0], key_prefix=prefix))
    two, device_two = await start(
        RedisStore(clients[1], key_prefix=prefix), max_sessions_per_user=2
    )
    heard_one, heard_two = Heard(), Heard()
    manager_of(one).on_session_end.append(heard_one)
    manager_of(two).on_session_end.append(heard_two)
    try:
        phone, laptop = device_one("Phone/1"), device_one("Laptop/1")
        phone_handle = await phone.login("alice")
        await laptop.login("alice")
        await asyncio.sleep(0.5)  # both listeners subscribed
        phone_ws, laptop_ws = await phone.socket(), await laptop.socket()
        # Ended in the second process: the socket in the first closes.
        assert await manager_of(two).end_session(phone_handle, user="alice")
        assert await closed_with(phone_ws) == CLOSE_SESSION_REVOKED
        assert await phone.user() is None
        # A login in the second process makes three: the oldest, the laptop's, is evicted.
        await phone.login("alice")
        await device_two("Tablet/1").login("alice")
        assert await closed_with(laptop_ws) == CLOSE_SESSION_REVOKED
        assert await laptop.user() is None
        assert await heard_two.reasons(2) == ["ended", "evicted"]
        assert heard_one.events == []  # heard where the session was ended
    finally:
        await manager_of(one).store.clear()
        for client in clients:
            await client.aclose()


# -- handles, and what a cookie store cannot do ----------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(user=st.text(min_size=1, max_size=40), garbage=st.text(max_size=80))
async def test_any_user_has_working_handles(user: str, garbage: str) -> None:
    """Any user name (any text) gets handles that list and end its sessions; any other text
    ends nothing."""
    app = web.Application()
    manager = aio_sessions.setup(app, MemoryStore())
    session_ids = [await manager.create({"user": user}) for _ in range(2)]
    listed = await manager.user_sessions(user)
    assert len({info.handle for info in listed}) == 2
    assert not any(session_id in info.handle for info in listed for session_id in session_ids)
    assert not await manager.end_session(garbage)
    assert not await manager.end_session(listed[0].handle, user=user + "x")
    assert await manager.end_session(listed[0].handle, user=user)
    assert [info.handle for info in await manager.user_sessions(user)] == [listed[1].handle]


async def test_a_cookie_store_lists_nothing_and_refuses_the_rest() -> None:
    store = EncryptedCookieStore(Fernet.generate_key())
    manager = aio_sessions.setup(web.Application(), store)
    assert await manager.user_sessions("alice") == []
    assert await manager.end_session("YWxpY2U." + "0" * 32) is False
    with pytest.raises(TypeError, match="keep sessions on the server"):
        await manager.logout_user("alice", keep=new_id())
    for option, value in (("track_devices", True), ("max_sessions_per_user", 3)):
        with pytest.raises(ValueError, match=f"{option}=.*EncryptedCookieStore"):
            aio_sessions.setup(web.Application(), store, **{option: value})


@pytest.mark.parametrize(
    ("options", "error", "fix"),
    [
        ({"max_sessions_per_user": 0}, ValueError, "max_sessions_per_user=5"),
        ({"max_sessions_per_user": "5"}, TypeError, "max_sessions_per_user=5"),
        ({"max_sessions_per_user": True}, TypeError, "max_sessions_per_user=5"),
        ({"max_sessions_per_user": 5, "user_key": None}, ValueError, "user_key='user'"),
        ({"track_devices": "yes"}, TypeError, "track_devices=True"),
    ],
)
def test_bad_device_options_fail_at_setup(
    options: dict[str, Any], error: type[Exception], fix: str
) -> None:
    with pytest.raises(error, match=fix):
        aio_sessions.setup(web.Application(), MemoryStore(), **options)
    with pytest.raises(error, match=fix):
        aio_sessions.session_middleware(MemoryStore(), **options)


@pytest.mark.parametrize(
    "fields",
    [
        {"user_agent": "x" * 257},
        {"user_agent": 5},
        {"ip": ["127.0.0.1"]},
        {"ip": "1" * 65},
        {"watched": [1]},
    ],
)
async def test_bad_device_fields_load_as_corrupt(
    fields: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A record whose device fields (or watch lease) are not what we write is a fresh
    session, as any other corrupt record (here a session file edited by hand)."""
    store = FileStore(tmp_path)
    session_id = new_id()
    now = time.time()
    doc = {"created": int(now), "session": {"user": "alice"}, "expires": now + 60, **fields}
    (tmp_path / f"{session_id}.json").write_text(json.dumps(doc))
    try:
        assert await store.load(session_id) is None
    finally:
        await store.close()
    assert "corrupt" in caplog.text
