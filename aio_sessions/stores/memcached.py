"""Memcached store on aiomcache: sessions shared by processes on many machines, kept in RAM.

Each session is one item, ``AIOHTTP_SESSION_<id>`` holding aiohttp-session's JSON (or what
the store's ``encoder`` writes), so either library reads and writes the other's sessions.
Loading is one ``gets``; saving merges the request's changed keys into what is stored and
writes it with ``cas``, which memcached refuses when another request wrote since: the merge is
then redone on the new value. A new session is one ``set``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from aiomcache import ClientException, FlagClient, ValidationException

from .._checks import check_positive, check_str, describe, refuse_options
from .._ids import valid_id
from ..errors import StoreUnavailable
from ._codec import Decoder, Encoder, make_codec
from ._memcached_format import (
    Stamp,
    dump_index,
    dump_session,
    exptime,
    live_index,
    load_session,
)
from ._memcached_keys import dump_keys
from .base import TTL, Changes, SessionRecord, Store, adopt, merge, ttl_of

T = TypeVar("T")

# A merge retries at most this often when other processes keep writing the session.
_MAX_ATTEMPTS = 16
# memcached keys: at most 250 bytes, no spaces or control characters.
_MAX_KEY = 250
_LONGEST_SUFFIX = len("user:") + 64  # a user index's key: a SHA-256 in hex
_TOUCH = Changes()
# What aiomcache raises when memcached cannot be reached or cannot serve (ClientException:
# an answer it did not expect, such as SERVER_ERROR out of memory, or a connection cut off).
_UNAVAILABLE = (OSError, EOFError, ClientException)


@dataclass(slots=True)
class _Turn:
    """The saves of one session in this process, which take turns (see ``_merge``)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class MemcachedStore(Store):
    """Sessions in memcached, through an ``aiomcache.Client`` you made.

    ``key_prefix`` defaults to aiohttp-session's ``"AIOHTTP_SESSION_"`` (its cookie name and
    ``_``: give ``"<cookie_name>_"`` if you changed the cookie name there). Per-user indexes
    live under ``<key_prefix>user:<SHA-256 of the user>``. ``command_timeout`` is how many
    seconds a command may take before the request fails with ``StoreUnavailable`` (a 503).
    ``encoder``/``decoder``: aiohttp-session's, for the text of each session's item (the
    per-user indexes are this store's own JSON, which aiohttp-session never reads).

    What memcached cannot do, and what that means here:

    - It is a cache: it evicts items when its memory is full, and loses everything when it
      restarts. An evicted or lost session is a fresh one (the user logs in again); an evicted
      user index hides that user's older sessions from ``logout_user``. Give it memory enough
      that ``stats`` shows no evictions, or start it with ``-M`` (refuse instead of evict).
    - It has no events or pub/sub, so ``shares_events`` is False: ``logout_user`` deletes the
      sessions for every process, but revocations, pushes and change notices reach the
      sockets of this process only; another process's socket learns of it when it next asks
      the store (its expiry check, a save). Use RedisStore for several processes with sockets.
    - It cannot list its keys, except by walking every item (``lru_crawler metadump``):
      ``count`` and ``clear`` do that, and are for maintenance, not for requests.

    aiomcache 0.8 spins forever when memcached closes a connection in the middle of a write
    command (aio-libs/aiomcache#502): a server that is stopped is detected and fails fast,
    one that dies while answering a write may hang the process until that is fixed.
    """

    def __init__(
        self,
        client: FlagClient[Any],
        *,
        key_prefix: str = "AIOHTTP_SESSION_",
        command_timeout: float = 2.0,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **aiohttp_session_options: NoReturn,
    ) -> None:
        # aiohttp_session_options: MemcachedStorage's cookie options, refused with the fix.
        valid = ("key_prefix", "command_timeout", "encoder", "decoder")
        refuse_options("MemcachedStore(client)", aiohttp_session_options, valid)
        if not isinstance(client, FlagClient):
            fix = "e.g. MemcachedStore(aiomcache.Client('127.0.0.1', 11211))"
            raise TypeError(describe("client", client, "an aiomcache.Client", fix))
        check_str("key_prefix", key_prefix, "key_prefix='AIOHTTP_SESSION_'")
        if len(key_prefix.encode("utf-8")) + _LONGEST_SUFFIX > _MAX_KEY or any(
            c.isspace() or not c.isprintable() for c in key_prefix
        ):
            expected = (
                f"at most {_MAX_KEY - _LONGEST_SUFFIX} bytes without spaces or control "
                "characters (memcached keys are at most 250 bytes)"
            )
            fix = "e.g. key_prefix='AIOHTTP_SESSION_'"
            raise ValueError(describe("key_prefix", key_prefix, expected, fix))
        check_positive(
            "command_timeout",
            command_timeout,
            whole=False,
            unit="seconds",
            example="MemcachedStore(client, command_timeout=2)",
            optional=False,
        )
        self._codec = make_codec("MemcachedStore(client)", encoder, decoder)
        self.client = client
        self.key_prefix = key_prefix
        self.command_timeout = command_timeout
        self._turns: dict[str, _Turn] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def _key(self, session_id: str) -> bytes:
        return f"{self.key_prefix}{session_id}".encode()

    def _user_key(self, user: str) -> bytes:
        digest = hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.key_prefix}user:{digest}".encode()

    async def _call(self, command: Awaitable[T]) -> T:
        """Run one aiomcache command; StoreUnavailable when memcached cannot answer in time.

        The command runs in a task of its own that nothing cancels: aiomcache hands a
        connection whose command was cancelled back to its pool with the answer still unread,
        and the next command on it would read that answer as its own.
        """
        task = asyncio.ensure_future(command)
        self._tasks.add(task)
        task.add_done_callback(_forget(self._tasks))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.command_timeout)
        except ValidationException:
            raise  # a key or value aiomcache refuses: a bug, not an outage
        except asyncio.TimeoutError:
            raise StoreUnavailable(
                f"memcached: no answer within {self.command_timeout} seconds"
            ) from None
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"memcached: {type(exc).__name__}: {exc}") from exc

    async def load(self, token: str) -> SessionRecord | None:
        if not valid_id(token):
            return None
        raw, cas = await self._call(self.client.gets(self._key(token)))
        if raw is None:
            return None
        return load_session(token, raw, cas, self._codec)

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        if changes is None:
            seconds = ttl_of(ttl, record)
            value = dump_session(record, seconds, self._codec)
            await self._call(self.client.set(self._key(record.id), value, exptime(seconds)))
            record.stamp = None  # the new cas token is unknown until the next gets
            return record.id
        return await self._merge(record, changes, ttl)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        # A merge of nothing: it records the activity time and keeps what others wrote.
        return await self._merge(record, _TOUCH, ttl)

    async def _merge(self, record: SessionRecord, changes: Changes, ttl: TTL) -> str | None:
        """Merge one request's changes into the stored session with ``gets`` and ``cas``.

        Saves of one session in this process take turns, so they compete only with other
        processes' and never exhaust the retries among themselves.
        """
        key = self._key(record.id)
        stamp: Stamp | None = record.stamp
        async with self._turn(record.id):
            for attempt in range(_MAX_ATTEMPTS):
                if stamp is None:
                    raw, cas = await self._call(self.client.gets(key))
                    if raw is None or cas is None:
                        return None
                    stamp = Stamp(cas, raw)
                current = load_session(record.id, stamp.raw, stamp.cas, self._codec)
                if current is None:
                    return None  # expired, or corrupt: a fresh session, never a repaired one
                merged = merge(current, record, changes)
                seconds = ttl_of(ttl, merged)
                value = dump_session(merged, seconds, self._codec)
                if await self._call(self.client.cas(key, value, stamp.cas, exptime(seconds))):
                    record.stamp = None
                    adopt(record, merged)
                    return record.id
                stamp = None  # another request wrote (or the item is gone): read it again
                await asyncio.sleep(random.uniform(0, 0.001 * attempt))  # noqa: S311 - jitter
        raise StoreUnavailable("memcached: too many concurrent writers on one session")

    @contextlib.asynccontextmanager
    async def _turn(self, session_id: str) -> AsyncIterator[None]:
        turn = self._turns.get(session_id)
        if turn is None:
            turn = self._turns[session_id] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[session_id]

    async def delete(self, session_id: str) -> bool:
        if not valid_id(session_id):
            return False
        return await self._call(self.client.delete(self._key(session_id)))

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        """Add the session to the user's index: ``{session id: until when}`` in one item,
        updated with ``cas``; entries whose time has passed are dropped on the way."""
        key = self._user_key(user)
        for attempt in range(_MAX_ATTEMPTS):
            raw, cas = await self._call(self.client.gets(key))
            now = time.time()
            index = live_index(raw, now)
            index[session_id] = max(index.get(session_id, 0.0), now + ttl)
            value, until = dump_index(index), exptime(max(index.values()) - now)
            if raw is None or cas is None:
                written = await self._call(self.client.add(key, value, until))
            else:
                written = await self._call(self.client.cas(key, value, cas, until))
            if written:
                return
            await asyncio.sleep(random.uniform(0, 0.001 * attempt))  # noqa: S311 - jitter
        raise StoreUnavailable("memcached: too many concurrent writers on one user index")

    async def user_sessions(self, user: str) -> list[str]:
        raw = await self._call(self.client.get(self._user_key(user)))
        ids = sorted(live_index(raw, time.time()))
        if not ids:
            return []
        values = await self._call(self.client.multi_get(*(self._key(sid) for sid in ids)))
        return [sid for sid, value in zip(ids, values, strict=True) if value is not None]

    async def count(self) -> int:
        """How many sessions memcached holds under the prefix, from a walk of every item."""
        prefix = self.key_prefix
        keys = await self._keys()
        return sum(valid_id(key[len(prefix) :]) for key in keys)

    async def clear(self) -> None:
        """Delete every item under the prefix: sessions and user indexes."""
        for key in await self._keys():
            await self._call(self.client.delete(key.encode()))

    async def _keys(self) -> list[str]:
        # Within command_timeout like every command: a frozen memcached fails it, not hangs.
        keys = await self._call(dump_keys(self.client))
        return [key for key in keys if key.startswith(self.key_prefix)]

    async def close(self) -> None:
        """Let commands still running finish (a request that timed out may have left one)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.command_timeout)


def _forget(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    """A done callback that drops a command's task and takes its outcome, which the request
    that ran it may no longer be waiting for."""

    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done
