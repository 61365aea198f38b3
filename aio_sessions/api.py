"""An app's entry points: ``setup``, ``get_manager``, ``get_session``, ``new_session``."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ._checks import describe
from .conflicts import refuse_aiohttp_session
from .manager import SessionManager
from .middleware import SessionMiddleware, request_state, session_middleware
from .session import Session
from .stores.base import Store

_MANAGER: Final = web.AppKey("aio_sessions.manager", SessionManager)


def setup(app: web.Application, store: Store | None = None, **options: Any) -> SessionManager:
    """Give ``app`` sessions kept in ``store`` (a MemoryStore by default).

    ``options`` are the cookie and timeout settings (docs/options.md). Every argument is
    checked here, not on the first request: a wrong type raises TypeError, a bad value
    ValueError, a second ``setup`` (or one after ``session_middleware``) RuntimeError, and
    so does aiohttp-session's middleware on the same app, here or at startup.
    Returns the app's SessionManager.
    """
    if not isinstance(app, web.Application):
        raise TypeError(
            describe("app", app, "an aiohttp web.Application", "e.g. setup(app, MemoryStore())")
        )
    if _MANAGER in app or any(isinstance(m, SessionMiddleware) for m in app.middlewares):
        # Two middlewares would each load and commit the session, with their own options.
        raise RuntimeError(
            "sessions are already set up on this app: call setup(app, store, **options) "
            "once, with every option, and do not add session_middleware() as well"
        )
    middleware = session_middleware(store, **options)
    refuse_aiohttp_session(app, middleware.manager.config.cookie_name)
    app[_MANAGER] = middleware.manager
    app.middlewares.append(middleware)
    app.on_response_prepare.append(middleware.on_response_prepare)
    manager = middleware.manager

    async def start(app: web.Application) -> None:
        await manager.sockets.start()

    async def close(app: web.Application) -> None:
        await manager.sockets.stop()
        await middleware.close()
        await manager.devices.close()
        await manager.store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)
    return manager


def get_manager(app: web.Application | web.Request) -> SessionManager:
    """The SessionManager that ``setup`` installed on ``app``.

    Given a request, it is found the way aiohttp finds shared state (``config_dict``), so
    handlers of sub-applications reach the manager of the app that set sessions up.
    Raises RuntimeError when sessions are not set up there.
    """
    try:
        if isinstance(app, web.Request):
            return app.config_dict[_MANAGER]
        return app[_MANAGER]
    except KeyError:
        where = "this request's apps" if isinstance(app, web.Request) else "this app"
        hint = (
            "" if isinstance(app, web.Request) else " (in a sub-app handler, get_manager(request))"
        )
        raise RuntimeError(
            f"aio_sessions is not set up on {where}: call aio_sessions.setup(app){hint}"
        ) from None


async def get_session(request: web.Request) -> Session:
    """The request's session, loaded on first use; the same object on every call.

    Raises StoreUnavailable (the middleware answers 503) when the store cannot be reached,
    and RuntimeError when the app has no ``setup``.
    """
    state = request_state(request)
    session = state.session
    return await state.load(request) if session is None else session


async def new_session(request: web.Request) -> Session:
    """Destroy the request's current session, if any, and return it fresh: empty, with a
    new id, its old record deleted and its old sockets closed when the response is committed.

    It is the same ``Session`` object that ``get_session`` returned before and returns
    afterwards (a request has one session), so references taken earlier see the fresh
    session too; aiohttp-session's ``new_session`` instead returns a new object.
    """
    session = await get_session(request)
    session.invalidate()
    return session
