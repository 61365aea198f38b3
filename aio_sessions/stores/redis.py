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
import hashlib
import logging
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster

from .._checks import check_positive, check_str, describe, refuse_options
from .._ids import valid_id
from ..errors import StoreUnavailable
from ._batch import TurnBatch
from ._codec import Codec, Decoder, Encoder, make_codec
from ._json import dump_data, dump_record, load_record
from ._redis_calls import Calls, outage
from .base import TTL, Changes, SessionRecord, Store, adopt, merge, ttl_of

log = logging.getLogger("aio_sessions")

# KEYS[1]: the session. ARGV: the value loaded, the new value, TTL in ms.
# Returns nil when the session is gone, 1 when written, else the current value (a conflict:
# the merge is redone on it, so a touch too keeps what another request wrote, its max_age
# included, and takes its TTL from that).
_CAS = """
local current = redis.call('GET', KEYS[1])
if not current then return false end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return current
"""
# Sent by its digest (EVALSHA) in pipelines: redis-py's Script objects in a pipeline cost a
# SCRIPT EXISTS round trip on every execute.
_CAS_SHA = hashlib.sha1(_CAS.encode(), usedforsecurity=False).hexdigest()

# KEYS[1]: a user's index. ARGV: a session id, its TTL in ms. The index lives as long as the
# longest-lived session in it (PTTL is -1 or -2 when there is no TTL or no key yet).
_LINK = """
local ttl = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
if ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

_TOUCH = Changes()

# A write command and its arguments: a compare-and-set (EVALSHA) or a new session's SET.
_Command = tuple[str | int | bytes, ...]

# A batch of saves retries at most this often when other processes keep writing the session.
_MAX_ATTEMPTS = 16


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
        # Saves waiting for the write in flight of their session, and the tasks writing them.
        self._writing: dict[str, list[_Waiter]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Session keys to load with one MGET, and writes to send in one pipeline.
        self._loads: TurnBatch[str, bytes | str | None] = TurnBatch(self._load_keys, self._tasks)
        self._writes: TurnBatch[_Command, Any] = TurnBatch(self._send_writes, self._tasks)
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
        return None if raw is None else _decode(token, raw, self._codec)

    async def _load_keys(self, keys: list[str]) -> list[bytes | str | None]:
        """The values of session keys asked for together: one GET for one key, else one MGET."""
        unique = list(dict.fromkeys(keys))
        if len(unique) == 1:
            return [await self._get(unique[0])] * len(keys)
        if isinstance(self.client, RedisCluster):
            values = await self._call(self.client.mget_nonatomic(unique))
        else:
            values = await self._call(self.client.mget(unique))
        found = dict(zip(unique, values, strict=True))
        return [found[key] for key in keys]

    async def _get(self, key: str) -> bytes | str | None:
        """GET one session key; a key of another type (a hash, a list) reads as b"" (corrupt).

        MGET already reads such keys as missing, where GET would fail the request.
        """
        try:
            value: bytes | str | None = await self._call(self.client.get(key))
        except redis_errors.ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            return b""
        return value

    async def save(self, record: SessionRecord, changes: Changes | None, ttl: TTL) -> str | None:
        if changes is None:
            raw = dump_record(record, codec=self._codec)
            command = ("SET", self._key(record.id), raw, "PX", _ms(ttl_of(ttl, record)))
            await self._writes.submit(command)
            record.stamp = raw
            return record.id
        dump_data(dict(changes.set), self._codec)  # a bad value fails its own request alone
        return await self._enqueue(record, changes, ttl)

    async def touch(self, record: SessionRecord, ttl: TTL) -> str | None:
        # A merge of nothing: one compare-and-set that also keeps a concurrent writer's data.
        return await self._enqueue(record, _TOUCH, ttl)

    async def _enqueue(self, record: SessionRecord, changes: Changes, ttl: TTL) -> str | None:
        """Hand a merge to the session's writer task and wait for its outcome."""
        waiter = _Waiter(record, changes, ttl, asyncio.get_running_loop().create_future())
        queue = self._writing.get(record.id)
        if queue is None:
            self._writing[record.id] = queue = []
            self._tasks.add(task := asyncio.ensure_future(self._drain(record.id, queue)))
            task.add_done_callback(self._tasks.discard)
        queue.append(waiter)
        return await waiter.future

    async def _drain(self, session_id: str, queue: list[_Waiter]) -> None:
        """Write the saves queued for one session, each batch in one compare-and-set.

        Saves of one session that overlap in this process are merged together instead of
        racing each other, so a burst of requests on one session costs a few round trips
        and never exhausts the retries. A separate task, so a cancelled request cannot strand
        the others.
        """
        expected: str | bytes | None = None
        try:
            while queue:
                batch = queue[:]
                del queue[:]
                if expected is None:
                    expected = batch[0].record.stamp
                try:
                    result, expected = await self._merge(session_id, expected, batch)
                except Exception as exc:
                    expected = None
                    _settle(batch, exc)
                    continue
                except BaseException:
                    _settle(batch, StoreUnavailable("redis: the session writer stopped"))
                    raise
                _settle(batch, result)
        finally:
            del self._writing[session_id]
            _settle(queue, StoreUnavailable("redis: the session writer stopped"))

    async def _merge(
        self, session_id: str, expected: str | bytes | None, batch: list[_Waiter]
    ) -> tuple[str | None, str | bytes | None]:
        """Merge a batch into the stored session; the result and the value now stored."""
        key = self._key(session_id)
        if expected is None:
            expected = await self._get(key)
        for attempt in range(_MAX_ATTEMPTS):
            if expected is None:
                return None, None
            current = _decode(session_id, expected, self._codec)
            if current is None:
                return None, None
            for waiter in batch:
                current = merge(current, waiter.record, waiter.changes)
            raw = dump_record(current, codec=self._codec)
            ms = max(_ms(ttl_of(waiter.ttl, current)) for waiter in batch)
            cas = ("EVALSHA", _CAS_SHA, 1, key, expected, raw, ms)
            result = await self._writes.submit(cas)
            if result == 1:
                for waiter in batch:
                    waiter.record.stamp = raw
                    adopt(waiter.record, current)
                return session_id, raw
            expected = result  # another process wrote: merge again on its value
            await asyncio.sleep(random.uniform(0, 0.001 * attempt))  # noqa: S311 - jitter only
        raise StoreUnavailable("redis: too many concurrent writers on one session")

    async def _send_writes(self, commands: list[_Command]) -> list[Any]:
        """Send write commands, one alone or many in one pipeline (one round trip, one
        pooled connection); each reply or error in its place. One ``command_timeout`` for
        the whole, which bounds the wait of every writer in the batch."""
        return [outage(outcome) for outcome in await self._call(self._send_scripted(commands))]

    async def _send_scripted(self, commands: list[_Command]) -> list[Any]:
        """``_pipeline``, and again for the commands that found the compare-and-set script
        missing (a restarted or flushed Redis) once it is loaded."""
        outcomes = await self._pipeline(commands)
        missing = [
            i for i, out in enumerate(outcomes) if isinstance(out, redis_errors.NoScriptError)
        ]
        if missing:
            await self.client.script_load(_CAS)
            again = await self._pipeline([commands[i] for i in missing])
            for i, outcome in zip(missing, again, strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _pipeline(self, commands: list[_Command]) -> list[Any]:
        """Replies to ``commands``, a command's error (not an outage) in its place."""
        if len(commands) == 1:
            try:
                return [await self.client.execute_command(*commands[0])]
            except redis_errors.ResponseError as exc:
                return [exc]
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))

    async def delete(self, session_id: str) -> bool:
        if not valid_id(session_id):
            return False
        return bool(await self._call(self.client.delete(self._key(session_id))))

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        await self._call(self._link(keys=[self._user_key(user)], args=[session_id, _ms(ttl)]))

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


@dataclass(slots=True)
class _Waiter:
    record: SessionRecord
    changes: Changes
    ttl: TTL
    future: asyncio.Future[str | None]


def _settle(waiters: list[_Waiter], outcome: str | BaseException | None) -> None:
    for waiter in waiters:
        if waiter.future.done():
            continue
        if isinstance(outcome, BaseException):
            waiter.future.set_exception(outcome)
        else:
            waiter.future.set_result(outcome)


def _decode(session_id: str, raw: str | bytes, codec: Codec | None) -> SessionRecord | None:
    try:
        record = load_record(session_id, raw, codec)
    except ValueError:
        log.warning("ignoring a corrupt session record in redis")
        return None
    record.stamp = raw
    return record


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
