"""The whole session in an encrypted, authenticated cookie (Fernet), no server state.

Cookies are interchangeable with aiohttp-session's ``EncryptedCookieStorage``: the same key
forms and the same JSON payload inside the Fernet token (or, given the same ``encoder`` and
``decoder``, what that pair writes and reads).
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Sequence
from typing import NoReturn

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .._checks import describe
from ._codec import Decoder, Encoder
from ._stateless import CookieStore, each_key
from .base import SessionRecord

Key = str | bytes | bytearray | Fernet

# How many token plaintexts to keep (a few hundred bytes each).
_PLAIN_CACHE = 4096


_KEY = "32 random bytes or a urlsafe-base64 Fernet key"
_KEY_FIX = "e.g. EncryptedCookieStore(Fernet.generate_key())"


def _fernet(name: str, key: object) -> Fernet:
    """32 raw bytes (aiohttp-session's form), or a urlsafe-base64 Fernet key, or a Fernet.

    Errors show the key's type and length, never the key.
    """
    if isinstance(key, Fernet):
        return key
    if not isinstance(key, (str, bytes, bytearray)):
        raise TypeError(describe(name, key, _KEY, _KEY_FIX, secret=True))
    raw = key
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) == 32:
            raw = base64.urlsafe_b64encode(bytes(raw))
        else:
            raw = bytes(raw).decode("ascii", "replace")
    try:
        return Fernet(raw)
    except (ValueError, binascii.Error):
        raise ValueError(describe(name, key, _KEY, _KEY_FIX, secret=True)) from None


class EncryptedCookieStore(CookieStore):
    """Sessions kept by the browser in a Fernet-encrypted cookie.

    ``secret_key`` is one key or a list of keys: the first encrypts, all decrypt, so keys can
    be rotated without logging anyone out. A key is 32 raw bytes (aiohttp-session's form), a
    urlsafe-base64 Fernet key (``str`` or ``bytes``) or a ``Fernet``.

    The server keeps nothing, which means a session cannot be revoked before its cookie
    expires (set ``max_age`` or ``idle_timeout``), and concurrent requests of one session
    race: the last response's cookie wins. A bad key raises TypeError or ValueError (the
    message never shows the key).

    ``encoder``/``decoder``: aiohttp-session's, applied to the record inside the token.
    """

    def __init__(
        self,
        secret_key: Key | Sequence[Key],
        *,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **aiohttp_session_options: NoReturn,
    ) -> None:
        call = "EncryptedCookieStore(secret_key)"
        super().__init__(call, aiohttp_session_options, encoder, decoder)
        fernets = each_key(secret_key, _fernet, _KEY_FIX)
        # One key needs no MultiFernet, which would only add a layer to every call.
        self._fernet = fernets[0] if len(fernets) == 1 else MultiFernet(fernets)
        # Plaintexts of recently seen or issued tokens: a browser sends the same cookie
        # until the session changes, so most requests need no decryption at all.
        # An OrderedDict drops its oldest entry in O(1); a dict's first key gets slower to
        # find the more entries were deleted before it.
        self._plain: OrderedDict[str, str] = OrderedDict()

    def _remember(self, token: str, plain: str) -> None:
        if len(self._plain) >= _PLAIN_CACHE:
            self._plain.popitem(last=False)
        self._plain[token] = plain

    def _open(self, token: str) -> str | None:
        plain = self._plain.get(token)
        if plain is None:
            try:
                plain = self._fernet.decrypt(token.encode("utf-8")).decode("utf-8")
            except (InvalidToken, UnicodeError):
                return None
            self._remember(token, plain)
        return plain

    def _seal(self, plain: str) -> str:
        token = self._fernet.encrypt(plain.encode("utf-8")).decode()
        self._remember(token, plain)
        return token

    def _accessed(self, token: str, record: SessionRecord) -> float:
        # aiohttp-session's cookies carry no activity time: the token's own will do.
        return float(self._fernet.extract_timestamp(token.encode("utf-8")))
