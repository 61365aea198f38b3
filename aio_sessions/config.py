"""Cookie policy and timeouts: every option of ``setup``, validated once."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from ._checks import check_bool, check_positive, check_str, describe, unknown_option
from ._ids import IdFactory, check_id_factory, made_by, new_id
from .cookies import (
    SECURE_PREFIXES,
    check_cookie_name,
    check_domain,
    check_path,
    check_samesite,
    check_token_header,
)
from .origins import check_origins, normalize_origin
from .signing import SecretArg, Signer, check_secret
from .stores._record import MAX_AGE_LIMIT
from .stores.base import SessionRecord, Store

#: Server-side lifetime of a session when neither ``idle_timeout`` nor ``max_age`` is set.
DEFAULT_LIFETIME = 14 * 24 * 3600
_TIMEOUTS = {"idle_timeout": "idle_timeout=1800", "absolute_timeout": "absolute_timeout=86400"}
_FLAGS = (
    "rolling",
    "renew",
    "httponly",
    "save_uninitialized",
    "trust_proxy",
    "ws_allow_missing_origin",
    "ws_touch",
    "track_devices",
)
# aiohttp-session's storages, and the store that replaces each.
_STORE_FOR = {
    "EncryptedCookieStorage": "EncryptedCookieStore(secret_key), which reads its cookies",
    "RedisStorage": "RedisStore(client), which reads its Redis keys",
    "NaClCookieStorage": "NaClCookieStore(secret_key), which reads its cookies",
    "SimpleCookieStorage": "EncryptedCookieStore(secret_key) (a plain cookie can be forged)",
    "MemcachedStorage": "MemcachedStore(client), which reads its memcached items",
}


def check_max_age(value: int | None) -> int | None:
    """Validate a cookie lifetime: a positive whole number of seconds up to ten years, or None.

    Longer is refused here because a store would refuse the record holding it.
    """
    check_positive("max_age", value, whole=True, unit="seconds", example="max_age=3600")
    _check_at_most_ten_years("max_age", value, "max_age=30 * 24 * 3600")
    return value


def _check_at_most_ten_years(name: str, value: float | None, example: str) -> None:
    """Lifetimes end within ten years: stores refuse records that claim more as corrupt."""
    if value is not None and value > MAX_AGE_LIMIT:
        raise ValueError(describe(name, value, "at most ten years in seconds", f"e.g. {example}"))


def check_store(store: object) -> Store:
    """``store`` when it is a Store instance; else a TypeError saying what to pass instead."""
    if isinstance(store, Store):
        return store
    if isinstance(store, type) and issubclass(store, Store):
        required = [
            p.name
            for p in inspect.signature(store).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        fix = f"pass an instance: {store.__name__}({', '.join(required)})"
    elif isinstance(store, str):
        fix = "to use Redis: RedisStore.from_url('redis://localhost')"
    elif type(store).__module__.startswith("aiohttp_session"):
        instead = _STORE_FOR.get(type(store).__name__, "one of the stores in docs/stores.md")
        fix = f"aiohttp-session's storages do not fit: use {instead}; cookie options go to setup()"
    else:
        fix = "e.g. MemoryStore(), RedisStore.from_url('redis://localhost') or SQLiteStore(path)"
    raise TypeError(describe("store", store, "a session store instance", fix))


def refuse_cookie_store(store: Store, config: SessionConfig) -> None:
    """Refuse the options a cookie store cannot serve, with what to write instead."""
    if not store.stateless:
        return
    name = type(store).__name__
    if config.secret:
        raise ValueError(
            f"secret= signs session ids kept on the server, and {name} keeps the whole session "
            "in a cookie that its own key already authenticates: a signature would only add "
            f"bytes to a cookie browsers cap at 4096. Leave secret out (rotate keys with "
            f"{name}([new_key, old_key])), or keep sessions on the server, e.g. RedisStore"
        )
    for option in ("track_devices", "max_sessions_per_user"):
        value = getattr(config, option)
        if value:
            expected = f"{'False' if option == 'track_devices' else 'None'} with {name}"
            fix = (
                "it keeps no session on the server, so it cannot list or end a user's "
                "sessions: keep sessions on the server, e.g. RedisStore, or leave it out"
            )
            raise ValueError(describe(option, value, expected, fix))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """The options of ``setup`` / ``session_middleware``; see docs/options.md."""

    cookie_name: str = "AIOHTTP_SESSION"
    max_age: int | None = None
    idle_timeout: float | None = None
    absolute_timeout: float | None = None
    rolling: bool = False
    renew: bool = False
    domain: str | None = None
    path: str = "/"
    secure: bool | None = None
    httponly: bool = True
    samesite: str | None = "Lax"
    save_uninitialized: bool = False
    trust_proxy: bool = False
    user_key: str | None = "user"
    ws_origins: tuple[str, ...] = ()
    ws_allow_missing_origin: bool = False
    ws_touch: bool = False
    #: Kept as a tuple of bytes, newest first; never shown in a repr.
    secret: SecretArg | None = field(default=None, repr=False)
    id_factory: IdFactory | None = None
    token_header: str | None = None
    track_devices: bool = False
    max_sessions_per_user: int | None = None
    #: Signs and verifies session tokens with ``secret`` (passes them through without one).
    signer: Signer = field(init=False, repr=False, compare=False, default=Signer())
    # Derived once from the options above, for the per-request paths.
    _lifetime: float = field(init=False, repr=False, compare=False, default=0.0)
    _touch_every: float = field(init=False, repr=False, compare=False, default=0.0)
    # True when every cookie must be Secure, False when none may be, None: by request.
    _secure: bool | None = field(init=False, repr=False, compare=False, default=None)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SessionConfig:
        """The config for ``setup(app, store, **options)``; an unknown name is a TypeError."""
        valid = [f.name for f in fields(cls) if f.init]
        for name, value in options.items():
            if name not in valid:
                raise unknown_option("setup()", name, value, valid, "see docs/options.md")
        return cls(**options)

    def __post_init__(self) -> None:
        check_cookie_name(self.cookie_name)
        check_max_age(self.max_age)
        for name, example in _TIMEOUTS.items():
            check_positive(name, getattr(self, name), whole=False, unit="seconds", example=example)
            _check_at_most_ten_years(name, getattr(self, name), example)
        for name in _FLAGS:
            check_bool(name, getattr(self, name))
        check_bool("secure", self.secure, optional=True)
        check_domain(self.domain)
        check_path(self.path)
        check_samesite(self.samesite)
        check_str("user_key", self.user_key, "user_key='user'", optional=True)
        object.__setattr__(self, "ws_origins", check_origins("ws_origins", self.ws_origins))
        keys = check_secret(self.secret)
        object.__setattr__(self, "secret", keys)
        object.__setattr__(self, "signer", Signer(keys))
        check_id_factory(self.id_factory)
        check_token_header(self.token_header)
        self._check_sessions_per_user()
        self._check_secure_cookie()
        limits = [t for t in (self.idle_timeout, self.max_age) if t is not None]
        object.__setattr__(self, "_lifetime", min(limits) if limits else DEFAULT_LIFETIME)
        if self.idle_timeout is not None:
            object.__setattr__(self, "_touch_every", min(60.0, self.idle_timeout / 10))

    def _check_sessions_per_user(self) -> None:
        """A cap counts a user's sessions in the per-user index, which needs ``user_key``."""
        cap = self.max_sessions_per_user
        example = "max_sessions_per_user=5"
        check_positive("max_sessions_per_user", cap, whole=True, unit="sessions", example=example)
        if cap is not None and self.user_key is None:
            expected = "None with user_key=None: the cap counts sessions by user"
            fix = f"e.g. user_key='user' (the default) with {example}"
            raise ValueError(describe("max_sessions_per_user", cap, expected, fix))

    def _check_secure_cookie(self) -> None:
        """Refuse what makes browsers drop the cookie: SameSite=None or a __Secure-/__Host-
        name without Secure, a __Host- name with a Domain or another Path than '/'.
        Such cookies are then always sent Secure, whatever the request's scheme."""
        name = self.cookie_name
        prefixed = name.lower().startswith(SECURE_PREFIXES)
        if self.samesite != "None" and not prefixed:
            object.__setattr__(self, "_secure", self.secure)
            return
        needs = f"cookie_name={name!r}" if prefixed else "samesite='None'"
        if self.secure is False:
            expected = f"None or True with {needs}: browsers drop such cookies unless Secure"
            raise ValueError(describe("secure", self.secure, expected, "e.g. secure=None"))
        if name.lower().startswith("__host-"):
            renamed = f"cookie_name='__Secure-{name[len('__Host-') :]}'"
            if self.domain is not None:
                expected = f"None with {needs}: browsers drop __Host- cookies that name a Domain"
                raise ValueError(describe("domain", self.domain, expected, f"e.g. {renamed}"))
            if self.path != "/":
                expected = f"'/' with {needs}: browsers drop __Host- cookies with another Path"
                fix = f"e.g. path='/' or {renamed}"
                raise ValueError(describe("path", self.path, expected, fix))
        object.__setattr__(self, "_secure", True)

    def new_id(self) -> str:
        """A new session id: from ``id_factory`` (checked each time), else 256 random bits."""
        factory = self.id_factory
        return new_id() if factory is None else made_by(factory)

    # -- lifetimes ------------------------------------------------------------------

    def lifetime(self, record: SessionRecord) -> float:
        """Seconds a session lives on the server after its last save or touch."""
        if record.max_age is None:
            return self._lifetime
        if self.idle_timeout is None:
            return record.max_age
        return min(self.idle_timeout, record.max_age)

    def ttl(self, record: SessionRecord, now: float) -> float:
        """The store TTL for a record saved now; the absolute timeout caps it."""
        ttl = self.lifetime(record)
        if self.absolute_timeout is not None:
            ttl = min(ttl, record.created + self.absolute_timeout - now)
        return max(ttl, 1.0)

    def expires_at(self, record: SessionRecord) -> float:
        """When the session ends unless it is saved or touched again (epoch seconds)."""
        if record.accessed is None:
            end = math.inf
        elif record.max_age is None:  # the usual case, without a call
            end = record.accessed + self._lifetime
        else:
            end = record.accessed + self.lifetime(record)
        if self.absolute_timeout is not None:
            end = min(end, record.created + self.absolute_timeout)
        return end

    def expired(self, record: SessionRecord, now: float) -> bool:
        """Enforce the timeouts on the server, whatever the cookie or the store say."""
        return now > self.expires_at(record)

    def touch_due(self, record: SessionRecord, now: float) -> bool:
        """Whether a request that changed nothing should still extend the session.

        With an idle timeout, activity is recorded at most once a minute (or every tenth
        of the timeout when that is shorter); otherwise once half the lifetime is gone.
        """
        if self.rolling or record.accessed is None:
            return True
        since = now - record.accessed
        if self.idle_timeout is not None:
            return since >= self._touch_every
        return since >= self.lifetime(record) / 2

    # -- the request ----------------------------------------------------------------

    def scheme(self, request: web.BaseRequest) -> str:
        """The scheme the browser used: X-Forwarded-Proto counts only with ``trust_proxy``."""
        if self.trust_proxy:
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                return proto
        return request.scheme

    def is_secure(self, request: web.BaseRequest) -> bool:
        """Whether the cookie gets Secure: as the options force it, else on HTTPS requests."""
        if self._secure is not None:
            return self._secure
        return self.scheme(request) == "https"

    def own_origin(self, request: web.BaseRequest) -> str:
        """The origin the app is served from, as a browser names it in ``Origin``.

        Already in the form a browser sends (lower-case, no default port) in the usual case;
        otherwise normalised.
        """
        if self.trust_proxy:
            host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
            scheme = self.scheme(request)
        else:
            host, scheme = request.host, request.scheme
        origin = f"{scheme}://{host}"
        if host == host.lower() and not host.endswith((":80", ":443")):
            return origin
        return normalize_origin(origin)
