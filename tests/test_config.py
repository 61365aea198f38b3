"""Options are validated at setup; the cookie policy follows them."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import fields
from typing import Any

import pytest
from aiohttp import web

import aio_sessions
from aio_sessions import MemoryStore, session_middleware
from aio_sessions.config import SessionConfig

from .conftest import MakeClient


def raises(error: type[Exception], *parts: str, **options: Any) -> str:
    """setup(**options) raises ``error``; its message holds every one of ``parts``."""
    with pytest.raises(error) as info:
        aio_sessions.setup(web.Application(), **options)
    message = str(info.value)
    for part in parts:
        assert part in message
    return message


@pytest.mark.parametrize(
    ("options", "error", "value", "fix"),
    [
        ({"max_age": "3600"}, TypeError, "max_age='3600' (str)", "e.g. max_age=3600"),
        ({"max_age": 1.5}, TypeError, "max_age=1.5 (float)", "e.g. max_age=3600"),
        ({"max_age": True}, TypeError, "max_age=True (bool)", "e.g. max_age=3600"),
        ({"max_age": 0}, ValueError, "max_age=0 (int)", "e.g. max_age=3600"),
        ({"idle_timeout": -1}, ValueError, "idle_timeout=-1 (int)", "e.g. idle_timeout=1800"),
        ({"idle_timeout": 1e12}, ValueError, "idle_timeout=1000000000000.0 (float)", "ten years"),
        ({"absolute_timeout": 10**10}, ValueError, "(int)", "absolute_timeout=86400"),
        ({"max_age": 10**10}, ValueError, "max_age=10000000000 (int)", "ten years"),
        ({"idle_timeout": math.inf}, ValueError, "idle_timeout=inf (float)", "idle_timeout=1800"),
        ({"absolute_timeout": "1h"}, TypeError, "absolute_timeout='1h' (str)", "=86400"),
        ({"rolling": "yes"}, TypeError, "rolling='yes' (str)", "e.g. rolling=True"),
        ({"httponly": 1}, TypeError, "httponly=1 (int)", "e.g. httponly=True"),
        ({"trust_proxy": None}, TypeError, "trust_proxy=None (NoneType)", "trust_proxy=True"),
        ({"ws_touch": "yes"}, TypeError, "ws_touch='yes' (str)", "e.g. ws_touch=True"),
        ({"secure": "false"}, TypeError, "secure='false' (str)", "True, False or None"),
        ({"samesite": "lax"}, ValueError, "samesite='lax' (str)", "did you mean samesite='Lax'?"),
        ({"samesite": "Relaxed"}, ValueError, "samesite='Relaxed' (str)", "e.g. samesite='Lax'"),
        ({"samesite": False}, TypeError, "samesite=False (bool)", "e.g. samesite='Lax'"),
        ({"user_key": 1}, TypeError, "user_key=1 (int)", "e.g. user_key='user'"),
        ({"cookie_name": "bad name"}, ValueError, "cookie_name='bad name' (str)", "'bad_name'?"),
        ({"cookie_name": ""}, ValueError, "cookie_name='' (str)", "cookie_name='AIOHTTP_SESSION'"),
        ({"cookie_name": b"sid"}, TypeError, "cookie_name=b'sid' (bytes)", "cookie_name="),
    ],
)
def test_bad_option_fails_at_setup(
    options: dict[str, Any], error: type[Exception], value: str, fix: str
) -> None:
    """A wrong type is a TypeError, a wrong value a ValueError; both name value, type, fix."""
    raises(error, value, fix, **options)


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("max_agee", 10, "did you mean max_age=10?"),
        ("same_site", "Lax", "did you mean samesite='Lax'?"),
        ("http_only", True, "did you mean httponly=True?"),
        ("encoder", json.dumps, "RedisStore(client, encoder=...)"),
        ("decoder", json.loads, "RedisStore(client, decoder=...)"),
        ("key_factory", str, "setup(app, store, id_factory=...)"),
        ("storage", {}, "setup(app, store)"),
        ("expires", 3600, "max_age=3600"),
        ("timeout", 60, "idle_timeout=1800"),
        ("unheard_of", 1, "docs/options.md"),
    ],
)
def test_unknown_option_names_the_closest(name: str, value: object, fix: str) -> None:
    """aiohttp-session's names get a pointed hint, typos the closest option, all the list."""
    raises(TypeError, f"{name}=", fix, "cookie_name, max_age, idle_timeout", **{name: value})


def test_unknown_secret_option_hides_the_value() -> None:
    message = raises(TypeError, "EncryptedCookieStore(secret_key)", secret_key=b"k" * 32)
    assert "kkkk" not in message


@pytest.mark.parametrize(
    ("domain", "fix"),
    [
        ("https://example.com", "did you mean domain='example.com'?"),
        ("http://user@example.com:8080/app", "did you mean domain='example.com'?"),
        ("example.com:8080", "did you mean domain='example.com'?"),
        ("example.com/app", "did you mean domain='example.com'?"),
        ("example.com; Secure", "did you mean domain='example.com'?"),
        (" example.com", "did you mean domain='example.com'?"),
        ("bücher.example", "did you mean domain='xn--bcher-kva.example'?"),
        ("", "e.g. domain='example.com'"),
        (";", "e.g. domain='example.com'"),
    ],
)
def test_domain_must_be_a_bare_host(domain: str, fix: str) -> None:
    """Browsers drop every cookie whose Domain is not a host name."""
    raises(ValueError, f"domain={domain!r} (str)", "a bare host", fix, domain=domain)


def test_domain_type_and_good_domains() -> None:
    raises(TypeError, "domain=443 (int)", "e.g. domain='example.com'", domain=443)
    for domain in ("example.com", ".example.com", "localhost", "127.0.0.1", "a-b_c.example"):
        aio_sessions.setup(web.Application(), domain=domain)


@pytest.mark.parametrize(
    ("path", "fix"),
    [
        ("app", "did you mean path='/app'?"),
        ("/app; Secure", "did you mean path='/app'?"),
        ("/app\r\nSet-Cookie: x=1", "did you mean path='/appSet-Cookie: x=1'?"),
        ("", "did you mean path='/'?"),
    ],
)
def test_path_starts_with_slash_without_separators(path: str, fix: str) -> None:
    raises(ValueError, f"path={path!r} (str)", fix, path=path)


def test_path_type() -> None:
    raises(TypeError, "path=None (NoneType)", "e.g. path='/'", path=None)


@pytest.mark.parametrize(
    ("origins", "error", "value", "fix"),
    [
        (
            ["app.example.com"],
            ValueError,
            "[0]='app.example.com' (str)",
            "'https://app.example.com'?",
        ),
        (
            ["wss://app.example.com"],
            ValueError,
            "never ws:// or wss://",
            "'https://app.example.com'?",
        ),
        (["ws://localhost:8080"], ValueError, "(str)", "did you mean 'http://localhost:8080'?"),
        (
            ["https://app.example.com/chat"],
            ValueError,
            "without path",
            "'https://app.example.com'?",
        ),
        (["https://a.example", "https://b.example?x"], ValueError, "[1]=", "'https://b.example'?"),
        (["ftp://files.example"], ValueError, "http or https", "e.g. 'https://app.example.com'"),
        (["https://*.example.com"], ValueError, "(str)", "e.g. 'https://app.example.com'"),
        (["null"], ValueError, "any sandboxed or file:// page", "e.g. 'https://app.example.com'"),
        ([None], TypeError, "[0]=None (NoneType)", "e.g. 'https://app.example.com'"),
        (
            "https://app.example.com",
            TypeError,
            "='https://app.example.com' (str)",
            "=['https://app.example.com']",
        ),
        ("app.example.com", TypeError, "a list of origins", "=['https://app.example.com']"),
        (443, TypeError, "=443 (int)", "=['https://app.example.com']"),
    ],
)
def test_ws_origins_are_browser_origins(
    origins: object, error: type[Exception], value: str, fix: str
) -> None:
    """Compared with the Origin header, anything but scheme://host[:port] refuses everyone."""
    raises(error, "ws_origins", value, fix, ws_origins=origins)


def test_ws_origins_are_normalised() -> None:
    app = web.Application()
    origins = [
        "https://App.Example.com:443",
        "http://localhost:8080",
        "https://[::1]:8443",
        "https://b.example/",
    ]
    config = aio_sessions.setup(app, ws_origins=origins).config
    assert config.ws_origins == (
        "https://app.example.com",
        "http://localhost:8080",
        "https://[::1]:8443",
        "https://b.example",
    )


@pytest.mark.parametrize(
    ("options", "value", "fix"),
    [
        ({"samesite": "None", "secure": False}, "secure=False (bool)", "e.g. secure=None"),
        ({"cookie_name": "__Secure-sid", "secure": False}, "secure=False (bool)", "secure=None"),
        ({"cookie_name": "__Host-sid", "secure": False}, "secure=False (bool)", "secure=None"),
        (
            {"cookie_name": "__Host-sid", "domain": "example.com"},
            "domain='example.com' (str)",
            "e.g. cookie_name='__Secure-sid'",
        ),
        ({"cookie_name": "__host-sid", "path": "/app"}, "path='/app' (str)", "e.g. path='/'"),
    ],
)
def test_cookies_browsers_would_drop_fail_at_setup(
    options: dict[str, Any], value: str, fix: str
) -> None:
    """SameSite=None and the __Secure-/__Host- names need Secure; __Host- also Path=/ and no
    Domain. Browsers drop such cookies without a word: refuse them at setup instead."""
    raises(ValueError, value, fix, **options)


async def logout(request: web.Request) -> web.Response:
    (await aio_sessions.get_session(request)).invalidate()
    return web.Response()


@pytest.mark.parametrize("secure", [None, True])
@pytest.mark.parametrize(
    "options",
    [{"samesite": "None"}, {"cookie_name": "__Secure-sid"}, {"cookie_name": "__Host-sid"}],
    ids=["samesite-none", "secure-prefix", "host-prefix"],
)
async def test_cookies_that_need_secure_always_carry_it(
    make_client: MakeClient, options: dict[str, Any], secure: bool | None
) -> None:
    """Over plain http, and behind a TLS proxy not trusted: the set and the delete headers."""
    client = await make_client(("POST", "/logout", logout), secure=secure, **options)
    name = options.get("cookie_name", "AIOHTTP_SESSION")
    for headers in ({}, {"X-Forwarded-Proto": "https"}):
        resp = await client.get("/count", headers=headers)
        set_cookie = resp.headers["Set-Cookie"]
        assert "; Secure" in set_cookie
        # The client keeps Secure cookies to itself over http: send this one by hand.
        cookie = f"{name}={resp.cookies[name].value}"
        resp = await client.post("/logout", headers={**headers, "Cookie": cookie})
        deleted = resp.headers["Set-Cookie"]
        assert "Max-Age=0" in deleted
        assert "; Secure" in deleted
        for header in (set_cookie, deleted):
            assert header.startswith(f"{name}=")
            if "samesite" in options:
                assert "SameSite=None" in header
            if name.startswith("__Host-"):
                assert "Path=/;" in header
                assert "Domain" not in header


async def test_cookie_options(make_client: MakeClient) -> None:
    client = await make_client(
        cookie_name="sid",
        path="/",
        domain="example.test",
        samesite="Strict",
        httponly=False,
        max_age=120,
    )
    resp = await client.get("/count")
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("sid=")
    assert "Domain=example.test" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=120" in cookie
    assert "HttpOnly" not in cookie


async def test_secure_forced(make_client: MakeClient) -> None:
    client = await make_client(secure=True)
    assert "Secure" in (await client.get("/count")).headers["Set-Cookie"]


async def test_forwarded_proto_only_with_trust_proxy(make_client: MakeClient) -> None:
    headers = {"X-Forwarded-Proto": "https"}
    plain = await make_client()
    assert "Secure" not in (await plain.get("/count", headers=headers)).headers["Set-Cookie"]
    trusting = await make_client(trust_proxy=True)
    assert "Secure" in (await trusting.get("/count", headers=headers)).headers["Set-Cookie"]
    assert "Secure" not in (await trusting.get("/count")).headers.get("Set-Cookie", "")


# A valid value other than the default, and a wrong one, for every option of setup().
OPTION_SAMPLES: dict[str, tuple[object, object]] = {
    "cookie_name": ("sid", "bad name"),
    "max_age": (3600, 0),
    "idle_timeout": (1800, -1),
    "absolute_timeout": (86400.5, "1d"),
    "rolling": (True, "yes"),
    "renew": (True, 1),
    "domain": ("example.test", "https://example.test"),
    "path": ("/app", "app"),
    "secure": (True, "true"),
    "httponly": (False, None),
    "samesite": ("Strict", "strict"),
    "save_uninitialized": (True, "no"),
    "trust_proxy": (True, 0),
    "user_key": ("account", 1),
    "ws_origins": (["https://app.example"], ["wss://app.example"]),
    "ws_allow_missing_origin": (True, "yes"),
    "ws_touch": (True, "yes"),
    "secret": ("a secret of thirty-two bytes or more", "short"),
    "id_factory": (lambda: uuid.uuid4().hex, lambda: "short"),
    "token_header": ("X-Session-Token", "Set-Cookie"),
    "track_devices": (True, "yes"),
    "max_sessions_per_user": (5, 0),
}


def _by_setup(options: dict[str, object]) -> SessionConfig:
    return aio_sessions.setup(web.Application(), MemoryStore(), **options).config


def _alone(options: dict[str, object]) -> SessionConfig:
    return session_middleware(MemoryStore(), **options).manager.config


def _outcome(make: Any, options: dict[str, object]) -> object:
    """What building sessions with these options gives: the config, or the error."""
    try:
        return make(options)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


def test_every_option_is_sampled() -> None:
    """A new option must be added to OPTION_SAMPLES, so the parity test below covers it."""
    assert set(OPTION_SAMPLES) == {f.name for f in fields(SessionConfig) if f.init}


@pytest.mark.parametrize("name", list(OPTION_SAMPLES))
def test_setup_and_session_middleware_agree(name: str) -> None:
    """Every option either takes is taken by the other, with the same config or error."""
    good, bad = ({name: value} for value in OPTION_SAMPLES[name])
    config = _outcome(_by_setup, good)
    assert isinstance(config, SessionConfig)
    assert config != SessionConfig()  # the sample is not the default
    assert config == _outcome(_alone, good)
    refused = _outcome(_by_setup, bad)
    assert isinstance(refused, tuple)
    assert name in refused[1]
    assert refused == _outcome(_alone, bad)


def test_setup_and_session_middleware_share_defaults() -> None:
    by_setup = aio_sessions.setup(web.Application()).config
    alone = session_middleware().manager.config
    assert by_setup == alone == SessionConfig()
    assert isinstance(session_middleware().manager.store, MemoryStore)
    assert isinstance(aio_sessions.setup(web.Application()).store, MemoryStore)
