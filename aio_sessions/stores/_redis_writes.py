"""RedisStore's writes: compare-and-set merges by one writer task per busy session, and the
write commands of one event-loop turn in one pipeline.

A save of a stored session sends the merged record with a compare-and-set Lua script: it
writes only if the key still holds the value the merge started from, else it returns the
current value and the merge is redone on it. The saves of one session that overlap in this
process wait for its writer task, which merges them all in one compare-and-set; the
compare-and-sets and new sessions' SETs of different sessions issued in the same turn go out
together (one round trip, one pooled connection).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from ..errors import StoreUnavailable
from ._batch import TurnBatch, settle
from ._codec import Codec
from ._json import dump_record, load_record
from ._redis_calls import Calls, ms, outage
from .base import TTL, Changes, SessionRecord, adopt, merge, ttl_of

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

# A write command and its arguments: a compare-and-set (EVALSHA) or a new session's SET.
_Command = tuple[str | int | bytes, ...]

# A batch of saves retries at most this often when other processes keep writing the session.
_MAX_ATTEMPTS = 16


class Writes:
    """The saves of one RedisStore (package-internal)."""

    def __init__(
        self,
        calls: Calls,
        codec: Codec | None,
        key: Callable[[str], str],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._call = calls
        self.client = calls.client
        self._codec = codec
        self._key = key
        self._tasks = tasks
        # Saves waiting for the write in flight of their session.
        self._writing: dict[str, list[_Waiter]] = {}
        self._batch: TurnBatch[_Command, Any] = TurnBatch(self._send_writes, tasks)

    async def new(self, record: SessionRecord, ttl: TTL) -> str:
        """Store a session that is not stored yet: a SET, sent with the turn's other writes."""
        raw = dump_record(record, codec=self._codec)
        await self._batch.submit(("SET", self._key(record.id), raw, "PX", ms(ttl_of(ttl, record))))
        record.stamp = raw
        return record.id

    async def merge(self, record: SessionRecord, changes: Changes, ttl: TTL) -> str | None:
        """Merge ``changes`` into the stored session, by the session's writer task; the
        session id, or None when it is gone."""
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
            expected = await self._call.get(key)
        for attempt in range(_MAX_ATTEMPTS):
            if expected is None:
                return None, None
            current = decode_record(session_id, expected, self._codec)
            if current is None:
                return None, None
            for waiter in batch:
                current = merge(current, waiter.record, waiter.changes)
            raw = dump_record(current, codec=self._codec)
            px = max(ms(ttl_of(waiter.ttl, current)) for waiter in batch)
            cas = ("EVALSHA", _CAS_SHA, 1, key, expected, raw, px)
            result = await self._batch.submit(cas)
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


@dataclass(slots=True)
class _Waiter:
    record: SessionRecord
    changes: Changes
    ttl: TTL
    future: asyncio.Future[str | None]


def _settle(waiters: list[_Waiter], outcome: str | BaseException | None) -> None:
    for waiter in waiters:
        settle(waiter.future, outcome)


def decode_record(session_id: str, raw: str | bytes, codec: Codec | None) -> SessionRecord | None:
    """The record stored under a session key, None when it is corrupt (logged); it keeps the
    raw value as its stamp, for the compare-and-set of its save."""
    try:
        record = load_record(session_id, raw, codec)
    except ValueError:
        log.warning("ignoring a corrupt session record in redis")
        return None
    record.stamp = raw
    return record
