"""Redis store on redis.asyncio: sessions shared by many processes, single node or Cluster.

Each session is one string key, ``AIOHTTP_SESSION_<id>`` holding aiohttp-session's JSON (or
what the store's ``encoder`` writes), so either library can read and write the other's
sessions. Loading is one GET. Saving merges the request's changed keys with a compare-and-set
Lua script: it writes only if the value is still the one this request loaded, otherwise it
returns the current value, and the merge is redone on that. One round trip when nobody else
wrote, no lost updates when someone did, and the JSON is built by Python, not by Lua's cjson
(which turns ``[]`` into ``{}`` and rounds big numbers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NoReturn

from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster

from .._checks import check_positive, check_str, describe, refuse_options
from .._ids import valid_id
from ._batch import TurnBatch
from ._codec import Decoder, Encoder, make_codec
from ._json import dump_data
from ._redis_calls import Calls, ms, pool_size
from ._redis_writes import Writes, decode_record
from .base import TTL, Changes, SessionRecord, Store

# KEYS[1]: a user's index. ARGV: a session id, its TTL in ms. The index lives as long as the
# longest-lived session in it (PTTL is -1 or -2 when there is no TTL or no key yet).
_LINK = """
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

_TOUCH = Changes()


class RedisStore(Store):
    """Sessions in Redis, through a ``redis.asyncio.Redis`` or ``RedisCluster`` you made.

    ``key_prefix`` defaults to aiohttp-session's ``"AIOHTTP_SESSION_"`` (its cookie name and
    ``_``). Per-user indexes live under ``<key_prefix>user:<user>`` and revocations are
    published on ``<key_prefix>revoked``. ``encoder``/``decoder``: aiohttp-session's, for the
    text under each session key.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        key_prefix: str = "AIOHTTP_SESSION_",
        command_timeout: float | None = 2.0,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **aiohttp_session_options: NoReturn,
    ) -> None:
        # aiohttp_session_options: RedisStorage's cookie options, refused with the fix.
        refuse_options(
            "RedisStore(client)",
            aiohttp_session_options,
            ("key_prefix", "command_timeout", "encoder", "decoder"),
        )
        if not isinstance(client, (Redis, RedisCluster)):
            fix = (
                "e.g. RedisStore.from_url('redis://localhost')"
                if isinstance(client, str)
                else "e.g. RedisStore(redis.asyncio.Redis(host='localhost'))"
            )
            raise TypeError(
                describe("client", client, "a redis.asyncio.Redis or RedisCluster", fix)
            )
        if pool_size(client) < 2:
            # One connection is the event listener's for as long as the app runs.
            raise ValueError(
                describe(
                    "client",
                    client,
                    "a client whose pool may open at least 2 connections (per node on a "
                    "Cluster): the store's event listener keeps one",
                    "e.g. Redis.from_url(url, max_connections=10), or leave the default 100",
                )
            )
        check_str("key_prefix", key_prefix, "key_prefix='AIOHTTP_SESSION_'")
        check_positive(
            "command_timeout",
            command_timeout,
            whole=False,
            unit="seconds",
            example="RedisStore(client, command_timeout=2)",
        )
        # Commands go through it: within command_timeout, no more at once than the pool has.
        self._call = Calls(client, command_timeout)
        self._codec = make_codec("RedisStore(client)", encoder, decoder)
        self.client = client
        self.key_prefix = key_prefix
        self.channel = f"{key_prefix}revoked"
        # The tasks that load and write, waited for on close.
        self._tasks: set[asyncio.Task[None]] = set()
        # Session keys asked for in one turn, loaded with one MGET.
        self._loads: TurnBatch[str, bytes | str | None] = TurnBatch(self._load_keys, self._tasks)
        self._writes = Writes(self._call, self._codec, self._key, self._tasks)
        self._link = client.register_script(_LINK)
        self._owns_client = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str = "AIOHTTP_SESSION_",
        command_timeout: float | None = 2.0,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **kwargs: Any,
    ) -> RedisStore:
        """Connect with ``redis.asyncio.from_url``: short timeouts so an outage fails fast,
        and a retry on a fresh connection after Redis restarts.

        The store owns that client and closes it on application cleanup. Cookie options are
        refused here (they are ``setup()`` options), and the others are checked at once.
        """
        check_str("url", url, "RedisStore.from_url('redis://localhost')")
        refuse_options("RedisStore.from_url(url)", kwargs, None)
        kwargs.setdefault("socket_connect_timeout", 2)
        kwargs.setdefault("socket_timeout", 2)
        kwargs.setdefault("health_check_interval", 15)
        # After a Redis restart every pooled connection is dead: retry once on a fresh one
        # instead of failing the first request on each.
        kwargs.setdefault("retry_on_error", [redis_errors.ConnectionError])
        client = Redis.from_url(url, **kwargs)
        try:
            # redis-py takes any keyword and fails on the first connection: build one now
            # (it does not connect) so that a misspelt option fails here instead.
            client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        except TypeError as exc:
            name = next((k for k in kwargs if f"'{k}'" in str(exc)), "kwargs")
            expected = "a connection option of redis.asyncio.Redis.from_url"
            fix = f"see redis-py's connection options ({exc})"
            value = kwargs.get(name, sorted(kwargs))  # the names only: values may be secrets
            raise TypeError(describe(name, value, expected, fix)) from None
        store = cls(
            client,
            key_prefix=key_prefix,
            command_timeout=command_timeout,
            encoder=encoder,
            decoder=decoder,
        )
        store._owns_client = True
        return store

    def _key(self, session_id: str) -> str:
        return f"{self.key_prefix}{session_id}"

    def _user_key(self, user: str) -> str:
        return f"{self.key_prefix}user:{user}"

    @property
    def command_timeout(self) -> float | None:
        """How long one command may take, whatever the client's own timeouts and retries
        (a hung Redis), its wait for a free connection included: then StoreUnavailable, a
        503. None: the client's settings alone."""
        return self._call.timeout

    @command_timeout.setter
    def command_timeout(self, value: float | None) -> None:
        self._call.timeout = value

    async def load(self, token: str) -> SessionRecord | None:
        if not valid_id(token):
            return None
        raw = await self._loads.submit(self._key(token))
        return None if raw is None else decode_record(token, raw, self._codec)

    async def _load_keys(self, keys: list[str]) -> list[bytes | str | None]:
        """The values of session keys asked for together: one GET for one key, else one MGET."""
        unique = list(dict.fromkeys(keys))
        if len(unique) == 1:
            return [await self._call.get(unique[0])] * len(keys)
        if isinstance(self.client, RedisCluster):
            values = await self._call(self.client.mget_nonatomic(unique))
        else:
            values = await self._call(self.client.mget(unique))
        found = dict(zip(unique, values, strict=True))
        return [found[key] for key in keys]

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        if changes is None:
            return await self._writes.new(record, ttl)
        dump_data(dict(changes.set), self._codec)  # a bad value fails its own request alone
        return await self._writes.merge(record, changes, ttl)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        # A merge of nothing: one compare-and-set that also keeps a concurrent writer's data.
        return await self._writes.merge(record, _TOUCH, ttl)

    async def delete(self, session_id: str) -> bool:
        if not valid_id(session_id):
            return False
        return bool(await self._call(self.client.delete(self._key(session_id))))

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        await self._call(self._link(keys=[self._user_key(user)], args=[session_id, ms(ttl)]))

    async def user_sessions(self, user: str) -> list[str]:
        key = self._user_key(user)
        members = await self._call(self.client.smembers(key))
        ids = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
        if not ids:
            return []
        alive = await self._exists_each(ids)
        dead = [sid for sid, ok in zip(ids, alive, strict=True) if not ok]
        if dead:
            await self._call(self.client.srem(key, *dead))
        return [sid for sid, ok in zip(ids, alive, strict=True) if ok]

    async def _exists_each(self, ids: list[str]) -> list[bool]:
        async with self.client.pipeline(transaction=False) as pipe:
            for sid in ids:
                pipe.exists(self._key(sid))
            return [bool(n) for n in await self._call(pipe.execute())]

    async def count(self) -> int:
        n = 0
        async for key in self._scan():
            n += valid_id(key[len(self.key_prefix) :])
        return n

    async def clear(self) -> None:
        keys = [key async for key in self._scan()]
        for key in keys:
            await self._call(self.client.delete(key))

    async def _scan(self) -> AsyncIterator[str]:
        """Every key under the prefix (session keys and user indexes), on every node."""
        pattern = f"{_glob_escape(self.key_prefix)}*"
        async for key in self._call.each(self.client.scan_iter(match=pattern, count=500)):
            yield key.decode() if isinstance(key, bytes) else key

    shares_events = True

    async def publish(self, message: str) -> None:
        await self._call(self.client.publish(self.channel, message))

    async def listen(self) -> AsyncIterator[str]:
        if isinstance(self.client, RedisCluster):
            # A cluster client learns its slot map on first use; pub/sub needs it first.
            await self._call(self.client.initialize())
        pubsub = self.client.pubsub()
        try:
            # On the listener's own connection, the one Calls leaves out of the pool's count.
            await self._call(pubsub.subscribe(self.channel), pooled=False)
            while True:
                event = await self._call(
                    pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0),
                    bounded=False,  # waits up to 5 s for a message by design
                    pooled=False,
                )
                if event is not None and event["type"] == "message":
                    data = event["data"]
                    yield data.decode("utf-8") if isinstance(data, bytes) else data
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._tasks:  # let queued saves finish
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_client:
            await self.client.aclose()


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
