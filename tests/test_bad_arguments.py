"""Bad arguments fail where they are written, with a message that names the value, its type
and the fix: the store given to setup, setup twice, require_session.

(The options of setup are in test_config.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp_session import SimpleCookieStorage
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from cryptography.fernet import Fernet
from redis.asyncio import Redis

import aio_sessions
from aio_sessions import (
    MemoryStore,
    SQLiteStore,
    require_session,
)

KEY = Fernet.generate_key()


def raises(error: type[Exception], call: Callable[[], object], *parts: str) -> str:
    """``call()`` raises ``error``; its message holds every one of ``parts``."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for part in parts:
        assert part in message
    return message


@pytest.mark.parametrize("build", ["setup", "session_middleware"])
@pytest.mark.parametrize(
    ("store", "value", "fix"),
    [
        ("redis://localhost", "store='redis://localhost' (str)", "RedisStore.from_url("),
        (MemoryStore, "store=MemoryStore (class)", "pass an instance: MemoryStore()"),
        (SQLiteStore, "store=SQLiteStore (class)", "pass an instance: SQLiteStore(path)"),
        (object(), "(object)", "e.g. MemoryStore()"),
        (
            EncryptedCookieStorage(KEY.decode()),
            "(aiohttp_session.cookie",
            "EncryptedCookieStore(secret_key)",
        ),
        (SimpleCookieStorage(), "(aiohttp_session.SimpleCookieStorage)", "EncryptedCookieStore("),
        (
            RedisStorage(Redis()),
            "(aiohttp_session.redis_storage.RedisStorage)",
            "RedisStore(client)",
        ),
    ],
    ids=["url", "class", "class-with-args", "object", "aiohttp-session-cookie", "simple", "redis"],
)
def test_store_must_be_a_store_instance(build: str, store: Any, value: str, fix: str) -> None:
    """Before, the first request was a 500."""
    if build == "setup":
        raises(TypeError, lambda: aio_sessions.setup(web.Application(), store), value, fix)
    else:
        raises(TypeError, lambda: aio_sessions.session_middleware(store), value, fix)


def test_store_url_password_is_hidden() -> None:
    call = lambda: aio_sessions.setup(web.Application(), "redis://:pw@db")  # type: ignore[arg-type]  # noqa: E731
    message = raises(TypeError, call, "redis://:***@db")
    assert ":pw@" not in message


def test_setup_needs_an_application() -> None:
    call = lambda: aio_sessions.setup(MemoryStore())  # type: ignore[arg-type]  # noqa: E731
    raises(TypeError, call, "app=", "(aio_sessions.stores.memory.MemoryStore)", "setup(app, ")


def test_setup_twice_is_refused() -> None:
    """Two middlewares on one app would load and commit each session twice."""
    app = web.Application()
    aio_sessions.setup(app, max_age=60)
    raises(RuntimeError, lambda: aio_sessions.setup(app, max_age=120), "already set up", "once")
    assert len(app.middlewares) == 1
    other = web.Application(middlewares=[aio_sessions.session_middleware()])
    raises(RuntimeError, lambda: aio_sessions.setup(other), "session_middleware()")
    aio_sessions.setup(web.Application())  # another app is another app


async def handler(request: web.Request) -> web.Response:
    return web.Response()


@pytest.mark.parametrize(
    ("call", "error", "value", "fix"),
    [
        (
            lambda: require_session(handler),  # type: ignore[arg-type]
            TypeError,
            "keys[0]=<function handler",
            "or @require_session() with the parentheses",
        ),
        (
            lambda: require_session("user", 3),  # type: ignore[arg-type]
            TypeError,
            "keys[1]=3 (int)",
            "e.g. @require_session('user')",
        ),
        (
            lambda: require_session(origins=["app.example.com"]),
            ValueError,
            "origins[0]='app.example.com' (str)",
            "did you mean 'https://app.example.com'?",
        ),
        (
            lambda: require_session(origins=["wss://app.example.com"]),
            ValueError,
            "never ws:// or wss://",
            "did you mean 'https://app.example.com'?",
        ),
        (
            lambda: require_session(origins="https://admin.example"),
            TypeError,
            "origins='https://admin.example' (str)",
            "e.g. origins=['https://admin.example']",
        ),
        (
            lambda: require_session(allow_missing_origin="yes"),  # type: ignore[arg-type]
            TypeError,
            "allow_missing_origin='yes' (str)",
            "e.g. allow_missing_origin=True",
        ),
    ],
    ids=["bare-decorator", "key-type", "bare-host", "ws-scheme", "one-string", "flag"],
)
def test_require_session_arguments_fail_at_decoration(
    call: Callable[[], object], error: type[Exception], value: str, fix: str
) -> None:
    """Before, a bare @require_session made every request a 500, and an origin without
    a scheme refused every handshake."""
    raises(error, call, value, fix)
