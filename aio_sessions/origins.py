"""Browser origins: the form of the ``Origin`` header, and the checks of allowed origins."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from yarl import URL

from ._checks import describe

# A host name: dot-separated labels of letters, digits, '-' and '_'.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_EXAMPLE_ORIGIN = "https://app.example.com"
_ORIGIN = "an origin, scheme://host[:port] with scheme http or https"


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


def check_origins(name: str, value: Iterable[str]) -> tuple[str, ...]:
    """Allowed WebSocket origins, normalised: each ``scheme://host[:port]``, http or https.

    They are compared with the ``Origin`` header, so a bare host or a ws:// URL could never
    match: such a list would refuse every handshake.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        fix = [(isinstance(value, str) and _suggest_origin(value)) or _EXAMPLE_ORIGIN]
        raise TypeError(describe(name, value, "a list of origins", f"e.g. {name}={fix!r}"))
    return tuple(_check_origin(f"{name}[{i}]", origin) for i, origin in enumerate(value))


def _check_origin(name: str, origin: object) -> str:
    if not isinstance(origin, str):
        raise TypeError(describe(name, origin, _ORIGIN, f"e.g. {_EXAMPLE_ORIGIN!r}"))
    problem = _origin_problem(origin)
    if problem is None:
        return normalize_origin(origin)
    guess = _suggest_origin(origin)
    fix = f"did you mean {guess!r}?" if guess else f"e.g. {_EXAMPLE_ORIGIN!r}"
    raise ValueError(describe(name, origin, problem, fix))


def _origin_problem(origin: str) -> str | None:
    """What is wrong with an allowed origin, as what was expected instead; None if nothing."""
    if origin == "null":
        return f"{_ORIGIN}; 'null' cannot be allowed, as any sandboxed or file:// page sends it"
    try:
        url = URL(origin)
    except ValueError:
        return _ORIGIN
    if url.scheme in ("ws", "wss"):
        return "an http or https origin: browsers send the page's origin, never ws:// or wss://"
    if "://" not in origin or url.scheme not in ("http", "https") or not _is_host(url.raw_host):
        return _ORIGIN
    if url.raw_path not in ("", "/") or url.raw_query_string or url.raw_fragment or url.raw_user:
        return f"{_ORIGIN}, without path, query or user"
    return None


def _is_host(host: str | None) -> bool:
    """A host name or an IP address (an origin may name an IPv6 one)."""
    if host is None:
        return False
    if _HOST.fullmatch(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _suggest_origin(text: str) -> str | None:
    """The origin a wrong one probably meant (https when it has no scheme), if any."""
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        scheme, rest = "https", text.strip()
    scheme = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme.lower())
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2].lower()
    candidate = f"{scheme}://{host}"
    return candidate if text != "null" and _origin_problem(candidate) is None else None


def is_host_name(text: str) -> bool:
    """Dot-separated labels of letters, digits, '-' and '_' (no port, no IP address)."""
    return _HOST.fullmatch(text) is not None
