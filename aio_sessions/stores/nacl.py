"""The whole session in a cookie sealed with NaCl's SecretBox (XSalsa20-Poly1305), no server
state.

Cookies are interchangeable with aiohttp-session's ``NaClCookieStorage``: the same 32-byte
key, a random 24-byte nonce before the ciphertext, standard base64 of both as the cookie
value, and aiohttp-session's JSON record inside (or, given the same ``encoder`` and
``decoder``, what that pair writes and reads).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import NoReturn

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from .._checks import describe
from ._codec import Decoder, Encoder
from ._stateless import CookieStore, each_key

Key = str | bytes | bytearray | SecretBox

_KEY = "32 random bytes, or their urlsafe-base64 text (a Fernet key is one)"
_KEY_FIX = "e.g. NaClCookieStore(nacl.utils.random(32))"
# The shortest sealed box: a nonce and the authenticator of an empty message.
_SHORTEST = SecretBox.NONCE_SIZE + SecretBox.MACBYTES


def _box(name: str, key: object) -> SecretBox:
    """A SecretBox for 32 raw bytes (aiohttp-session's form), their urlsafe-base64 text, or a
    SecretBox. Errors show the key's type and length, never the key."""
    if isinstance(key, SecretBox):
        return key
    if not isinstance(key, (str, bytes, bytearray)):
        raise TypeError(describe(name, key, _KEY, _KEY_FIX, secret=True))
    raw: bytes | None = bytes(key) if isinstance(key, (bytes, bytearray)) else None
    if raw is None or len(raw) != SecretBox.KEY_SIZE:
        try:
            raw = base64.b64decode(key, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != SecretBox.KEY_SIZE:
        raise ValueError(describe(name, key, _KEY, _KEY_FIX, secret=True))
    return SecretBox(raw)


class NaClCookieStore(CookieStore):
    """Sessions kept by the browser in a cookie encrypted and authenticated with SecretBox.

    ``secret_key`` is one key or a list of keys: the first encrypts, all decrypt, so keys can
    be rotated without logging anyone out. A cookie that is tampered with, truncated, sealed
    with another key or not base64 at all is a fresh session and a logged warning.

    Like every cookie store, the server keeps nothing: a session cannot be revoked before its
    cookie expires (set ``max_age`` or ``idle_timeout``), and concurrent requests of one
    session race (the last response's cookie wins). A NaCl box carries no timestamp, so a
    cookie written by aiohttp-session, which records no activity time, is aged from its
    ``created`` time, as aiohttp-session itself ages it.

    ``encoder``/``decoder``: aiohttp-session's, applied to the record inside the box.
    """

    def __init__(
        self,
        secret_key: Key | Sequence[Key],
        *,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **aiohttp_session_options: NoReturn,
    ) -> None:
        super().__init__("NaClCookieStore(secret_key)", aiohttp_session_options, encoder, decoder)
        self._boxes = each_key(secret_key, _box, _KEY_FIX)

    def _open(self, token: str) -> bytes | None:
        """The plaintext of a cookie value, or None when no key opens it."""
        try:
            sealed = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(sealed) < _SHORTEST:
            return None
        for box in self._boxes:
            try:
                return box.decrypt(sealed)
            except CryptoError:
                continue
        return None

    def _seal(self, plain: str) -> str:
        # encrypt() draws a fresh random nonce and puts it before the ciphertext.
        return base64.b64encode(self._boxes[0].encrypt(plain.encode("utf-8"))).decode("ascii")
