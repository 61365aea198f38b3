"""The aiohttp middleware, ``setup`` and the request helpers.

A session is loaded lazily, on the first ``get_session``, and committed just before the
response's headers go out: by the middleware for responses the handler returns or raises,
and from ``on_response_prepare`` for responses the handler prepares itself (streams, file
responses, the 101 of a WebSocket handshake).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from ._checks import describe
from .activity import SocketActivity
from .config import SessionConfig, check_store
from .conflicts import refuse_aiohttp_session
from .devices import seen_by
from .errors import StoreUnavailable
from .manager import SessionManager
from .registry import Guard, SocketRegistry
from .session import Session, note_device
from .stores.base import Store
from .stores.memory import MemoryStore

log = logging.getLogger("aio_sessions")


class _RequestState:
    """One request's view of the session: loaded once, committed once.

    It does not hold the request (the request holds it): a cycle between the two would
    leave every request to the garbage collector.
    """

    __slots__ = ("committed", "guard", "manager", "session", "ws")

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.session: Session | None = None
        self.committed = False
        self.ws: web.WebSocketResponse | None = None
        #: What ``require_session`` asked of the session, for the socket's re-checks.
        self.guard: Guard | None = None

    async def load(self, request: web.BaseRequest) -> Session:
        """The request's session, by the tokens it presents (HTTP and WebSocket handshakes)."""
        tokens, stale = self.manager.transport.incoming(request)
        session = await self.manager.load(*tokens, stale=stale)
        if self.session is None:  # another task of this request may have won
            config = self.manager.config
            if config.track_devices:
                note_device(session, *seen_by(request, config))
            self.session = session
        return self.session

    async def commit(
        self, request: web.BaseRequest, response: web.StreamResponse, *, socket: bool = False
    ) -> None:
        """Save the session and put its cookie on ``response`` (once per request)."""
        self.committed = True
        session = self.session
        if session is None or not self.manager.commit_due(session, socket=socket):
            return
        cookie = await self.manager.commit(session, socket=socket)
        if cookie is not None:
            self.manager.transport.send(request, response, cookie, session.max_age)


_STATE: Final = web.RequestKey("aio_sessions.state", _RequestState)
_MANAGER: Final = web.AppKey("aio_sessions.manager", SessionManager)
#: The session a prepared WebSocketResponse was opened with, and the registry it is bound
#: in. Not the socket's Binding: that refers to the socket, and the cycle would leave every
#: closed socket, with its request and protocol, to the garbage collector.
_WS: Final = web.ResponseKey[tuple[Session, SocketRegistry]]("aio_sessions.ws")


class SessionMiddleware:
    """The session middleware; ``setup()`` installs it together with its prepare hook."""

    __middleware_version__ = 1

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self._hook_checked = False
        self._saving: set[asyncio.Task[str | None]] = set()
        self._activity = SocketActivity(manager) if manager.config.ws_touch else None

    def _check_hook(self, request: web.Request) -> None:
        """Say loudly, once, when ``on_response_prepare`` is missing (the middleware alone)."""
        self._hook_checked = True
        hook = self.on_response_prepare
        if any(hook in app.on_response_prepare for app in request.match_info.apps):
            return
        message = (
            "aio_sessions: the session middleware runs without its on_response_prepare hook, "
            "so sessions changed by streamed, file and WebSocket responses are lost and those "
            "responses carry no session cookie. Use aio_sessions.setup(app, store, ...) instead "
            "of session_middleware(), or also register "
            "app.on_response_prepare.append(middleware.on_response_prepare)"
        )
        log.error(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._hook_checked:
            self._check_hook(request)
        state = _RequestState(self.manager)
        request[_STATE] = state
        try:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if not state.committed:
                    await state.commit(request, exc)
                raise
            except BaseException:
                state.committed = True  # a crashed handler's half-done changes are dropped
                raise
            if state.session is None:  # never asked for: nothing to do
                state.committed = True
            elif not state.committed:
                await state.commit(request, response)
            elif state.session.dirty and await self._save_late(state.session):
                # The handler prepared the response itself (a stream, a WebSocket) and changed
                # the session afterwards: it is stored, but there is no cookie to send.
                log.warning("session cookie not sent: the response was already prepared")
            return response
        except StoreUnavailable as exc:
            log.error("session store unavailable: %s", exc)
            raise web.HTTPServiceUnavailable(
                text="Session store unavailable, please retry.",
                headers={"Retry-After": "1"},
            ) from exc
        finally:
            if state.ws is not None:
                self.manager.sockets.unbind(state.ws)
                if self._activity is not None:
                    self._activity.release(state.ws)
                state.ws = None  # the socket refers to the request, which refers to us

    async def _save_late(self, session: Session) -> str | None:
        """Commit what the handler changed after it prepared the response.

        Shielded: a socket ends when its peer leaves, and with aiohttp's
        ``handler_cancellation`` that disconnect cancels the handler, which must not lose
        the socket's last changes.
        """
        task = asyncio.ensure_future(self.manager.commit(session))
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_log_failure)  # nobody else will see how it ends
            raise

    async def close(self) -> None:
        """Finish the saves and end the touches under way (app cleanup, before the store
        closes)."""
        if self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)
        if self._activity is not None:
            await self._activity.stop()

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Commit before the headers of a response the handler prepares itself go out.

        A WebSocket handshake also binds the socket to its session (loaded if the handler
        did not ask for it), for ``get_ws_session`` and the socket registry, and with
        ``ws_touch`` counts what the socket receives as the session's activity.
        """
        try:
            state = request[_STATE]
        except KeyError:  # a request of another app, or before this middleware ran
            return
        if not isinstance(response, web.WebSocketResponse):
            if not state.committed:
                await state.commit(request, response)
            return
        session = state.session
        if session is None:
            session = await state.load(request)
        if not state.committed:
            await state.commit(request, response, socket=True)
        state.ws = response
        sockets = self.manager.sockets
        response[_WS] = session, sockets
        sockets.bind(response, session, state.guard)
        changes = self.manager.sockets.changes
        if changes.watch_due(session):
            # Before the 101 goes out: a save elsewhere right after the open is published.
            await changes.watch(session)
        if self._activity is not None:
            self._activity.watch(response, session)


def _log_failure(task: asyncio.Task[str | None]) -> None:
    """Log the failure of a save whose request was cancelled meanwhile."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("session not saved after the request was cancelled: %s", exc)


def session_middleware(store: Store | None = None, **options: Any) -> SessionMiddleware:
    """Build the middleware alone, aiohttp-session style.

    Prefer ``setup()``: it also registers ``middleware.on_response_prepare`` on
    ``app.on_response_prepare``, without which responses that the handler prepares itself
    (streams, WebSocket handshakes) cannot carry the session. Without that hook the first
    request logs an error and warns (RuntimeWarning). ``store`` and ``options`` are checked
    as ``setup`` checks them (TypeError, ValueError).
    """
    store = MemoryStore() if store is None else check_store(store)
    return SessionMiddleware(SessionManager(store, SessionConfig.from_options(options)))


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


def bound_to(ws: web.WebSocketResponse) -> tuple[Session, SocketRegistry]:
    """The session a prepared socket was opened with and the registry it is bound in.
    RuntimeError before ``ws.prepare()`` or on an app without ``setup``."""
    try:
        return ws[_WS]
    except KeyError:
        if not ws.prepared:
            raise RuntimeError(
                "no session on this WebSocket yet: await ws.prepare(request) first"
            ) from None
        raise RuntimeError(
            "no session on this WebSocket: call aio_sessions.setup(app) first"
        ) from None


def request_state(request: web.Request) -> _RequestState:
    """The session state of a request (item access: cheaper than ``Mapping.get``)."""
    try:
        return request[_STATE]
    except KeyError:
        raise RuntimeError(
            "no session middleware on this request: call aio_sessions.setup(app) first"
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
