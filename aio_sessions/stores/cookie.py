"""The whole session in an encrypted, authenticated cookie (Fernet), no server state.

Cookies are interchangeable with aiohttp-session's ``EncryptedCookieStorage``: the same key
forms and the same JSON payload inside the Fernet token (or, given the same ``encoder`` and
``decoder``, what that pair writes and reads).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import NoReturn

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .._checks import describe, refuse_options
from ._codec import Decoder, Encoder, make_codec
from ._json import dump_record, parse
from ._record import record_from_doc
from .base import TTL, Changes, SessionRecord, Store

log = logging.getLogger("aio_sessions")

Key = str | bytes | bytearray | Fernet

# How many token plaintexts to keep (a few hundred bytes each).
_PLAIN_CACHE = 4096


_KEY = "32 random bytes or a urlsafe-base64 Fernet key"
_KEY_FIX = "e.g. EncryptedCookieStore(Fernet.generate_key())"


def _fernet(name: str, key: Key) -> Fernet:
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


class EncryptedCookieStore(Store):
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

    stateless = True

    def __init__(
        self,
        secret_key: Key | Sequence[Key],
        *,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **aiohttp_session_options: NoReturn,
    ) -> None:
        # aiohttp_session_options: EncryptedCookieStorage's cookie options, refused with the fix.
        refuse_options(
            "EncryptedCookieStore(secret_key)", aiohttp_session_options, ("encoder", "decoder")
        )
        if isinstance(secret_key, (str, bytes, bytearray, Fernet)):
            fernets = [_fernet("secret_key", secret_key)]
        elif isinstance(secret_key, Iterable):
            fernets = [_fernet(f"secret_key[{i}]", k) for i, k in enumerate(secret_key)]
        else:
            raise TypeError(describe("secret_key", secret_key, _KEY, _KEY_FIX, secret=True))
        if not fernets:
            expected = "at least one key (the first encrypts, all decrypt)"
            raise ValueError(describe("secret_key", secret_key, expected, _KEY_FIX))
        # One key needs no MultiFernet, which would only add a layer to every call.
        self._fernet = fernets[0] if len(fernets) == 1 else MultiFernet(fernets)
        # Plaintexts of recently seen or issued tokens: a browser sends the same cookie
        # until the session changes, so most requests need no decryption at all.
        # An OrderedDict drops its oldest entry in O(1); a dict's first key gets slower to
        # find the more entries were deleted before it.
        self._plain: OrderedDict[str, str] = OrderedDict()
        self._codec = make_codec("EncryptedCookieStore(secret_key)", encoder, decoder)

    def _remember(self, token: str, plain: str) -> None:
        if len(self._plain) >= _PLAIN_CACHE:
            self._plain.popitem(last=False)
        self._plain[token] = plain

    async def load(self, token: str) -> SessionRecord | None:
        raw = self._plain.get(token)
        if raw is None:
            try:
                raw = self._fernet.decrypt(token.encode("utf-8")).decode("utf-8")
            except (InvalidToken, UnicodeError):
                if token:
                    log.warning("cannot decrypt a session cookie; starting a fresh session")
                return None
            self._remember(token, raw)
        try:
            record = record_from_doc(None, parse(raw, self._codec))
        except ValueError:
            log.warning("ignoring a corrupt session cookie")
            return None
        if record.accessed is None:
            # aiohttp-session's cookies carry no activity time: the token's own will do.
            record.accessed = float(self._fernet.extract_timestamp(token.encode("utf-8")))
        return record

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        return self._encrypt(record)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        return self._encrypt(record)

    def _encrypt(self, record: SessionRecord) -> str:
        plain = dump_record(record, with_id=True, codec=self._codec)
        token = self._fernet.encrypt(plain.encode("utf-8")).decode()
        self._remember(token, plain)
        return token

    async def delete(self, session_id: str) -> bool:
        return False  # nothing on the server; the middleware deletes the cookie

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        self._stateless("index sessions by user")

    async def user_sessions(self, user: str) -> list[str]:
        self._stateless("find a user's sessions")

    async def count(self) -> int:
        self._stateless("count sessions")

    async def clear(self) -> None:
        self._stateless("clear sessions (rotate the secret key instead)")

    def _stateless(self, action: str) -> NoReturn:
        raise TypeError(f"EncryptedCookieStore keeps sessions in cookies: it cannot {action}")
