"""The whole session in a cookie sealed with NaCl's SecretBox (XSalsa20-Poly1305), no server
state.

Cookies are interchangeable with aiohttp-session's ``NaClCookieStorage``: the same 32-byte
key, a random 24-byte nonce before the ciphertext, standard base64 of both as the cookie
value, and aiohttp-session's JSON record inside.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Sequence
from typing import NoReturn

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from .._checks import describe, refuse_options
from ._json import dump_record, parse
from ._record import record_from_doc
from ._stateless import CookieStore
from .base import TTL, Changes, SessionRecord

log = logging.getLogger("aio_sessions")

Key = str | bytes | bytearray | SecretBox

_KEY = "32 random bytes, or their urlsafe-base64 text (a Fernet key is one)"
_KEY_FIX = "e.g. NaClCookieStore(nacl.utils.random(32))"
# The shortest sealed box: a nonce and the authenticator of an empty message.
_SHORTEST = SecretBox.NONCE_SIZE + SecretBox.MACBYTES


def _box(name: str, key: Key) -> SecretBox:
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
    """

    def __init__(
        self, secret_key: Key | Sequence[Key], **aiohttp_session_options: NoReturn
    ) -> None:
        # aiohttp_session_options: NaClCookieStorage's cookie options, refused with the fix.
        refuse_options("NaClCookieStore(secret_key)", aiohttp_session_options)
        if isinstance(secret_key, (str, bytes, bytearray, SecretBox)):
            boxes = [_box("secret_key", secret_key)]
        elif isinstance(secret_key, Iterable):
            boxes = [_box(f"secret_key[{i}]", k) for i, k in enumerate(secret_key)]
        else:
            raise TypeError(describe("secret_key", secret_key, _KEY, _KEY_FIX, secret=True))
        if not boxes:
            expected = "at least one key (the first encrypts, all decrypt)"
            raise ValueError(describe("secret_key", secret_key, expected, _KEY_FIX))
        self._boxes = boxes

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

    async def load(self, token: str) -> SessionRecord | None:
        plain = self._open(token)
        if plain is None:
            if token:
                log.warning("cannot decrypt a session cookie; starting a fresh session")
            return None
        try:
            record = record_from_doc(None, parse(plain))
        except ValueError:
            log.warning("ignoring a corrupt session cookie")
            return None
        if record.accessed is None:
            record.accessed = float(record.created)
        return record

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        return self._seal(record)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        return self._seal(record)

    def _seal(self, record: SessionRecord) -> str:
        plain = dump_record(record, with_id=True).encode("utf-8")
        # encrypt() draws a fresh random nonce and puts it before the ciphertext.
        return base64.b64encode(self._boxes[0].encrypt(plain)).decode("ascii")
