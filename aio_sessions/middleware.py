"""The aiohttp middleware, and the request and socket state it keeps.

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

from .activity import SocketActivity
from .config import SessionConfig, check_store
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
        if session is None or not self.manager.commit_due(session):
            return
        cookie = await self.manager.commit(session, socket=socket)
        if cookie is not None:
            self.manager.transport.send(request, response, cookie, session.max_age)


_STATE: Final = web.RequestKey("aio_sessions.state", _RequestState)
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
        changes = sockets.changes
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
