"""The session cookie on the wire: reading its values, checking its attributes and the
token header's name, encoding it."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

from aiohttp import hdrs, web

from ._checks import check_str, describe
from .origins import is_host_name

_SAMESITE = ("Strict", "Lax", "None")
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_TOKEN = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# Browsers drop cookies with these name prefixes unless they are Secure; __Host- cookies also
# need Path=/ and no Domain (RFC 6265bis; the prefixes match case-insensitively).
SECURE_PREFIXES = ("__secure-", "__host-")
# What may not be in a Path attribute: the attribute separator and control characters.
_NOT_IN_PATH = re.compile(r"[;\x00-\x1f\x7f]")


def read_cookies(request: web.BaseRequest, name: str) -> tuple[str, ...]:
    """Every value the request sends for one cookie name, in the order sent.

    Browsers send the cookie of the longest matching path first, so after a cookie moved
    (``path="/app"`` where it was ``/``) both arrive and the stale one may come second or first:
    the manager takes the first that names a live session. One plain value is found without
    parsing the other cookies of the header.
    """
    header = request.headers.get(hdrs.COOKIE)
    if not header:
        return ()
    prefix = name + "="
    start = header.find(prefix)
    if start == -1:
        return ()
    if (start and header[start - 1] not in "; ") or header.find(prefix, start + 1) != -1:
        return _parse_cookies(header, name)
    end = header.find(";", start)
    value = header[start + len(prefix) : None if end == -1 else end].strip()
    if value.startswith('"'):
        return _parse_cookies(header, name)
    return (value,)


def _parse_cookies(header: str, name: str) -> tuple[str, ...]:
    """The values of every ``name=value`` pair of a Cookie header (RFC 6265 syntax)."""
    values = []
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values.append(value)
    return tuple(values)


def check_domain(domain: str | None) -> None:
    """A bare host as the Domain attribute takes it; browsers drop cookies with anything else."""
    check_str("domain", domain, "domain='example.com'", optional=True)
    if domain is None or is_host_name(domain.removeprefix(".")):
        return
    guess = _suggest_domain(domain)
    fix = f"did you mean domain={guess!r}?" if guess else "e.g. domain='example.com'"
    expected = "a bare host such as 'example.com' or '.example.com': no scheme, path or port"
    raise ValueError(describe("domain", domain, expected, fix))


def _suggest_domain(text: str) -> str | None:
    """The host a wrong domain probably meant: without scheme, user, port, path or spaces."""
    text = "".join(text.split())
    rest = text.partition("://")[2] or text
    host = re.split(r"[/?#;:]", rest.rpartition("@")[2], maxsplit=1)[0]
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return host if is_host_name(host.removeprefix(".")) else None


def check_path(path: str) -> None:
    """A Path attribute: starts with '/', and nothing that would end or break the header."""
    check_str("path", path, "path='/'")
    if path.startswith("/") and not _NOT_IN_PATH.search(path):
        return
    fixed = "/" + _NOT_IN_PATH.sub("", path.split(";")[0]).strip().lstrip("/")
    expected = "a path that starts with '/', without ';' or control characters"
    raise ValueError(describe("path", path, expected, f"did you mean path={fixed!r}?"))


def check_cookie_name(name: str) -> None:
    check_str("cookie_name", name, "cookie_name='AIOHTTP_SESSION'")
    if _TOKEN.fullmatch(name):
        return
    fixed = _NOT_TOKEN.sub("_", name.strip())
    fix = f"did you mean cookie_name={fixed!r}?" if fixed else "e.g. cookie_name='AIOHTTP_SESSION'"
    expected = "a cookie name: letters, digits and !#$%&'*+-.^_`|~, no spaces"
    raise ValueError(describe("cookie_name", name, expected, fix))


# Headers HTTP, proxies, browsers or this library already give a meaning to: a session token
# there would be dropped, rewritten, sent where it must not go, or would clash with
# authentication. Names are compared lower-case.
_TAKEN_HEADERS = frozenset(
    (
        "authentication-info",
        "authorization",
        "cache-control",
        "connection",
        "expect",
        "forwarded",
        "host",
        "keep-alive",
        "location",
        "origin",
        "referer",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "vary",
        "via",
        "www-authenticate",
        "x-real-ip",
    )
)
_COOKIE_HEADERS = ("cookie", "set-cookie", "cookie2", "set-cookie2")
_TAKEN_PREFIXES = ("sec-", "proxy-", "access-control-", "x-forwarded-", "content-")
_HEADER_FIX = "e.g. token_header='X-Session-Token'"


def check_token_header(name: str | None) -> None:
    """``setup(token_header=...)``: a header name of the app's own (an RFC 7230 token), not
    one that HTTP, proxies or browsers act on."""
    check_str("token_header", name, "token_header='X-Session-Token'", optional=True)
    if name is None:
        return
    if not _TOKEN.fullmatch(name):
        expected = "a header name: letters, digits and !#$%&'*+-.^_`|~, no spaces or ':'"
        raise ValueError(describe("token_header", name, expected, _HEADER_FIX))
    lower = name.lower()
    if lower in _COOKIE_HEADERS:
        expected = "a header of its own: the session cookie already travels in Cookie/Set-Cookie"
        raise ValueError(describe("token_header", name, expected, _HEADER_FIX))
    if lower in _TAKEN_HEADERS or lower.startswith(_TAKEN_PREFIXES):
        expected = (
            "a header of the app's own, not one HTTP, proxies or browsers act on "
            "(hop-by-hop, authentication, origin, forwarding, Sec-, Proxy-, Content-)"
        )
        raise ValueError(describe("token_header", name, expected, _HEADER_FIX))


def check_samesite(samesite: str | None) -> None:
    check_str("samesite", samesite, "samesite='Lax'", optional=True)
    if samesite is None or samesite in _SAMESITE:
        return
    close = [s for s in _SAMESITE if s.lower() == samesite.strip().lower()]
    fix = f"did you mean samesite={close[0]!r}?" if close else "e.g. samesite='Lax'"
    expected = "'Strict', 'Lax', 'None', or None to leave the attribute out"
    raise ValueError(describe("samesite", samesite, expected, fix))


# Ids and Fernet tokens use only these, which a cookie value may hold unquoted (RFC 6265).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_=.~-]+")


def cookie_value(value: str) -> str:
    """The value as it goes on the wire: as is when plain, else quoted as SimpleCookie does."""
    if not value:
        return '""'
    if _PLAIN_VALUE.fullmatch(value):
        return value
    jar: SimpleCookie = SimpleCookie()
    jar["x"] = value
    return jar["x"].coded_value
