"""How RedisStore sends a command: bounded in time, bounded in number, outages named.

redis-py's asyncio pools hold 100 connections unless told otherwise (per node, for a
Cluster), and a command that finds them all busy fails at once with ``MaxConnectionsError``
instead of waiting. A burst of requests would then be answered 503 by a Redis that is fine.
So the store lets at most as many of its commands be in flight as the pool can serve, less
the one connection its pub/sub listener holds, and the others wait their turn, within the
same ``command_timeout`` as the command itself.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis, RedisCluster

from ..errors import StoreUnavailable

# Errors that mean "Redis cannot be reached or cannot serve now", as opposed to a bug.
UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
    redis_errors.MasterDownError,
    # Something that is not Redis answered (another service's port): an outage too.
    redis_errors.InvalidResponse,
    OSError,
)

# A pool larger than this is unbounded in practice: no limiter, no cost per command.
_UNBOUNDED = 100_000


if sys.version_info >= (3, 11):

    async def _within(awaitable: Awaitable[Any], limit: float) -> Any:
        """``awaitable``'s result, or asyncio.TimeoutError after ``limit`` seconds."""
        async with asyncio.timeout(limit):  # a timer, not wait_for's task per command
            return await awaitable

else:  # pragma: no cover - Python 3.10
    _within = asyncio.wait_for


def outage(outcome: Any) -> Any:
    """A command's outcome, StoreUnavailable if it is an outage (a Cluster pipeline reports
    a lost node in place, for its commands alone)."""
    return _unavailable(outcome) if isinstance(outcome, UNAVAILABLE) else outcome


def _unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"redis: {type(exc).__name__}: {exc}")


def pool_size(client: Redis | RedisCluster) -> int:
    """How many connections the client's pool may open (per node, for a Cluster)."""
    if isinstance(client, RedisCluster):
        size = client.nodes_manager.connection_kwargs.get("max_connections")
    else:
        size = getattr(client.connection_pool, "max_connections", None)
    return size if isinstance(size, int) and size > 0 else _UNBOUNDED


class Calls:
    """Awaits the commands of one client: each within ``timeout`` seconds (None: the client's
    own settings alone), at most ``pool_size - 1`` at a time, an outage as StoreUnavailable."""

    def __init__(self, client: Redis | RedisCluster, timeout: float | None) -> None:
        self.client = client
        self.timeout = timeout
        size = pool_size(client)
        self._slots = asyncio.Semaphore(max(1, size - 1)) if size < _UNBOUNDED else None

    async def __call__(
        self, command: Awaitable[Any], *, bounded: bool = True, pooled: bool = True
    ) -> Any:
        """Await one command (a coroutine not started yet).

        ``bounded=False``: a wait of its own (the listener's). ``pooled=False``: the command
        runs on a connection of its own (the listener's), not one of the pool's.
        """
        limit = self.timeout if bounded else None
        slots = self._slots if pooled else None
        awaitable = command if slots is None else _in_turn(slots, command)
        try:
            if limit is None:
                return await awaitable
            return await _within(awaitable, limit)
        except asyncio.TimeoutError:  # before OSError, of which it is a subclass
            raise StoreUnavailable(f"redis: no answer within {limit:g}s") from None
        except UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    async def get(self, key: str) -> bytes | str | None:
        """GET one session key; a key of another type (a hash, a list) reads as b"" (corrupt).

        MGET already reads such keys as missing, where GET would fail the request.
        """
        try:
            value: bytes | str | None = await self(self.client.get(key))
        except redis_errors.ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            return b""
        return value

    async def each(self, keys: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The items of a redis-py iterator such as ``scan_iter``, each fetched in turn and
        within ``timeout``; the iterator is closed when this one is."""
        try:
            while True:
                try:
                    item = await self(_next(keys))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            await _close(keys)


def ms(ttl: float) -> int:
    """A TTL in seconds as Redis's milliseconds (PX, PEXPIRE): rounded up, at least 1."""
    return max(1, math.ceil(ttl * 1000))


async def _in_turn(slots: asyncio.Semaphore, command: Awaitable[Any]) -> Any:
    try:
        async with slots:
            return await command
    finally:
        close = getattr(command, "close", None)  # a coroutine whose turn never came
        if close is not None:
            close()  # (a no-op once it ran)


async def _next(items: AsyncIterator[Any]) -> Any:
    return await items.__anext__()


async def _close(items: AsyncIterator[Any]) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
