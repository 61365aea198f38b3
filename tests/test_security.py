"""aiohttp-security over these sessions, with the real aiohttp-security package and a real
server: its demo flow, the new id at login, log out everywhere, sockets closed at logout, and
the refusal of aiohttp-session's middleware beside ours."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from enum import Enum
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp_security
import aiohttp_session
import pytest
from aiohttp import WSMsgType, hdrs, web
from aiohttp.test_utils import TestClient
from aiohttp_security import (
    AbstractAuthorizationPolicy,
    authorized_userid,
    check_authorized,
    check_permission,
    forget,
    remember,
)
from aiohttp_security import setup as setup_security
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from cryptography.fernet import Fernet
from redis.asyncio import Redis

import aio_sessions
from aio_sessions import (
    CLOSE_SESSION_REVOKED,
    MemoryStore,
    RedisStore,
    Store,
    get_manager,
    get_session,
    require_session,
)
from aio_sessions.security import SessionIdentityPolicy

from .conftest import send_cookie, session_cookie
from .kits import KITS

Client = TestClient[web.Request, web.Application]
POLICY = web.AppKey("policy", SessionIdentityPolicy)
# aiohttp-session keeps its request state under string keys, which aiohttp warns about.
THEIR_WARNING = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

# A small user database: passwords and permissions, as aiohttp-security's demo has.
PASSWORDS = {"alice": "wonderland", "bob": "builder"}
PERMISSIONS = {"alice": {"public", "protected"}, "bob": {"public"}}


class Permissions(AbstractAuthorizationPolicy):
    """aiohttp-security's authorization side: who exists, and who may do what."""

    async def authorized_userid(self, identity: str) -> str | None:
        return identity if identity in PERMISSIONS else None

    async def permits(
        self, identity: str | None, permission: str | Enum, context: Any = None
    ) -> bool:
        return identity is not None and permission in PERMISSIONS.get(identity, set())


# -- the demo app: aiohttp-security's handlers, unchanged but for the policy ----------------


async def index(request: web.Request) -> web.Response:
    user = await authorized_userid(request)
    return web.Response(text=f"Hello, {user}!" if user else "You need to login")


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    user, password = form.get("username"), form.get("password")
    if not isinstance(user, str) or PASSWORDS.get(user) != password:
        raise web.HTTPUnauthorized(text="Invalid username / password combination")
    response = web.HTTPFound("/")
    max_age = 30 * 24 * 3600 if form.get("remember") else None
    await remember(request, response, user, max_age=max_age)
    raise response


async def logout(request: web.Request) -> web.Response:
    await check_authorized(request)
    response = web.Response(text="You have been logged out")
    await forget(request, response)
    return response


async def public(request: web.Request) -> web.Response:
    await check_permission(request, "public")
    return web.Response(text="This page is visible for all registered users")


async def protected(request: web.Request) -> web.Response:
    await check_permission(request, "protected")
    return web.Response(text="You are on protected page")


async def logout_everywhere(request: web.Request) -> web.Response:
    user = await check_authorized(request)
    return web.Response(text=str(await get_manager(request).logout_user(user)))


async def put_in_cart(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["cart"] = [*session.get("cart", []), request.query["item"]]
    return web.Response()


async def cart(request: web.Request) -> web.Response:
    return web.json_response((await get_session(request)).get("cart"))


async def whoami(request: web.Request) -> web.Response:
    """What the identity policy reads, even for identities the authorization policy
    does not know."""
    return web.json_response(await request.app[POLICY].identify(request))


@require_session("user")
async def feed(request: web.Request) -> web.WebSocketResponse:
    await check_permission(request, "public")
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(f"hello {await authorized_userid(request)}")
    async for _ in ws:
        pass
    return ws


def demo_app(
    store: Store | None = None, policy: SessionIdentityPolicy | None = None, **options: Any
) -> web.Application:
    app = web.Application()
    aio_sessions.setup(app, store or MemoryStore(), **options)
    app[POLICY] = policy or SessionIdentityPolicy()
    setup_security(app, app[POLICY], Permissions())
    app.add_routes(
        [
            web.get("/", index),
            web.post("/login", login),
            web.post("/logout", logout),
            web.get("/public", public),
            web.get("/protected", protected),
            web.post("/logout-everywhere", logout_everywhere),
            web.post("/cart", put_in_cart),
            web.get("/cart", cart),
            web.get("/whoami", whoami),
            web.get("/feed", feed),
        ]
    )
    return app


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A MemoryStore, and a RedisStore on the suite's Redis."""
    kit = KITS[request.param](request, tmp_path)
    yield (await anext(kit)).store
    await anext(kit, None)


async def log_in(client: Client, user: str, **extra: str) -> aiohttp.ClientResponse:
    data = {"username": user, "password": PASSWORDS[user], **extra}
    resp = await client.post("/login", data=data, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return resp


async def status(client: Client, path: str) -> int:
    return (await client.get(path)).status


async def open_feed(client: Client) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/feed", origin=str(client.make_url("/").origin()))
    assert (await ws.receive_str()).startswith("hello ")
    return ws


def logged_error(caplog: pytest.LogCaptureFixture) -> BaseException | None:
    """The one exception the server logged (a handler's error, answered with 500)."""
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert len(errors) == 1, errors
    return errors[0]


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int:
    msg = await ws.receive(timeout=2)
    assert msg.type is WSMsgType.CLOSE, msg
    code: int = msg.data
    return code


# -- the demo flow --------------------------------------------------------------------------


async def test_demo_flow(aiohttp_client: Any, store: Store) -> None:
    """aiohttp-security's demo: login, pages by permission (401 / 403), logout."""
    client: Client = await aiohttp_client(demo_app(store))
    assert await (await client.get("/")).text() == "You need to login"
    assert [await status(client, p) for p in ("/public", "/protected")] == [401, 401]
    refused = await client.post("/login", data={"username": "bob", "password": "nope"})
    assert refused.status == 401
    assert await (await client.get("/")).text() == "You need to login"

    resp = await client.post("/login", data={"username": "bob", "password": "builder"})
    assert (resp.status, await resp.text()) == (200, "Hello, bob!")  # after the redirect
    assert [await status(client, p) for p in ("/public", "/protected")] == [200, 403]
    sid = session_cookie(client)
    assert await get_manager(client.app).get(sid) == {"user": "bob"}

    resp = await client.post("/logout")
    assert (resp.status, await resp.text()) == (200, "You have been logged out")
    assert 'AIOHTTP_SESSION=""' in resp.headers[hdrs.SET_COOKIE]  # the cookie is deleted
    assert await get_manager(client.app).get(sid) is None  # and the session destroyed
    assert [await status(client, p) for p in ("/public", "/protected")] == [401, 401]
    assert (await client.post("/logout")).status == 401

    await log_in(client, "alice")
    assert [await status(client, p) for p in ("/public", "/protected")] == [200, 200]


async def test_login_gives_a_new_id_and_keeps_the_data(aiohttp_client: Any, store: Store) -> None:
    """Session fixation: the id the browser had before login (which an attacker may have
    planted) is dead afterwards; what the visitor put in the cart stays."""
    client: Client = await aiohttp_client(demo_app(store))
    await client.post("/cart", params={"item": "book"})
    before = session_cookie(client)
    await log_in(client, "bob")
    after = session_cookie(client)
    assert after != before
    assert await (await client.get("/cart")).json() == ["book"]
    assert await (await send_cookie(client, "/", before)).text() == "You need to login"
    assert await (await send_cookie(client, "/", after)).text() == "Hello, bob!"
    manager = get_manager(client.app)
    assert await manager.get(before) is None
    assert await manager.user_session_ids("bob") == [after]


async def test_login_as_someone_else_starts_over(aiohttp_client: Any, store: Store) -> None:
    """A login over another user's session does not inherit that user's data."""
    client: Client = await aiohttp_client(demo_app(store))
    await log_in(client, "bob")
    await client.post("/cart", params={"item": "bobs-book"})
    bobs = session_cookie(client)
    await log_in(client, "alice")
    assert await (await client.get("/cart")).json() is None
    assert await get_manager(client.app).get(bobs) is None
    assert await (await client.get("/")).text() == "Hello, alice!"


async def test_logout_everywhere_reaches_logins_made_by_remember(
    aiohttp_client: Any, store: Store
) -> None:
    """The identity is the user_key: logout_user and send_to_user find those sessions."""
    app = demo_app(store)
    phone: Client = await aiohttp_client(app)
    laptop: Client = await aiohttp_client(app)
    bob: Client = await aiohttp_client(app)
    for client, user in ((phone, "alice"), (laptop, "alice"), (bob, "bob")):
        await log_in(client, user)
    phone_feed, bob_feed = await open_feed(phone), await open_feed(bob)
    manager = get_manager(app)
    assert await manager.sockets.send_to_user("alice", "news for alice") == 1
    assert await phone_feed.receive_str(timeout=2) == "news for alice"

    resp = await laptop.post("/logout-everywhere")
    assert (resp.status, await resp.text()) == (200, "2")
    assert await closed_with(phone_feed) == CLOSE_SESSION_REVOKED
    assert [await status(c, "/public") for c in (phone, laptop, bob)] == [401, 401, 200]
    assert not bob_feed.closed
    await bob_feed.close()


async def test_forget_closes_the_sessions_sockets(aiohttp_client: Any, store: Store) -> None:
    client: Client = await aiohttp_client(demo_app(store))
    await log_in(client, "bob")
    sockets = [await open_feed(client) for _ in range(2)]
    assert (await client.post("/logout")).status == 200
    assert [await closed_with(ws) for ws in sockets] == [CLOSE_SESSION_REVOKED] * 2
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await open_feed(client)
    assert refused.value.status == 401


# -- the policy's details --------------------------------------------------------------------


async def test_remember_me_sets_max_age(aiohttp_client: Any) -> None:
    client: Client = await aiohttp_client(demo_app())
    resp = await log_in(client, "bob", remember="on")
    assert f"Max-Age={30 * 24 * 3600}" in resp.headers[hdrs.SET_COOKIE]
    plain = await log_in(client, "alice")
    assert "Max-Age" not in plain.headers[hdrs.SET_COOKIE]


async def test_identify_reads_what_the_app_wrote(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An int user id reads as the index names it; a value that names no one is no
    identity (and says so in the log)."""
    app = demo_app(policy=SessionIdentityPolicy(session_key="profile"))
    client: Client = await aiohttp_client(app)
    manager = get_manager(app)
    numbered = await manager.create({"profile": 42})
    odd = await manager.create({"profile": {"name": "Ann"}})
    assert await (await send_cookie(client, "/whoami", numbered)).json() == "42"
    with caplog.at_level(logging.WARNING, logger="aio_sessions"):
        assert await (await send_cookie(client, "/whoami", odd)).json() is None
    assert "session['profile'] is {'name': 'Ann'}" in caplog.text
    assert await (await client.get("/whoami")).json() is None


async def test_session_key_names_another_key(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With setup(user_key=None) the policy needs its own key; without one it says so."""
    client: Client = await aiohttp_client(demo_app(user_key=None))
    with caplog.at_level(logging.ERROR):
        resp = await client.post("/login", data={"username": "bob", "password": "builder"})
    assert resp.status == 500
    error = logged_error(caplog)
    assert isinstance(error, RuntimeError)
    assert "SessionIdentityPolicy(session_key='user'), or set setup(user_key='user')" in str(error)
    named: Client = await aiohttp_client(
        demo_app(policy=SessionIdentityPolicy(session_key="uid"), user_key=None)
    )
    await log_in(named, "bob")
    assert await get_manager(named.app).get(session_cookie(named)) == {"uid": "bob"}
    assert await status(named, "/public") == 200


async def test_errors_say_what_to_write(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(TypeError, match=r"session_key=3 \(int\): expected a string or None"):
        SessionIdentityPolicy(session_key=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected a non-empty string"):
        SessionIdentityPolicy(session_key="")

    policy = SessionIdentityPolicy()

    async def call(request: web.Request) -> web.Response:
        """Call the policy as the query says; the error's message is the answer."""
        response = web.StreamResponse() if "stream" in request.query else web.Response()
        if "stream" in request.query:
            await response.prepare(request)
        identity: Any = 7 if "number" in request.query else request.query.get("identity", "bob")
        kwargs: dict[str, Any] = {}
        if "bad_kwarg" in request.query:
            kwargs["secure"] = True
        if "max_age" in request.query:
            kwargs["max_age"] = int(request.query["max_age"])
        try:
            await policy.remember(request, response, identity, **kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:
            message = str(exc)
        else:
            message = "remembered"
        if isinstance(response, web.Response):
            response.text = message
        else:
            await response.write(message.encode())
        return response

    app = web.Application()
    aio_sessions.setup(app)
    app.router.add_get("/", call)
    client: Client = await aiohttp_client(app)

    async def answer(**query: str) -> str:
        return await (await client.get("/", params=query)).text()

    assert await answer() == "remembered"
    assert await answer(identity="") == (
        "identity='' (str): expected a non-empty string, e.g. remember(request, response, 'alice')"
    )
    assert "identity=7 (int): expected a non-empty string" in await answer(number="1")
    assert "secure=True (bool): expected no keyword but max_age" in await answer(bad_kwarg="1")
    assert "max_age=-1 (int): expected a positive whole number" in await answer(max_age="-1")
    assert "call remember(request, response, identity) before response.prepare()" in (
        await answer(stream="1")
    )

    # The policy on an app without aio_sessions: a 500 whose logged error says what to call.
    bare = web.Application()
    setup_security(bare, SessionIdentityPolicy(), Permissions())
    bare.router.add_get("/public", public)
    bare_client: Client = await aiohttp_client(bare)
    with caplog.at_level(logging.ERROR):
        assert await status(bare_client, "/public") == 500
    error = logged_error(caplog)
    assert isinstance(error, RuntimeError)
    assert "call aio_sessions.setup(app, store) before aiohttp_security.setup" in str(error)


@THEIR_WARNING
async def test_logins_made_with_aiohttp_session_carry_over(
    aiohttp_client: Any, redis_url: str
) -> None:
    """docs/security.md: with user_key="AIOHTTP_SECURITY", users that aiohttp-security logged
    in over aiohttp-session's RedisStorage stay logged in, and log out everywhere finds them."""
    redis = Redis.from_url(redis_url)
    before = web.Application()
    aiohttp_session.setup(before, RedisStorage(redis))
    setup_security(before, aiohttp_security.SessionIdentityPolicy(), Permissions())
    before.add_routes([web.post("/login", login), web.get("/public", public)])
    theirs: Client = await aiohttp_client(before)
    await log_in(theirs, "alice")
    their_id = session_cookie(theirs)  # uuid4().hex: the Redis key AIOHTTP_SESSION_<id>

    store = RedisStore(redis)
    ours: Client = await aiohttp_client(demo_app(store, user_key="AIOHTTP_SECURITY"))
    assert await (await send_cookie(ours, "/", their_id)).text() == "Hello, alice!"
    assert (await send_cookie(ours, "/public", their_id)).status == 200
    assert await get_manager(ours.app).logout_user("alice") == 1
    assert await (await send_cookie(ours, "/", their_id)).text() == "You need to login"
    await store.clear()
    await redis.aclose()


# -- aiohttp-session's middleware beside ours -------------------------------------------------


def their_storage(**options: Any) -> EncryptedCookieStorage:
    return EncryptedCookieStorage(Fernet.generate_key().decode(), **options)


async def both(request: web.Request) -> web.Response:
    """Write to both libraries' sessions; answer what each held before."""
    ours, theirs = await get_session(request), await aiohttp_session.get_session(request)
    held = {"ours": ours.get("n"), "theirs": theirs.get("n")}
    ours["n"] = theirs["n"] = (held["ours"] or 0) + 1
    return web.json_response(held)


@THEIR_WARNING
async def test_what_both_middlewares_do(aiohttp_client: Any) -> None:
    """What docs/security.md warns of, built by hand around the check: two Set-Cookie headers
    of one name, and one library's data lost on every request, without an error."""
    ours = aio_sessions.session_middleware()
    app = web.Application(middlewares=[aiohttp_session.session_middleware(their_storage()), ours])
    app.on_response_prepare.append(ours.on_response_prepare)
    app.router.add_get("/", both)
    client: Client = await aiohttp_client(app)
    first = await client.get("/")
    assert [h.split("=")[0] for h in first.headers.getall(hdrs.SET_COOKIE)] == [
        "AIOHTTP_SESSION",
        "AIOHTTP_SESSION",
    ]
    for _ in range(2):
        assert await (await client.get("/")).json() == {"ours": None, "theirs": 1}


@THEIR_WARNING
async def test_setup_refuses_aiohttp_session_set_up_before() -> None:
    app = web.Application()
    aiohttp_session.setup(app, their_storage())
    with pytest.raises(RuntimeError, match=r"aiohttp-session's middleware .* lost .* silently"):
        aio_sessions.setup(app)
    with pytest.raises(RuntimeError, match="not set up"):
        get_manager(app)  # the app was left as it was


@THEIR_WARNING
@pytest.mark.parametrize("where", ["app", "sub-app"])
async def test_startup_refuses_aiohttp_session_set_up_after(where: str) -> None:
    """Installed after setup, aiohttp-session's middleware stops the app at startup, as
    web.run_app starts it."""
    app = web.Application()
    aio_sessions.setup(app)
    if where == "app":
        aiohttp_session.setup(app, their_storage())
    else:
        admin = web.Application()
        aiohttp_session.setup(admin, their_storage())
        app.add_subapp("/admin", admin)
    runner = web.AppRunner(app)
    with pytest.raises(RuntimeError, match=r"Use one of them: remove aiohttp_session\.setup"):
        await runner.setup()
    await runner.cleanup()


@THEIR_WARNING
async def test_both_with_different_cookie_names_keep_their_data(aiohttp_client: Any) -> None:
    """The way out the error names: different cookie names, and each library keeps its own."""
    app = web.Application()
    aiohttp_session.setup(app, their_storage(cookie_name="LEGACY_SESSION"))
    aio_sessions.setup(app)
    app.router.add_get("/", both)
    client: Client = await aiohttp_client(app)
    assert await (await client.get("/")).json() == {"ours": None, "theirs": None}
    assert await (await client.get("/")).json() == {"ours": 1, "theirs": 1}
