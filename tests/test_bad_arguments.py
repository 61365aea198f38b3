"""Bad arguments fail where they are written, with a message that names the value, its type
and the fix: the store given to setup, setup twice, require_session, the stores' constructors.

(The options of setup are in test_config.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomcache
import pytest
from aiohttp import web
from aiohttp_session import SimpleCookieStorage
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.memcached_storage import MemcachedStorage
from aiohttp_session.nacl_storage import NaClCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from cryptography.fernet import Fernet
from redis.asyncio import Redis

import aio_sessions
from aio_sessions import (
    EncryptedCookieStore,
    FileStore,
    MemoryStore,
    RedisStore,
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
        (
            NaClCookieStorage(bytes(32)),
            "(aiohttp_session.nacl_storage.NaClCookieStorage)",
            "use NaClCookieStore(secret_key), which reads its cookies",
        ),
        (
            MemcachedStorage(aiomcache.Client("127.0.0.1", 1)),
            "(aiohttp_session.memcached_storage.MemcachedStorage)",
            "use MemcachedStore(client), which reads its memcached items",
        ),
    ],
    ids=[
        "url",
        "class",
        "class-with-args",
        "object",
        "aiohttp-session-cookie",
        "simple",
        "redis",
        "nacl",
        "memcached",
    ],
)
def test_store_must_be_a_store_instance(build: str, store: Any, value: str, fix: str) -> None:
    """Before, the first request was a 500."""
    if build == "setup":
        raises(TypeError, lambda: aio_sessions.setup(web.Application(), store), value, fix)
    else:
        raises(TypeError, lambda: aio_sessions.session_middleware(store), value, fix)


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (
            lambda: aio_sessions.setup(web.Application(), "redis://:hunter2@db"),  # type: ignore[arg-type]
            "store='redis://:***@db' (str)",
        ),
        (
            lambda: RedisStore.from_url("redis://localhost", passwrd="hunter2"),
            "passwrd=<hidden, length 7> (str)",
        ),
        (
            lambda: aio_sessions.setup(web.Application(), secret_token="hunter2"),
            "secret_token=<hidden, length 7> (str)",
        ),
    ],
    ids=["store-url", "redis-option", "setup-option"],
)
def test_secrets_stay_out_of_messages(call: Callable[[], object], shown: str) -> None:
    message = raises(TypeError, call, shown)
    assert "hunter2" not in message


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


@pytest.mark.parametrize(
    ("call", "moved"),
    [
        (
            lambda: EncryptedCookieStore(KEY, max_age=3600),  # type: ignore[arg-type]
            "setup(app, EncryptedCookieStore(secret_key), max_age=3600)",
        ),
        (
            lambda: EncryptedCookieStore(KEY, cookie_name="SID", httponly=False),  # type: ignore[arg-type]
            "setup(app, EncryptedCookieStore(secret_key), cookie_name='SID', httponly=False)",
        ),
        (
            lambda: RedisStore(Redis(), max_age=3600, samesite="Lax"),  # type: ignore[arg-type]
            "setup(app, RedisStore(client), max_age=3600, samesite='Lax')",
        ),
        (
            lambda: RedisStore.from_url("redis://localhost", domain="example.com"),
            "setup(app, RedisStore.from_url(url), domain='example.com')",
        ),
        (
            lambda: MemoryStore(secure=True),  # type: ignore[arg-type]
            "setup(app, MemoryStore(), secure=True)",
        ),
        (
            lambda: SQLiteStore("s.db", httponly=True),  # type: ignore[arg-type]
            "setup(app, SQLiteStore(path), httponly=True)",
        ),
        (
            lambda: FileStore("sessions", max_age=60),  # type: ignore[arg-type]
            "setup(app, FileStore(directory), max_age=60)",
        ),
    ],
    ids=["cookie", "cookie-several", "redis", "redis-url", "memory", "sqlite", "file"],
)
def test_store_constructors_refuse_cookie_options(call: Callable[[], object], moved: str) -> None:
    """aiohttp-session's storages take the cookie options; here setup() does."""
    raises(TypeError, call, "in setup(), which takes the cookie options", moved)


@pytest.mark.parametrize(
    ("call", "value", "fix"),
    [
        (
            lambda: EncryptedCookieStore(KEY, encoder="json"),  # type: ignore[arg-type]
            "encoder='json' (str)",
            "EncryptedCookieStore(secret_key, encoder=json.dumps)",
        ),
        (
            lambda: RedisStore(Redis(), key_factory=str),  # type: ignore[arg-type]
            "key_factory=str (class)",
            "setup(app, store, id_factory=...)",
        ),
        (
            lambda: RedisStore.from_url("redis://localhost", decoder=json.JSONDecoder),
            "decoder=JSONDecoder (class)",
            "decoder=JSONDecoder().decode",
        ),
        (
            lambda: RedisStore(Redis(), prefix="app:"),  # type: ignore[arg-type]
            "prefix='app:' (str)",
            "did you mean key_prefix='app:'?",
        ),
        (
            lambda: SQLiteStore("s.db", sweep=5),  # type: ignore[arg-type]
            "sweep=5 (int)",
            "did you mean sweep_interval=5?",
        ),
        (
            lambda: MemoryStore(idle_timeout=60),  # type: ignore[arg-type]
            "idle_timeout=60 (int)",
            "timeout options go to setup()",
        ),
        (
            lambda: RedisStore.from_url("redis://localhost", socket_timout=1),
            "socket_timout=1 (int)",
            "redis-py's connection options",
        ),
    ],
    ids=["encoder", "key-factory", "decoder", "typo", "typo-sqlite", "timeout", "redis-option"],
)
def test_store_constructors_refuse_unknown_options(
    call: Callable[[], object], value: str, fix: str
) -> None:
    """Before, a bare TypeError, or (redis-py's options) a 500 on the first request."""
    raises(TypeError, call, value, fix)


@pytest.mark.parametrize(
    ("call", "error", "value", "fix"),
    [
        (
            lambda: MemoryStore(max_sessions="10"),  # type: ignore[arg-type]
            TypeError,
            "max_sessions='10' (str)",
            "e.g. MemoryStore(max_sessions=10000)",
        ),
        (
            lambda: MemoryStore(max_sessions=0),
            ValueError,
            "max_sessions=0 (int)",
            "e.g. MemoryStore(max_sessions=10000)",
        ),
        (
            lambda: MemoryStore(sweep_interval="60"),  # type: ignore[arg-type]
            TypeError,
            "sweep_interval='60' (str)",
            "e.g. MemoryStore(sweep_interval=60)",
        ),
        (
            lambda: MemoryStore(sweep_interval=None),  # type: ignore[arg-type]
            TypeError,
            "sweep_interval=None (NoneType)",
            "e.g. MemoryStore(sweep_interval=60)",
        ),
        (
            lambda: SQLiteStore(None),  # type: ignore[arg-type]
            TypeError,
            "path=None (NoneType)",
            "e.g. SQLiteStore('sessions.db')",
        ),
        (lambda: SQLiteStore(""), ValueError, "path='' (str)", "e.g. SQLiteStore('sessions.db')"),
        (
            lambda: SQLiteStore(Path("s.db"), sweep_interval=-1),
            ValueError,
            "sweep_interval=-1 (int)",
            "sweep_interval=60)",
        ),
        (
            lambda: FileStore(123),  # type: ignore[arg-type]
            TypeError,
            "directory=123 (int)",
            "e.g. FileStore('sessions')",
        ),
        (
            lambda: RedisStore(Redis(), key_prefix=1),  # type: ignore[arg-type]
            TypeError,
            "key_prefix=1 (int)",
            "e.g. key_prefix='AIOHTTP_SESSION_'",
        ),
        (
            lambda: RedisStore("redis://localhost"),  # type: ignore[arg-type]
            TypeError,
            "client='redis://localhost' (str)",
            "e.g. RedisStore.from_url('redis://localhost')",
        ),
        (
            lambda: RedisStore.from_url(123),  # type: ignore[arg-type]
            TypeError,
            "url=123 (int)",
            "e.g. RedisStore.from_url('redis://localhost')",
        ),
        (
            lambda: EncryptedCookieStore(None),  # type: ignore[arg-type]
            TypeError,
            "secret_key=<hidden> (NoneType)",
            "e.g. EncryptedCookieStore(Fernet.generate_key())",
        ),
        (
            lambda: EncryptedCookieStore([KEY, 5]),  # type: ignore[list-item]
            TypeError,
            "secret_key[1]=<hidden> (int)",
            "e.g. EncryptedCookieStore(Fernet.generate_key())",
        ),
        (
            lambda: EncryptedCookieStore([]),
            ValueError,
            "secret_key=<hidden, length 0> (list)",
            "e.g. EncryptedCookieStore(Fernet.generate_key())",
        ),
    ],
)
def test_store_constructor_arguments(
    call: Callable[[], object], error: type[Exception], value: str, fix: str
) -> None:
    raises(error, call, value, fix)


@pytest.mark.parametrize("key", ["too-short-secret", b"too-short-secret", KEY[:-4]])
def test_bad_secret_key_names_its_type_never_its_value(key: str | bytes) -> None:
    message = raises(
        ValueError,
        lambda: EncryptedCookieStore(key),
        f"secret_key=<hidden, length {len(key)}> ({type(key).__name__})",
        "32 random bytes or a urlsafe-base64 Fernet key",
        "e.g. EncryptedCookieStore(Fernet.generate_key())",
    )
    text = key.decode() if isinstance(key, bytes) else key
    assert text[:12] not in message
