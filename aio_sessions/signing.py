"""Signed session ids, ``setup(secret=...)``: the one place a token is signed or verified.

A signed token is ``<id>.<mac>``: the id, a dot, and the HMAC-SHA-256 of the id's ASCII bytes
under the secret, in URL-safe base64 without padding (43 characters). Ids never hold a dot,
so the token splits at its last one; every character is one a cookie or a header value
carries unquoted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from ._checks import describe
from ._ids import valid_id

#: What ``setup(secret=...)`` takes: one secret, or a list of them for rotation.
Secret = str | bytes | bytearray
SecretArg = Secret | Sequence[Secret]

#: The shortest secret accepted, in bytes: an HMAC-SHA-256 key is as strong as its length.
MIN_SECRET = 32
_MAC_LENGTH = 43  # 32 bytes of base64 without its padding
_EXPECTED = (
    f"a secret of at least {MIN_SECRET} bytes (str or bytes), or a list of them "
    "(the first signs, all verify)"
)
_FIX = "e.g. secret=os.environ['SESSION_SECRET'] holding secrets.token_urlsafe(32)"


def check_secret(value: object) -> tuple[bytes, ...] | None:
    """The keys of ``setup(secret=...)``, newest first; None without a secret.

    A wrong type is a TypeError, a short or empty one a ValueError; messages show the
    secret's type and length, never the secret.
    """
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)):
        return (_key("secret", value),)
    if not isinstance(value, Sequence):
        raise TypeError(describe("secret", value, _EXPECTED, _FIX))
    keys = tuple(_key(f"secret[{i}]", key) for i, key in enumerate(value))
    if not keys:
        raise ValueError(describe("secret", value, _EXPECTED, _FIX))
    return keys


def _key(name: str, value: object) -> bytes:
    if isinstance(value, str):
        key = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        key = bytes(value)
    else:
        raise TypeError(describe(name, value, _EXPECTED, _FIX))
    if len(key) < MIN_SECRET:
        raise ValueError(describe(name, value, _EXPECTED, _FIX))
    return key


#: The tokens a request presents whose signature verifies: the session ids (without a secret,
#: the values as sent) in the order sent, and those signed by an older secret of the list,
#: whose response re-signs them. A plain tuple: a NamedTuple is built by Python code, and
#: every request builds one.
Verified = tuple[tuple[str, ...], frozenset[str]]


_NONE: frozenset[str] = frozenset()


class Signer:
    """Signs session ids with the first key and verifies them with any of the keys.

    Without keys it passes tokens through unchanged: the cookie stays aiohttp-session's.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[bytes, ...] | None = None) -> None:
        self._keys = keys or ()

    def sign(self, session_id: str) -> str:
        """The token a client keeps for ``session_id``."""
        if not self._keys:
            return session_id
        return f"{session_id}.{_mac(self._keys[0], session_id)}"

    def verify(self, tokens: tuple[str, ...]) -> Verified:
        """The session ids the tokens a client sent name, dropping every token whose
        signature does not verify under any key (tampered, unsigned, or signed by a secret
        that left the list).

        Decided without any store: a forged token costs an HMAC per key, never a lookup.
        """
        if not self._keys:
            return tokens, _NONE
        ids: list[str] = []
        stale: list[str] = []
        for token in tokens:
            session_id, dot, mac = token.rpartition(".")
            if not dot or len(mac) != _MAC_LENGTH or not valid_id(session_id):
                continue
            given = mac.encode("utf-8")
            for i, key in enumerate(self._keys):
                if hmac.compare_digest(given, _mac(key, session_id).encode("ascii")):
                    ids.append(session_id)
                    if i:
                        stale.append(session_id)
                    break
        return tuple(ids), frozenset(stale)


def _mac(key: bytes, session_id: str) -> str:
    digest = hmac.new(key, session_id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
