"""Refuse aiohttp-session's middleware beside ours: together they lose data silently.

Both libraries keep the session under one cookie, ``AIOHTTP_SESSION`` by default. On one
app each would load and commit its own session: a response carries two ``Set-Cookie``
headers of that name, the browser keeps the last, and on the next request the other
library finds a cookie it cannot read and starts an empty session, without any error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

from aiohttp import web


def refuse_aiohttp_session(app: web.Application, cookie_name: str) -> None:
    """RuntimeError when aiohttp-session's middleware uses ``cookie_name`` on ``app`` (or a
    sub-application of it) now, and again at startup for one installed after this call."""
    _check(app, cookie_name)

    async def check_at_startup(app: web.Application) -> None:
        _check(app, cookie_name)

    app.on_startup.append(check_at_startup)


def _check(app: web.Application, cookie_name: str) -> None:
    for where in _apps(app):
        for middleware in where.middlewares:
            if _is_theirs(middleware) and _cookie_of(middleware) in (cookie_name, None):
                raise RuntimeError(
                    "aiohttp-session's middleware (aiohttp_session.setup or session_middleware) "
                    "is installed beside aio_sessions.setup on this app (or a sub-app): both "
                    f"use the session cookie {cookie_name!r}, each response would carry two "
                    "Set-Cookie headers of that name, the browser keeps the last, and one "
                    "library's session data would be lost on every request, silently. Use one "
                    "of them: remove aiohttp_session.setup(...) (aio_sessions reads its cookies "
                    "and records, see docs/migration.md), and with aiohttp-security use "
                    "aio_sessions.security.SessionIdentityPolicy (docs/security.md). To run "
                    "both on purpose, give them different cookie names"
                )


def _is_theirs(middleware: object) -> bool:
    """Whether ``middleware`` is aiohttp-session's (what its ``session_middleware`` makes)."""
    return getattr(middleware, "__module__", None) == "aiohttp_session"


def _cookie_of(middleware: Callable[..., object]) -> str | None:
    """The cookie name of aiohttp-session's middleware; None when it cannot be told."""
    try:
        storage = inspect.getclosurevars(middleware).nonlocals.get("storage")
    except TypeError:  # not a plain function: a version that keeps its storage elsewhere
        return None
    name = getattr(storage, "cookie_name", None)
    return name if isinstance(name, str) else None


def _apps(app: web.Application) -> Iterator[web.Application]:
    """``app`` and its sub-applications, whose handlers run inside its middlewares."""
    yield app
    for resource in app.router.resources():
        sub = resource.get_info().get("app")
        if isinstance(sub, web.Application):
            yield from _apps(sub)
