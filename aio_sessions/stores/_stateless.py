"""What every store that keeps the whole session in the cookie shares: no server state.

A cookie store seals a record's text into the cookie value and opens it again; this base
turns records into that text and back, with the store's ``encoder``/``decoder`` as
aiohttp-session applies them, and makes a cookie that does not open, or holds no record, a
fresh session. Such a store cannot find, count or delete sessions; the methods that would need
server state say so with a TypeError naming the store, instead of pretending.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn, TypeVar

from .._checks import describe, refuse_options
from ._codec import Decoder, Encoder, make_codec
from ._json import dump_record, parse
from ._record import record_from_doc
from .base import TTL, Changes, SessionRecord, Store

log = logging.getLogger("aio_sessions")

K = TypeVar("K")


def each_key(secret_key: object, make: Callable[[str, object], K], fix: str) -> list[K]:
    """The keys ``secret_key`` gives: one key, or a non-empty list of them (the first
    encrypts, all decrypt). ``make(name, key)`` builds each and raises for a bad one; ``fix``
    is the example an empty list's ValueError shows."""
    if isinstance(secret_key, (str, bytes, bytearray)) or not isinstance(secret_key, Iterable):
        return [make("secret_key", secret_key)]
    keys = [make(f"secret_key[{i}]", key) for i, key in enumerate(secret_key)]
    if not keys:
        expected = "at least one key (the first encrypts, all decrypt)"
        raise ValueError(describe("secret_key", secret_key, expected, fix))
    return keys


class CookieStore(Store):
    """A store whose ``save`` returns the whole session, sealed, as the cookie value.

    Subclasses seal and open (``_seal``, ``_open``).
    """

    stateless = True

    def __init__(
        self,
        call: str,
        aiohttp_session_options: Mapping[str, object],
        encoder: Encoder | None,
        decoder: Decoder | None,
    ) -> None:
        """``call`` is how users write the subclass's constructor, for error messages;
        ``aiohttp_session_options`` are the keywords it did not take (aiohttp-session's
        cookie options, typos), refused with the fix."""
        refuse_options(call, aiohttp_session_options, ("encoder", "decoder"))
        self._codec = make_codec(call, encoder, decoder)

    @abstractmethod
    def _open(self, token: str) -> str | bytes | None:
        """The text sealed in a cookie value, or None when no key opens it."""

    @abstractmethod
    def _seal(self, plain: str) -> str:
        """The cookie value that seals the record text ``plain``."""

    def _accessed(self, token: str, record: SessionRecord) -> float:
        """The activity time of a cookie written by aiohttp-session, which records none: its
        ``created``, as aiohttp-session itself ages it."""
        return float(record.created)

    async def load(self, token: str) -> SessionRecord | None:
        plain = self._open(token)
        if plain is None:
            if token:
                log.warning("cannot decrypt a session cookie; starting a fresh session")
            return None
        try:
            record = record_from_doc(None, parse(plain, self._codec))
        except ValueError:
            log.warning("ignoring a corrupt session cookie")
            return None
        if record.accessed is None:
            record.accessed = self._accessed(token, record)
        return record

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        return self._seal(dump_record(record, with_id=True, codec=self._codec))

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        return await self.save(record, None, ttl)  # the cookie carries the new activity time

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
        raise TypeError(f"{type(self).__name__} keeps sessions in cookies: it cannot {action}")
