"""Cookie policy and timeouts: every option of ``setup``, validated once."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from aiohttp import hdrs, web
from yarl import URL

from .errors import CookieTooLarge
from .stores._json import MAX_AGE_LIMIT
from .stores.base import SessionRecord

#: Server-side lifetime of a session when neither ``idle_timeout`` nor ``max_age`` is set.
DEFAULT_LIFETIME = 14 * 24 * 3600
_SAMESITE = ("Strict", "Lax", "None")
# Browsers keep a cookie only when its name and value together fit in 4096 bytes.
_COOKIE_LIMIT = 4096
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]``, lower-case and without a default port; ``null`` stays."""
    if origin == "null":
        return origin
    try:
        url = URL(origin)
    except ValueError:
        return "invalid:"
    if not url.scheme or not url.host:
        return "invalid:"
    return str(url.origin()).lower()


def check_max_age(value: int | None) -> int | None:
    """Validate a cookie lifetime: a positive whole number of seconds up to ten years, or None.

    Longer is refused here because a store would refuse the record holding it.
    """
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_AGE_LIMIT
    ):
        raise ValueError("max_age must be a whole number of seconds from 1 to ten years, or None")
    return value


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
    # Derived once from the options above, for the per-request paths.
    _lifetime: float = field(init=False, repr=False, compare=False, default=0.0)
    _touch_every: float = field(init=False, repr=False, compare=False, default=0.0)
    _cookie_attrs: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.cookie_name):
            raise ValueError(f"cookie_name {self.cookie_name!r} is not a valid cookie name")
        for name in ("max_age", "idle_timeout", "absolute_timeout"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number of seconds or None")
        check_max_age(self.max_age)
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        if self.samesite is not None and self.samesite not in _SAMESITE:
            raise ValueError(f"samesite must be one of {_SAMESITE} or None")
        if self.samesite == "None" and self.secure is False:
            raise ValueError("samesite='None' needs secure cookies (secure=None or True)")
        if self.user_key is not None and not isinstance(self.user_key, str):
            raise ValueError("user_key must be a session key (a string) or None")
        if isinstance(self.ws_origins, str) or not all(isinstance(o, str) for o in self.ws_origins):
            raise ValueError("ws_origins must be a list of origins like 'https://example.com'")
        object.__setattr__(self, "ws_origins", tuple(normalize_origin(o) for o in self.ws_origins))
        for name in (
            "rolling",
            "renew",
            "httponly",
            "save_uninitialized",
            "trust_proxy",
            "ws_allow_missing_origin",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False")
        limits = [t for t in (self.idle_timeout, self.max_age) if t is not None]
        object.__setattr__(self, "_lifetime", min(limits) if limits else DEFAULT_LIFETIME)
        if self.idle_timeout is not None:
            object.__setattr__(self, "_touch_every", min(60.0, self.idle_timeout / 10))
        attrs = f"; Path={self.path}"
        if self.domain is not None:
            attrs += f"; Domain={self.domain}"
        if self.httponly:
            attrs += "; HttpOnly"
        if self.samesite is not None:
            attrs += f"; SameSite={self.samesite}"
        object.__setattr__(self, "_cookie_attrs", attrs)

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

    # -- the cookie -----------------------------------------------------------------

    def scheme(self, request: web.BaseRequest) -> str:
        """The scheme the browser used: X-Forwarded-Proto counts only with ``trust_proxy``."""
        if self.trust_proxy:
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                return proto
        return request.scheme

    def is_secure(self, request: web.BaseRequest) -> bool:
        if self.secure is not None:
            return self.secure
        return self.scheme(request) == "https"

    def own_origin(self, request: web.BaseRequest) -> str:
        """The origin the app is served from, as a browser names it in ``Origin``.

        Already in the form a browser sends (lower-case, no default port) in the usual case;
        otherwise normalised.
        """
        host = request.host
        if self.trust_proxy:
            host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip()
        origin = f"{self.scheme(request)}://{host}"
        if host == host.lower() and not host.endswith((":80", ":443")):
            return origin
        return normalize_origin(origin)

    def check_cookie(self, value: str) -> None:
        """Refuse a cookie that browsers would silently drop."""
        size = len(self.cookie_name) + 1 + len(_cookie_value(value))
        if size > _COOKIE_LIMIT:
            raise CookieTooLarge(
                f"the session cookie would be {size} bytes, over the {_COOKIE_LIMIT} bytes "
                "browsers keep: store less in the session or use a server-side store"
            )

    def delete_cookie(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        self.set_cookie(request, response, "", 0)

    def set_cookie(
        self,
        request: web.BaseRequest,
        response: web.StreamResponse,
        value: str,
        max_age: int | None,
    ) -> None:
        """Add the session's Set-Cookie header; works before and during prepare."""
        # Written straight into the headers: aiohttp turns response.set_cookie() into
        # headers before on_response_prepare runs, so a cookie set there would be lost.
        header = f"{self.cookie_name}={_cookie_value(value)}{self._cookie_attrs}"
        if max_age is not None:
            header += f"; Max-Age={max_age}"
            if max_age == 0:
                header += "; expires=Thu, 01 Jan 1970 00:00:00 GMT"
        if self.is_secure(request):
            header += "; Secure"
        response.headers.add(hdrs.SET_COOKIE, header)


# Ids and Fernet tokens use only these, which a cookie value may hold unquoted (RFC 6265).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_=.~-]+")


def _cookie_value(value: str) -> str:
    """The value as it goes on the wire: as is when plain, else quoted as SimpleCookie does."""
    if not value:
        return '""'
    if _PLAIN_VALUE.fullmatch(value):
        return value
    jar: SimpleCookie = SimpleCookie()
    jar["x"] = value
    return jar["x"].coded_value
