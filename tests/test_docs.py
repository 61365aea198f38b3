"""Every Python block of the documentation runs as a reader would use it, through a real server.

A ```python block (in README.md, docs/, examples/ or bench/) needs an HTML comment on the line
right above its fence, which GitHub and mkdocs do not show, saying how a reader uses it:

``<!-- doc-test: handler -->``
    The body of a handler. It runs as ``async def handler(request)``, with ``web`` and every
    public name of aio_sessions in scope, at GET / of an app with ``setup(app)``. It is
    requested twice (a new session, then the one the first request made): both answer 200.
``<!-- doc-test: app SCENARIO -->``
    A module that defines ``app``; the scenario of that name (below) serves and exercises it.
``<!-- doc-test: module SCENARIO -->``
    A module that defines something else (a view, a store); its scenario uses it.
``<!-- doc-test: manager -->``
    Code that awaits at top level, given ``app`` (served, with ``setup(app)``) and
    ``session_id``: a live session of the user "alice", with a WebSocket open.
``<!-- doc-test: store -->``
    Code that assigns ``store``, maybe several times: every store it builds serves an app for
    two requests. Redis addresses are replaced (see ``at_suite_redis``): ``127.0.0.1:6379`` is
    the suite's Redis, ``127.0.0.1:7000`` its Redis Cluster; ``"127.0.0.1", 11211`` is the
    suite's memcached.

Every block runs with ``SESSION_KEY`` (a fresh Fernet key) and ``SESSION_SECRET`` (a fresh
``secret=``) in the environment and must log
nothing at WARNING or above. A block without a marker, or with an unknown kind or scenario,
fails: new documentation cannot slip through untested.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import logging
import os
import re
import secrets
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import CodeType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from pytest_aiohttp import AiohttpClient
from yarl import URL

import aio_sessions
import aio_sessions.security
from aio_sessions import EncryptedCookieStore, Store, get_manager, get_session, require_session
from aio_sessions.stores.base import SessionRecord
from aio_sessions.stores.memcached import MemcachedStore
from aio_sessions.stores.redis import RedisStore

from .conftest import (
    MakeClient,
    aiohttp_session_client,
    read,
    replay,
    send_cookie,
    session_cookie,
)

Client = TestClient[web.Request, web.Application]
Namespace = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    {
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/**/*.md"),
        *ROOT.glob("examples/**/*.md"),
        *ROOT.glob("bench/**/*.md"),
    }
)
FENCE = re.compile(r"(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)")
MARKER = re.compile(r"\s*<!--\s*doc-test:(?P<spec>.*?)-->\s*")
DAY = 24 * 3600


# -- finding the blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    path: Path
    number: int  # among the file's Python blocks, from 1
    line: int  # the file's line number of the block's first line of code
    code: str
    marker: str | None  # what follows "doc-test:" on the line above the fence, if anything

    @property
    def name(self) -> str:
        page = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{page.as_posix()}#{self.number}"


def read_blocks(path: Path) -> list[Block]:
    """The Python blocks of a Markdown file (fenced with ``` or ~~~, info string py...)."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.fullmatch(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        closing = re.compile(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*")
        end = i + 1
        while end < len(lines) and not closing.fullmatch(lines[end]):
            end += 1
        if opening["info"].strip().lower().startswith("py"):
            marker = MARKER.fullmatch(lines[i - 1]) if i else None
            code = "\n".join(re.sub(rf"^ {{0,{indent}}}", "", line) for line in lines[i + 1 : end])
            spec = marker["spec"].strip() if marker else None
            blocks.append(Block(path, len(blocks) + 1, i + 2, code + "\n", spec))
        i = end + 1
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in read_blocks(path)]


# -- running a block -------------------------------------------------------------------------


@dataclass
class Harness:
    """What a block's test has at hand: real servers and the suite's fixtures."""

    aiohttp_client: AiohttpClient
    fixtures: pytest.FixtureRequest

    async def serve(self, app: web.Application) -> Client:
        return await self.aiohttp_client(app)


def parse(block: Block, code: str | None = None) -> ast.Module:
    """The block's code (or a substitute of the same lines), numbered as in its file."""
    tree = ast.parse(block.code if code is None else code, filename=str(block.path))
    ast.increment_lineno(tree, block.line - 1)
    return tree


def compiled(block: Block, tree: ast.Module, *, top_level_await: bool = False) -> CodeType:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if top_level_await else 0
    # dont_inherit: the block sees none of this module's __future__ imports, as when pasted.
    code: CodeType = compile(tree, str(block.path), "exec", flags=flags, dont_inherit=True)
    return code


def run_module(block: Block) -> Namespace:
    namespace: Namespace = {"__name__": "docs_example"}  # not __main__: no web.run_app
    exec(compiled(block, parse(block)), namespace)
    return namespace


def handler_scope() -> Namespace:
    """The names a handler module has imported: ``web`` and aio_sessions' public names."""
    scope: Namespace = {"__name__": "docs_example", "web": web}
    scope.update({name: getattr(aio_sessions, name) for name in aio_sessions.__all__})
    return scope


async def run_handler(block: Block, h: Harness) -> None:
    wrapper = parse(block, "async def handler(request):\n    return web.Response(text='ok')\n")
    ast.increment_lineno(wrapper, -1)  # the def on the fence's line
    handler = wrapper.body[0]
    assert isinstance(handler, ast.AsyncFunctionDef)
    handler.body[:0] = parse(block).body
    scope = handler_scope()
    exec(compiled(block, wrapper), scope)
    app = web.Application()
    aio_sessions.setup(app)
    app.router.add_get("/", scope["handler"])
    client = await h.serve(app)
    for session in ("a new session", "the session the first request made"):
        resp = await client.get("/")
        assert resp.status == 200, f"{block.name} with {session}: {await resp.text()}"


@require_session("user")
async def open_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for _ in ws:
        pass
    return ws


async def run_manager(block: Block, h: Harness) -> None:
    app = web.Application()
    manager = aio_sessions.setup(app)
    app.router.add_get("/ws", open_socket)
    client = await h.serve(app)
    session_id = await manager.create({"user": "alice"})
    own = str(client.make_url("/").origin())
    async with client.ws_connect("/ws", origin=own, headers=cookie_header(session_id)):
        assert manager.sockets.for_session(session_id)
        namespace: Namespace = {"__name__": "docs_example", "app": app, "session_id": session_id}
        result = eval(compiled(block, parse(block), top_level_await=True), namespace)
        if inspect.iscoroutine(result):
            await result


def at_suite_redis(block: Block, fixtures: pytest.FixtureRequest) -> str:
    """The block's code, its Redis and memcached addresses replaced by the servers the suite
    runs.

    The docs write ``host="127.0.0.1", port=6379`` or ``redis://127.0.0.1:6379/0`` for a
    Redis, port 7000 for a Redis Cluster and ``"127.0.0.1", 11211`` for memcached; any other
    spelling of those ports fails here.
    """
    code = block.code
    for port, fixture in (("6379", "redis_url"), ("7000", "redis_cluster_url")):
        forms = (f'host="127.0.0.1", port={port}', f"redis://127.0.0.1:{port}/0")
        found = code.count(port)
        if not found:
            continue
        assert sum(code.count(form) for form in forms) == found, (
            f"{block.name}: write the Redis address as one of {forms}"
        )
        url = URL(fixtures.getfixturevalue(fixture))
        code = code.replace(forms[0], f'host="{url.host}", port={url.port}')
        code = code.replace(forms[1], str(url))
    if "11211" in code:
        form = '"127.0.0.1", 11211'
        assert code.count(form) == code.count("11211"), f"{block.name}: write memcached as {form}"
        host, port = fixtures.getfixturevalue("memcached_address")
        code = code.replace(form, f'"{host}", {port}')
    return code


async def count(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["n"] = session.get("n", 0) + 1
    return web.Response(text=str(session["n"]))


async def run_store(block: Block, h: Harness) -> None:
    namespace: Namespace = {"__name__": "docs_example"}
    served: list[Store] = []
    for statement in parse(block, at_suite_redis(block, h.fixtures)).body:
        exec(compiled(block, ast.Module([statement], type_ignores=[])), namespace)
        store = namespace.get("store")
        if store is None or any(store is seen for seen in served):
            continue
        assert isinstance(store, Store), f"{block.name}: store is a {type(store).__name__}"
        served.append(store)
        app = web.Application()
        aio_sessions.setup(app, store)
        app.router.add_get("/", count)
        client = await h.serve(app)
        try:
            assert [await (await client.get("/")).text() for _ in range(2)] == ["1", "2"]
        finally:
            await client.close()  # the app's cleanup closes the store
            if isinstance(store, RedisStore):
                await store.client.aclose()  # a client the block made: the store leaves it open
            if isinstance(store, MemcachedStore):
                await store.client.close()
    assert served, f"{block.name} builds no store"


# -- scenarios: what `app` and `module` blocks are for --------------------------------------

Scenario = Callable[[Namespace, Harness], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}
# Scenarios that run aiohttp-session, whose string app keys aiohttp warns about.
WITH_AIOHTTP_SESSION: set[str] = set()


def scenario(name: str, *, aiohttp_session: bool = False) -> Callable[[Scenario], Scenario]:
    def register(func: Scenario) -> Scenario:
        SCENARIOS[name] = func
        if aiohttp_session:
            WITH_AIOHTTP_SESSION.add(name)
        return func

    return register


def cookie_header(token: str) -> dict[str, str]:
    return {"Cookie": f"AIOHTTP_SESSION={token}"}


async def their_cookie(aiohttp_client: AiohttpClient, key: str | bytes) -> str:
    """A cookie made by aiohttp-session's EncryptedCookieStorage, for the user alice."""
    from aiohttp_session.cookie_storage import EncryptedCookieStorage

    theirs: Client = await aiohttp_session_client(aiohttp_client, EncryptedCookieStorage(key))
    await theirs.get("/", params={"set": "user", "value": "alice"})
    return session_cookie(theirs)


def aged(token: str, key: str | bytes, days: float) -> str:
    """The same cookie as if it had been made ``days`` ago."""
    fernet = Fernet(key)
    made = int(time.time() - days * DAY)
    return fernet.encrypt_at_time(fernet.decrypt(token.encode()), made).decode()


@scenario("visits")
async def visits(namespace: Namespace, h: Harness) -> None:
    client = await h.serve(namespace["app"])
    assert await (await client.get("/")).text() == "visits: 1"
    assert await (await client.get("/")).text() == "visits: 2"


@scenario("login")
async def login(namespace: Namespace, h: Harness) -> None:
    client = await h.serve(namespace["app"])
    assert await (await client.get("/")).text() == "hello stranger"
    resp = await client.post("/login", data={"user": "alice"})
    assert await resp.text() == "hello alice"
    resp = await client.post("/logout")
    assert await resp.text() == "hello stranger"


@scenario("websocket-chat")
async def websocket_chat(namespace: Namespace, h: Harness) -> None:
    app = namespace["app"]
    client = await h.serve(app)
    own = str(client.make_url("/").origin())
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", origin=own)
    assert refused.value.status == 401
    sid = await get_manager(app).create({"user": "ann"})
    async with client.ws_connect("/ws", origin=own, headers=cookie_header(sid)) as ws:
        assert await ws.receive_str() == "hello ann"
        await ws.send_str("ping")
        await ws.close()
    assert "last_seen" in (await get_manager(app).get(sid) or {})


@scenario("live-feed")
async def live_feed(namespace: Namespace, h: Harness) -> None:
    app = namespace["app"]
    client = await h.serve(app)
    manager = get_manager(app)
    member = await manager.create({"user": "bob", "role": "member"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/admin/feed", headers=cookie_header(member))
    assert refused.value.status == 403
    sid = await manager.create({"user": "ann", "role": "admin"})
    own = str(client.make_url("/").origin())
    async with client.ws_connect("/admin/feed", origin=own, headers=cookie_header(sid)) as ws:
        assert await manager.update(sid, {"theme": "dark"})
        assert await ws.receive_json(timeout=1) == {"changed": ["theme"], "theme": "dark"}
        assert await manager.update(sid, {"role": "member"})
        closed = await ws.receive(timeout=1)
        assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4003)


@scenario("anonymous-socket")
async def anonymous_socket(namespace: Namespace, h: Harness) -> None:
    """A socket that never writes stores nothing; one that writes names the browser's session."""
    app = namespace["app"]
    manager = get_manager(app)
    client = await h.serve(app)
    async with client.ws_connect("/lobby") as ws:
        assert "AIOHTTP_SESSION=" in ws._response.headers["Set-Cookie"]
    assert await manager.count() == 0
    async with client.ws_connect("/lobby") as ws:
        await ws.send_str("ann")
        sid = session_cookie(client)
        for _ in range(200):
            if await manager.get(sid):
                break
            await asyncio.sleep(0.01)
    assert await (await client.get("/")).text() == "hello ann"
    assert await manager.count() == 1


@scenario("ws-touch")
async def ws_touch(namespace: Namespace, h: Harness) -> None:
    """A message on the socket of a session idle for ten minutes extends it by idle_timeout."""
    app = namespace["app"]
    manager = get_manager(app)
    client = await h.serve(app)
    sid = await manager.create({"user": "ann"})
    async with client.ws_connect("/feed", headers=cookie_header(sid)) as ws:
        now = time.time()  # ten minutes idle since the handshake, as far as the store knows:
        record = SessionRecord(sid, {"user": "ann"}, int(now) - 600, accessed=now - 600)
        await manager.store.save(record, None, 1800)
        await ws.send_str("hi")
        assert await ws.receive_str() == "ann: hi"
        for _ in range(200):
            if (await manager.expires_at(record.id) or 0) > now + 1700:
                break
            await asyncio.sleep(0.01)
    assert (await manager.expires_at(record.id) or 0) > now + 1700


@scenario("admin-view")
async def admin_view(namespace: Namespace, h: Harness) -> None:
    app = web.Application()
    manager = aio_sessions.setup(app)
    app.router.add_view("/admin", namespace["Admin"])
    client = await h.serve(app)
    assert (await client.get("/admin")).status == 401
    sid = await manager.create({"user": "ann", "role": "admin"})
    resp = await client.get("/admin", headers=cookie_header(sid))
    assert (resp.status, await resp.text()) == (200, "admin area")


@scenario("devices")
async def devices(namespace: Namespace, h: Harness) -> None:
    """Two devices of alice: listed, one ended from the other, then the others logged out."""
    client = await h.serve(namespace["app"])
    phone = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"User-Agent": "Phone/1.0"}
    )
    try:
        for device in (client.session, phone):
            await device.post(client.make_url("/login"), data={"user": "alice"})
        listed = await (await client.get("/account")).json()
        [other] = [d for d in listed if not d["this_device"]]
        assert len(listed) == 2
        assert other["device"] == "Phone/1.0"
        form = {"handle": other["handle"]}
        assert await (await client.post("/account/end", data=form)).json() == {"ended": True}
        assert (await phone.get(client.make_url("/account"))).status == 401
        await phone.post(client.make_url("/login"), data={"user": "alice"})
        resp = await client.post("/account/log-out-others")
        assert await resp.json() == {"ended": 1}
        assert len(await (await client.get("/account")).json()) == 1
    finally:
        await phone.close()


@scenario("store-outline")
async def store_outline(namespace: Namespace, h: Harness) -> None:
    my_store = namespace["MyStore"]
    assert issubclass(my_store, Store)
    assert isinstance(my_store(), Store)  # no coroutine of the protocol is missing


@scenario("aiohttp-session", aiohttp_session=True)
async def aiohttp_session_app(namespace: Namespace, h: Harness) -> None:
    import aiohttp_session

    async def log_in(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        session["user"] = "alice"
        return web.Response(text="ok")

    app = namespace["app"]
    app.router.add_get("/login", log_in)
    theirs = await h.serve(app)
    assert (await theirs.get("/login")).status == 200
    make_client: MakeClient = h.fixtures.getfixturevalue("make_client")
    ours = await make_client(store=EncryptedCookieStore(os.environ["SESSION_KEY"]))
    assert await replay(ours, "/read", session_cookie(theirs)) == {
        "data": {"user": "alice"},
        "new": False,
    }


@scenario("old-cookies", aiohttp_session=True)
async def old_cookies(namespace: Namespace, h: Harness) -> None:
    """With max_age=30 days, aiohttp-session's cookies older than 14 days still log in."""
    app = namespace["app"]
    app.router.add_get("/read", read)
    ours = await h.serve(app)
    key = os.environ["SESSION_KEY"]
    token = await their_cookie(h.aiohttp_client, key)
    for days, logged_in in ((0, True), (20, True), (31, False)):
        data = (await replay(ours, "/read", aged(token, key, days)))["data"]
        assert data == ({"user": "alice"} if logged_in else {}), f"a cookie {days} days old"


@scenario("sub-app-logout")
async def sub_app_logout(namespace: Namespace, h: Harness) -> None:
    app = namespace["app"]
    manager = get_manager(app)
    client = await h.serve(app)
    alice = [await manager.create({"user": "alice"}) for _ in range(2)]
    bob = await manager.create({"user": "bob"})
    resp = await client.post("/admin/logout-everywhere", headers=cookie_header(alice[0]))
    assert (resp.status, await resp.text()) == (200, "2 sessions ended")
    assert [await manager.get(sid) for sid in alice] == [None, None]
    assert await manager.get(bob) == {"user": "bob"}


@scenario("user-key")
async def user_key(namespace: Namespace, h: Harness) -> None:
    async def log_in(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["user"] = {"name": "Ann", "admin": False}
        session["user_id"] = 42
        return web.Response(text="ok")

    app = namespace["app"]
    app.router.add_post("/login", log_in)
    client = await h.serve(app)
    assert (await client.post("/login")).status == 200
    assert await get_manager(app).logout_user("42") == 1


@scenario("signed-ids")
async def signed_ids(namespace: Namespace, h: Harness) -> None:
    client = await h.serve(namespace["app"])
    assert await (await client.get("/")).text() == "visits: 1"
    token = session_cookie(client)
    assert token.count(".") == 1
    assert await (await client.get("/")).text() == "visits: 2"
    forged = "A" + token[1:] if token[0] != "A" else "B" + token[1:]
    for bad in (forged, token.partition(".")[0]):
        assert await (await send_cookie(client, "/", bad)).text() == "visits: 1"
    assert await (await client.get("/")).text() == "visits: 3"  # untouched by the forgeries


@scenario("token-header")
async def token_header(namespace: Namespace, h: Harness) -> None:
    client = await h.serve(namespace["app"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as native:
        resp = await native.post(client.make_url("/login"), data={"user": "ann"})
        token = resp.headers["X-Session-Token"]
        headers = {"X-Session-Token": token}
        async with native.ws_connect(client.make_url("/updates"), headers=headers) as ws:
            assert await ws.receive_str() == "hello ann"
        resp = await native.post(client.make_url("/logout"), headers=headers)
        assert resp.headers["X-Session-Token"] == ""
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await native.ws_connect(client.make_url("/updates"), headers=headers)
        assert refused.value.status == 401


@scenario("security")
async def security(namespace: Namespace, h: Harness) -> None:
    """aiohttp-security's demo flow; log out everywhere closes the user's socket."""
    client = await h.serve(namespace["app"])
    assert (await client.get("/public")).status == 401
    resp = await client.post("/login", data={"username": "bob", "password": "builder"})
    assert await resp.text() == "Hello, bob!"
    assert [(await client.get(p)).status for p in ("/public", "/protected")] == [200, 403]
    async with client.ws_connect("/feed", origin=str(client.make_url("/").origin())) as ws:
        assert await ws.receive_str() == "hello bob"
        assert await (await client.post("/logout-everywhere")).text() == "1 sessions ended"
        closed = await ws.receive(timeout=1)
        assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4001)
    assert (await client.get("/public")).status == 401
    await client.post("/login", data={"username": "alice", "password": "wonderland"})
    assert (await client.get("/protected")).status == 200
    assert await (await client.post("/logout")).text() == "You have been logged out"
    assert (await client.get("/protected")).status == 401


@scenario("behind-proxy")
async def behind_proxy(namespace: Namespace, h: Harness) -> None:
    """Two processes' apps on one Redis behind a TLS proxy: a session and its logout reach
    both, and the forwarded headers make the cookie Secure and the page's origin the app's."""
    h.fixtures.getfixturevalue("monkeypatch").setenv(
        "REDIS_URL", h.fixtures.getfixturevalue("redis_url")
    )
    first, second = [await h.serve(await namespace["create_app"]()) for _ in range(2)]
    for client in (first, second):  # each process listens for the other's events
        store = get_manager(client.app).store
        assert isinstance(store, RedisStore)
        await until_subscribed(store)
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}
    resp = await first.post("/login", data={"user": "ann"}, headers=proxy, allow_redirects=False)
    cookie = resp.cookies["AIOHTTP_SESSION"]
    assert cookie["secure"]
    sent = cookie_header(cookie.value)
    assert await (await second.get("/", headers=sent)).text() == "hello ann"
    page = "https://app.example"
    handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Origin": page}
    for headers, refused in [
        ({**sent, **handshake}, (403, "WebSocket origin not allowed")),  # no forwarded headers
        ({**proxy, **handshake}, (401, "A session is required")),  # no cookie
    ]:
        resp = await second.get("/feed", headers=headers)
        assert (resp.status, await resp.text()) == refused
    async with second.ws_connect("/feed", origin=page, headers={**sent, **proxy}) as ws:
        assert await ws.receive_str() == "hello ann"
        await first.post("/logout", headers={**sent, **proxy}, allow_redirects=False)
        closed = await ws.receive(timeout=5)
        assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4001)
    assert await (await second.get("/", headers=sent)).text() == "hello stranger"


async def until_subscribed(store: RedisStore) -> None:
    """Wait until the store's process listens on its event channel."""
    for _ in range(500):
        [(_, listeners)] = await store.client.pubsub_numsub(store.channel)
        if listeners:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the app never subscribed to its event channel")


@scenario("csrf")
async def csrf(namespace: Namespace, h: Harness) -> None:
    """A post without the session's token is refused; with it, the flash shows once, escaped."""
    client = await h.serve(namespace["app"])
    page = await (await client.get("/comments")).text()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    token = found[1]
    for forged in ({}, {"csrf_token": token[:-1]}, {"csrf_token": "é" * len(token)}):
        resp = await client.post("/comments", data={"text": "forged", **forged})
        assert (resp.status, await resp.text()) == (403, "CSRF token missing or wrong")
    resp = await client.post("/comments", data={"text": "<b>hi</b>", "csrf_token": token})
    assert resp.status == 200  # after the redirect
    assert '<p class="flash">Posted: &lt;b&gt;hi&lt;/b&gt;</p>' in await resp.text()
    assert "Posted" not in await (await client.get("/comments")).text()
    headers = {"X-CSRF-Token": token}  # as a script sends it
    resp = await client.post("/comments", data={"text": "x"}, headers=headers)
    assert '<p class="flash">Posted: x</p>' in await resp.text()
    client.session.cookie_jar.clear()  # another browser, which never got the token's session
    resp = await client.post("/comments", data={"text": "forged", "csrf_token": token})
    assert resp.status == 403


@scenario("custom-codec")
async def custom_codec(namespace: Namespace, h: Harness) -> None:
    """The block's pair brings a datetime back as a datetime, in its store and in Redis."""

    async def stamp(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.setdefault("at", datetime(2026, 1, 2, tzinfo=timezone.utc))
        return web.Response(text=type(session["at"]).__name__)

    redis = RedisStore.from_url(
        h.fixtures.getfixturevalue("redis_url"),
        key_prefix="docs-codec:",
        encoder=namespace["encode"],
        decoder=namespace["decode"],
    )
    for store in (namespace["store"], redis):
        app = web.Application()
        aio_sessions.setup(app, store)
        app.router.add_get("/", stamp)
        client = await h.serve(app)
        assert [await (await client.get("/")).text() for _ in range(2)] == ["datetime"] * 2


# -- the tests -------------------------------------------------------------------------------

KINDS = ("handler", "app", "module", "manager", "store")
HOW_TO_MARK = (
    "put <!-- doc-test: KIND --> on the line above its fence, KIND one of handler, "
    "app SCENARIO, module SCENARIO, manager, store (tests/test_docs.py says what each runs)"
)


def kind_of(block: Block) -> tuple[str, str]:
    """The block's kind and scenario (empty for kinds without one); fails on a bad marker."""
    where = f"{block.name} (line {block.line - 1})"
    if block.marker is None:
        pytest.fail(f"{where} has no doc-test marker: {HOW_TO_MARK}", pytrace=False)
    kind, _, name = block.marker.partition(" ")
    name = name.strip()
    if kind not in KINDS:
        pytest.fail(f"{where}: unknown kind {kind!r}: {HOW_TO_MARK}", pytrace=False)
    if kind in ("app", "module") and name not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        pytest.fail(
            f"{where}: {kind} needs a known scenario, not {name!r} ({known})", pytrace=False
        )
    if kind not in ("app", "module") and name:
        pytest.fail(f"{where}: {kind} takes no scenario, got {name!r}", pytrace=False)
    return kind, name


def block_param(block: Block) -> Any:
    scenario_name = (block.marker or "").partition(" ")[2].strip()
    marks = []
    if scenario_name in WITH_AIOHTTP_SESSION:
        marks.append(pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"))
    return pytest.param(block, id=block.name, marks=marks)


@pytest.mark.parametrize("block", [block_param(block) for block in ALL_BLOCKS])
async def test_doc_block(
    block: Block,
    aiohttp_client: AiohttpClient,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kind, name = kind_of(block)
    monkeypatch.setenv("SESSION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("SESSION_SECRET", secrets.token_urlsafe(32))
    h = Harness(aiohttp_client, request)
    if kind == "handler":
        await run_handler(block, h)
    elif kind == "manager":
        await run_manager(block, h)
    elif kind == "store":
        await run_store(block, h)
    else:
        namespace = run_module(block)
        if kind == "app":
            assert isinstance(namespace.get("app"), web.Application), f"{block.name}: no app"
        await SCENARIOS[name](namespace, h)
    logged = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], logged


def test_blocks_are_found() -> None:
    """The harness sees the blocks of every page that has some (a broken finder runs none)."""
    pages = {block.path.relative_to(ROOT).as_posix() for block in ALL_BLOCKS}
    assert {
        "README.md",
        "docs/index.md",
        "docs/session.md",
        "docs/options.md",
        "docs/stores.md",
        "docs/websockets.md",
        "docs/migration.md",
        "docs/security.md",
        "docs/deployment.md",
        "docs/csrf.md",
        "docs/devices.md",
    } <= pages
    assert all(block.code.strip() for block in ALL_BLOCKS)


def test_reference_covers_every_public_name() -> None:
    """docs/reference.md renders each name of ``aio_sessions.__all__`` (and of the optional
    ``aio_sessions.security``) from its docstring."""
    rendered = re.findall(r"^::: ([\w.]+)\s*$", (ROOT / "docs/reference.md").read_text(), re.M)
    missing = [
        f"{module.__name__}.{name}"
        for module in (aio_sessions, aio_sessions.security)
        for name in module.__all__
        if f"{module.__name__}.{name}" not in rendered
    ]
    assert not missing, f"add a line '::: NAME' to docs/reference.md for: {missing}"


def test_finder_and_markers(tmp_path: Path) -> None:
    """Fences of every form are found; a missing or unknown marker fails the block's test."""
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            <!-- doc-test: handler -->
            ```python
            x = 1
            ```

            ```sh
            echo not python
            ```

            - an item:

              <!-- doc-test: app no-such-scenario -->
              ~~~py
              y = 2
              ~~~

            ````python
            ```
            ````
            """
        )
    )
    blocks = read_blocks(page)
    assert [(b.number, b.line, b.code, b.marker) for b in blocks] == [
        (1, 3, "x = 1\n", "handler"),
        (2, 14, "y = 2\n", "app no-such-scenario"),
        (3, 18, "```\n", None),
    ]
    assert kind_of(blocks[0]) == ("handler", "")
    for bad, message in [
        (blocks[1], "needs a known scenario"),
        (blocks[2], "has no doc-test marker"),
        (Block(page, 4, 1, "", "handlr"), "unknown kind 'handlr'"),
        (Block(page, 5, 1, "", "store redis"), "takes no scenario"),
    ]:
        with pytest.raises(pytest.fail.Exception, match=message):
            kind_of(bad)


def test_every_scenario_is_used() -> None:
    used = {(block.marker or "").partition(" ")[2].strip() for block in ALL_BLOCKS}
    assert set(SCENARIOS) <= used, f"scenarios no block uses: {set(SCENARIOS) - used}"


@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
async def test_aiohttp_session_cookies_last_14_days_without_max_age(
    aiohttp_client: AiohttpClient, make_client: MakeClient
) -> None:
    """docs/migration.md: with neither max_age nor idle_timeout, a cookie aiohttp-session made
    loads with the same key until it is 14 days old, and is refused after that."""
    key = Fernet.generate_key().decode()  # aiohttp-session takes bytes as 32 raw bytes
    token = await their_cookie(aiohttp_client, key)
    ours = await make_client(store=EncryptedCookieStore(key))
    assert await replay(ours, "/read", token) == {"data": {"user": "alice"}, "new": False}
    assert (await replay(ours, "/read", aged(token, key, 13.9)))["data"] == {"user": "alice"}
    assert await replay(ours, "/read", aged(token, key, 14.1)) == {"data": {}, "new": True}
