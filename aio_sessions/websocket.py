"""WebSocket handlers: ``get_ws_session`` and the ``require_session`` guard."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import hdrs, web

from ._checks import check_bool, describe
from .changes import passes, session_changes
from .config import SessionConfig
from .middleware import bound_to, request_state
from .origins import check_origins, normalize_origin
from .registry import (
    CLOSE_SESSION_EXPIRED,
    CLOSE_SESSION_FORBIDDEN,
    CLOSE_SESSION_REVOKED,
    Check,
    Guard,
)
from .session import Session

__all__ = [
    "CLOSE_SESSION_EXPIRED",
    "CLOSE_SESSION_FORBIDDEN",
    "CLOSE_SESSION_REVOKED",
    "get_ws_session",
    "require_session",
    "session_changes",
]


async def get_ws_session(ws: web.WebSocketResponse) -> Session:
    """The session of the request that opened ``ws``; call it after ``await ws.prepare()``.

    It is the same ``Session`` as over HTTP: save changes with ``await session.save()``
    (they are also saved when the handler returns) and pick up what HTTP requests changed
    with ``await session.reload()``. Raises RuntimeError before ``ws.prepare()`` and on an
    app without ``setup``.
    """
    return bound_to(ws)[0]


_T = TypeVar("_T")
log = logging.getLogger("aio_sessions")


def _foreign_handshake(
    request: web.Request,
    config: SessionConfig,
    origins: tuple[str, ...],
    allow_missing: bool | None,
) -> bool:
    """Whether ``request`` is a WebSocket handshake from an origin that is not allowed."""
    headers = request.headers
    if headers.get(hdrs.UPGRADE, "").lower() != "websocket":
        return False
    origin = headers.get(hdrs.ORIGIN)
    if origin is None:
        return not (config.ws_allow_missing_origin if allow_missing is None else allow_missing)
    if origin in origins or origin in config.ws_origins:
        return False
    own = config.own_origin(request)
    return origin != own and normalize_origin(origin) not in (own, *origins, *config.ws_origins)


def _log_refused_origin(request: web.Request, config: SessionConfig) -> None:
    """Say why a handshake got 403: behind a proxy the app's own origin is often not what
    the browser used (docs/deployment.md). At INFO, beside aiohttp's access log: refusing
    foreign pages is routine. Values are quoted and cut: they are the client's."""
    origin = request.headers.get(hdrs.ORIGIN)
    log.info(
        "WebSocket handshake to %s refused: Origin %s is not this app's origin %r nor an "
        "allowed one (behind a proxy: trust_proxy=True and X-Forwarded-Proto/-Host)",
        request.path[:200],
        "missing" if origin is None else repr(origin[:200]),
        config.own_origin(request)[:200],
    )


def _request_of(first: Any) -> web.Request:
    """The request of a handler's first argument: a Request, or a class-based view."""
    request: web.Request = first.request if isinstance(first, web.View) else first
    return request


def require_session(
    *keys: str,
    check: Check | None = None,
    origins: Iterable[str] | None = None,
    allow_missing_origin: bool | None = None,
) -> Callable[[_T], _T]:
    """Refuse a request before the handler runs: 401 when a session key is missing, 403 when
    ``check(session)`` (a plain or async callable) is false or a WebSocket handshake comes
    from a foreign origin. A refused handshake never upgrades.

    A socket opened through the guard keeps being guarded: whenever its session is saved
    anywhere, the keys and the check are evaluated again, and a socket that no longer passes
    is closed with ``CLOSE_SESSION_FORBIDDEN`` (4003).

    Decorates function handlers, class-based views (every HTTP method) and view methods.
    ``origins`` are allowed besides the app's own and ``setup(ws_origins=...)``; a handshake
    without ``Origin`` (not a browser) passes only with ``allow_missing_origin=True`` (or
    ``setup(ws_allow_missing_origin=True)``). Bad arguments raise here, at decoration:
    TypeError for a key that is not a str (or ``@require_session`` without parentheses) or a
    ``check`` that is not callable, ValueError for an origin that is not
    ``scheme://host[:port]``.
    """
    for i, key in enumerate(keys):
        if not isinstance(key, str):
            # A handler here means the decorator was used bare, as @require_session.
            fix = "e.g. @require_session('user'), or @require_session() with the parentheses"
            raise TypeError(describe(f"keys[{i}]", key, "session key names (str)", fix))
    allowed = () if origins is None else check_origins("origins", origins)
    check_bool("allow_missing_origin", allow_missing_origin, optional=True)
    if check is not None and not callable(check):
        fix = "e.g. check=lambda session: session.get('role') == 'admin'"
        raise TypeError(describe("check", check, "a callable taking the Session", fix))
    guard = Guard(keys, check)

    def decorate(target: Any) -> Any:
        if isinstance(target, type) and issubclass(target, web.View):
            for method in hdrs.METH_ALL:
                handler = getattr(target, method.lower(), None)
                if handler is not None:
                    setattr(target, method.lower(), decorate(handler))
            return target

        @functools.wraps(target)
        async def guarded(first: Any, *args: Any, **kwargs: Any) -> web.StreamResponse:
            # web.View is an ABC: test the usual case, a plain Request, without its check.
            request = first if type(first) is web.Request else _request_of(first)
            state = request_state(request)
            if _foreign_handshake(request, state.manager.config, allowed, allow_missing_origin):
                _log_refused_origin(request, state.manager.config)
                raise web.HTTPForbidden(text="WebSocket origin not allowed")
            session = state.session
            if session is None:
                session = await state.load(request)
            for key in keys:
                if key not in session:
                    raise web.HTTPUnauthorized(text="A session is required")
            if check is not None and not await passes(session, guard):
                raise web.HTTPForbidden(text="This session may not do that")
            state.guard = guard
            return await target(first, *args, **kwargs)  # type: ignore[no-any-return]

        return guarded

    return decorate
