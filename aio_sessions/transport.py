"""Where the session token travels: read from a request, written on a response.

The token is a session id (signed with ``setup(secret=...)``) or a cookie store's whole
cookie. It arrives in the session cookie or, with ``setup(token_header=...)``, in that
header, which wins when present; it leaves in ``Set-Cookie`` and in that header. Every value
read goes through ``Signer.verify`` and every value written through ``Signer.sign``: nothing
else in the library reads or writes the token.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from .cookies import EPOCH, cookie_value, read_cookies
from .errors import CookieTooLarge
from .signing import Verified

if TYPE_CHECKING:
    from .config import SessionConfig

# Browsers keep a cookie only when its name and value together fit in 4096 bytes.
_COOKIE_LIMIT = 4096


class Transport:
    """The session token in and out of HTTP messages, by the config's cookie options."""

    __slots__ = ("_attrs", "_config", "_header", "_name", "_signer")

    def __init__(self, config: SessionConfig) -> None:
        self._config = config
        self._name = config.cookie_name
        self._header = config.token_header
        self._signer = config.signer
        attrs = f"; Path={config.path}"
        if config.domain is not None:
            attrs += f"; Domain={config.domain}"
        if config.httponly:
            attrs += "; HttpOnly"
        if config.samesite is not None:
            attrs += f"; SameSite={config.samesite}"
        self._attrs = attrs

    def incoming(self, request: web.BaseRequest) -> Verified:
        """The verified tokens a request presents.

        The token header, when the request has it (even empty: no session), else every
        value of the session cookie. With a secret, a value whose signature does not verify
        is dropped here, before any store sees it.
        """
        header = self._header
        if header is not None and header in request.headers:
            values: tuple[str, ...] = tuple(request.headers.getall(header))
        else:
            values = read_cookies(request, self._name)
        return self._signer.verify(values)

    def token(self, value: str) -> str:
        """What a client keeps for a session id (or a cookie store's cookie)."""
        return self._signer.sign(value)

    def check_size(self, value: str) -> None:
        """Refuse a cookie that browsers would silently drop."""
        size = len(self._name) + 1 + len(cookie_value(self.token(value)))
        if size > _COOKIE_LIMIT:
            raise CookieTooLarge(
                f"the session cookie would be {size} bytes, over the {_COOKIE_LIMIT} bytes "
                "browsers keep: store less in the session or use a server-side store"
            )

    def send(
        self,
        request: web.BaseRequest,
        response: web.StreamResponse,
        value: str,
        max_age: int | None,
    ) -> None:
        """Give ``response`` the session's cookie (deleted when ``value`` is "") and, with a
        token header, the same token there (empty when the session ended).

        Works before and during prepare: written straight into the headers, because aiohttp
        turns ``response.set_cookie()`` into headers before ``on_response_prepare`` runs.
        """
        token = self.token(value) if value else ""
        header = f"{self._name}={cookie_value(token)}{self._attrs}"
        if not value:
            max_age = 0
        if max_age is not None:
            # Expires beside Max-Age, as aiohttp-session sends, for clients that know only it.
            expires = formatdate(time.time() + max_age, usegmt=True) if max_age else EPOCH
            header += f"; Max-Age={max_age}; expires={expires}"
        if self._config.is_secure(request):
            header += "; Secure"
        response.headers.add(hdrs.SET_COOKIE, header)
        if self._header is not None:
            response.headers[self._header] = token
