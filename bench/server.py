"""One benchmark server: ``python bench/server.py VARIANT --port P [--redis-url U] [--path P]``.

Every variant serves the same routes, so the load generators need not know which one runs:

- ``POST /login?user=NAME``  creates a session holding ``user`` and ``counter`` (Set-Cookie);
- ``GET /read``               reads ``user`` from the session;
- ``GET /write``              increments ``counter`` in the session;
- ``GET /append?v=VALUE``     stores VALUE as a key of its own in the session (aio_sessions;
  the fault run's write, whose answer says which value was stored);
- ``GET /ws``                 a WebSocket that waits for the client to close it (aio_sessions
  variants guard it with ``@require_session("user")``; bare has no guard);
- ``POST /admin/logout?user=NAME``  ``get_manager(app).logout_user(NAME)`` (aio_sessions);
- ``POST /admin/push?user=NAME``    ``get_manager(app).sockets.send_to_user(NAME, note)``;
- ``GET /admin/stats``        runs the garbage collector, returns RSS and open sockets.

``bare`` does the same non-session work (a dict lookup, a counter increment) without sessions:
it is the ceiling the session variants are compared with. ``bare-cookie`` also reads the
cookie with ``request.cookies`` (aiohttp's parser), the floor of any cookie-based session.
``bare-middleware`` adds a middleware and an ``on_response_prepare`` hook that do nothing:
what aiohttp charges any session library built like aiohttp-session or this one.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import resource
import secrets
import tempfile
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from aiohttp import web

#: The 32 raw bytes both encrypted-cookie variants use (aiohttp-session's key form).
SECRET_KEY = hashlib.sha256(b"aio_sessions bench key").digest()
COOKIE_NAME = "AIOHTTP_SESSION"

AIO_VARIANTS = ("aio-memory", "aio-cookie", "aio-redis", "aio-sqlite", "aio-file")
AHS_VARIANTS = ("ahs-simple", "ahs-encrypted", "ahs-redis")
BARE_VARIANTS = ("bare", "bare-cookie", "bare-middleware")
VARIANTS = (*BARE_VARIANTS, *AHS_VARIANTS, *AIO_VARIANTS)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def raise_nofile() -> None:
    """Raise the soft open-file limit to the hard one (10,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib() -> int:
    """This process's resident set size in KiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def ws_echo_until_closed(request: web.Request) -> web.WebSocketResponse:
    """Hold a WebSocket open until the peer closes it (or the server does)."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for _ in ws:
        pass
    return ws


# -- bare aiohttp: the ceiling ---------------------------------------------------------------


def bare_app(*, parse_cookie: bool = False, noop_middleware: bool = False) -> web.Application:
    """No sessions: the same non-session work on a dict.

    With ``parse_cookie`` the handlers also read the session cookie through
    ``request.cookies``, the least any cookie-based session does (aiohttp parses the header).
    With ``noop_middleware`` a middleware and a prepare hook that do nothing are installed.
    """
    state: dict[str, Any] = {"user": "bench", "counter": 0}
    sockets: set[web.WebSocketResponse] = set()

    async def login(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        # A cookie of the same size as aio_sessions' ids, so wrk sends the same headers.
        response.set_cookie(COOKIE_NAME, secrets.token_urlsafe(32))
        return response

    async def read(request: web.Request) -> web.Response:
        if parse_cookie:
            request.cookies.get(COOKIE_NAME)
        return web.Response(text=f"user={state.get('user')}")

    async def write(request: web.Request) -> web.Response:
        if parse_cookie:
            request.cookies.get(COOKIE_NAME)
        state["counter"] = state.get("counter", 0) + 1
        return web.Response(text=f"counter={state['counter']}")

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        sockets.add(ws)
        try:
            await ws.prepare(request)
            async for _ in ws:
                pass
        finally:
            sockets.discard(ws)
        return ws

    async def stats(request: web.Request) -> web.Response:
        gc.collect()
        return web.json_response({"rss_kib": rss_kib(), "sockets": len(sockets)})

    app = web.Application()
    if noop_middleware:

        @web.middleware
        async def nothing(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await handler(request)

        async def prepare_nothing(request: web.Request, response: web.StreamResponse) -> None:
            return None

        app.middlewares.append(nothing)
        app.on_response_prepare.append(prepare_nothing)
    app.router.add_post("/login", login)
    app.router.add_get("/read", read)
    app.router.add_get("/write", write)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/admin/stats", stats)
    return app


# -- the session variants --------------------------------------------------------------------


def add_session_routes(
    app: web.Application,
    get_session: Callable[[web.Request], Awaitable[MutableMapping[str, Any]]],
) -> None:
    """``GET /read`` and ``GET /write``: the same handlers for both session libraries."""

    async def read(request: web.Request) -> web.Response:
        session = await get_session(request)
        return web.Response(text=f"user={session.get('user')}")

    async def write(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["counter"] = session.get("counter", 0) + 1
        return web.Response(text=f"counter={session['counter']}")

    app.router.add_get("/read", read)
    app.router.add_get("/write", write)


# -- aiohttp-session -------------------------------------------------------------------------


def ahs_app(variant: str, redis_url: str | None) -> web.Application:
    """aiohttp-session with one of its storages."""
    # aiohttp-session keys the app with strings: aiohttp 3.14 warns, which is fine here.
    warnings.simplefilter("ignore")
    import aiohttp_session

    app = web.Application()
    storage: aiohttp_session.AbstractStorage
    if variant == "ahs-simple":
        storage = aiohttp_session.SimpleCookieStorage()
    elif variant == "ahs-encrypted":
        from aiohttp_session.cookie_storage import EncryptedCookieStorage

        storage = EncryptedCookieStorage(SECRET_KEY)
    else:
        from aiohttp_session.redis_storage import RedisStorage
        from redis.asyncio import Redis

        if redis_url is None:
            raise SystemExit("ahs-redis needs --redis-url")
        client = Redis.from_url(redis_url)
        storage = RedisStorage(client)

        async def close_redis(app: web.Application) -> None:
            await client.aclose()

        app.on_cleanup.append(close_redis)
    aiohttp_session.setup(app, storage)

    async def login(request: web.Request) -> web.Response:
        session = await aiohttp_session.new_session(request)
        session["user"] = request.query.get("user", "bench")
        session["counter"] = 0
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        gc.collect()
        return web.json_response({"rss_kib": rss_kib(), "sockets": 0})

    app.router.add_post("/login", login)
    add_session_routes(app, aiohttp_session.get_session)
    app.router.add_get("/admin/stats", stats)
    return app


# -- aio_sessions ----------------------------------------------------------------------------


def aio_app(variant: str, redis_url: str | None, path: str | None) -> web.Application:
    """aio_sessions with one of its stores (``path``: the SQLite file or the files' folder)."""
    import aio_sessions

    app = web.Application()
    store: aio_sessions.Store
    if variant == "aio-memory":
        store = aio_sessions.MemoryStore()
    elif variant == "aio-cookie":
        store = aio_sessions.EncryptedCookieStore(SECRET_KEY)
    elif variant == "aio-redis":
        from redis.asyncio import Redis

        if redis_url is None:
            raise SystemExit("aio-redis needs --redis-url")
        # The same plain client as the aiohttp-session variant, for a like-for-like race.
        client = Redis.from_url(redis_url)
        store = aio_sessions.RedisStore(client)

        async def close_redis(app: web.Application) -> None:
            await client.aclose()

        app.on_cleanup.append(close_redis)
    else:
        where = Path(path or tempfile.mkdtemp(prefix="aio-sessions-bench-"))
        if variant == "aio-sqlite":
            store = aio_sessions.SQLiteStore(where if path else where / "s.db")
        else:
            store = aio_sessions.FileStore(where)
    aio_sessions.setup(app, store)

    async def login(request: web.Request) -> web.Response:
        session = await aio_sessions.get_session(request)
        session.regenerate()
        session["user"] = request.query.get("user", "bench")
        session["counter"] = 0
        return web.Response(text="ok")

    @aio_sessions.require_session("user")
    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        # Written out, as bare_app's handler is: a call in between would cost a coroutine.
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async def append(request: web.Request) -> web.Response:
        # The fault run's write: a unique value as a key of its own, echoed when stored.
        value = request.query["v"]
        session = await aio_sessions.get_session(request)
        session[f"w{value}"] = 1
        return web.Response(text=value)

    async def logout(request: web.Request) -> web.Response:
        user = request.query.get("user", "bench")
        destroyed = await aio_sessions.get_manager(app).logout_user(user)
        return web.json_response({"destroyed": destroyed})

    async def push(request: web.Request) -> web.Response:
        user = request.query.get("user", "bench")
        note = {"type": "note", "text": "Build finished"}
        sent = await aio_sessions.get_manager(app).sockets.send_to_user(user, note)
        return web.json_response({"sent": sent})

    async def stats(request: web.Request) -> web.Response:
        gc.collect()
        sockets = len(aio_sessions.get_manager(app).sockets)
        return web.json_response({"rss_kib": rss_kib(), "sockets": sockets})

    app.router.add_post("/login", login)
    add_session_routes(app, aio_sessions.get_session)
    app.router.add_get("/append", append)
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/admin/logout", logout)
    app.router.add_post("/admin/push", push)
    app.router.add_get("/admin/stats", stats)
    return app


def make_app(variant: str, redis_url: str | None, path: str | None) -> web.Application:
    """The application of one variant."""
    if variant in BARE_VARIANTS:
        return bare_app(
            parse_cookie=variant == "bare-cookie", noop_middleware=variant == "bare-middleware"
        )
    if variant in AHS_VARIANTS:
        return ahs_app(variant, redis_url)
    return aio_app(variant, redis_url, path)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and serve on 127.0.0.1 until SIGTERM / SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url")
    parser.add_argument(
        "--path", help="aio-sqlite's file or aio-file's folder (default: in a temp folder)"
    )
    args = parser.parse_args(argv)
    raise_nofile()
    app = make_app(args.variant, args.redis_url, args.path)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
        shutdown_timeout=1.0,
    )


if __name__ == "__main__":
    main()
