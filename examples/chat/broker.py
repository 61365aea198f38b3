"""Brokers: where chat messages, history and presence live, one class per backend.

A broker turns "alice said hi" or "bob opened a tab" into frames for every socket of the
chat, in this process or (with Redis) in any process. The app hands each frame the broker
emits to its local sockets (see ``room.py``); the broker never sees a socket.

``MemoryBroker`` serves one process. ``RedisBroker`` serves any number of processes on one
Redis:

- messages: ``LPUSH`` + ``LTRIM`` on the list ``chat:history`` (newest first, 50 kept) and
  ``PUBLISH`` on the channel ``chat:events``, in one ``MULTI``;
- presence: the sorted set ``chat:presence`` holds one member ``<process>:<user>`` per user
  with a socket in that process, scored with an expiry time. A process adds the member on its
  user's first socket, removes it on the last, and refreshes its members every 10 seconds;
  members of a crashed process stop counting 30 seconds later (readers ignore expired
  scores, the heartbeat deletes them). On every join and leave the process publishes
  ``{"type": "presence"}`` and every process answers it with a fresh read of the set, so
  concurrent joins on two processes can never leave a stale list on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("examples.chat")

#: A JSON object sent to the browsers, e.g. ``{"type": "message", ...}``.
Frame = dict[str, Any]
Listener = Callable[[Frame], None]

#: How many messages the history keeps and a new socket receives.
HISTORY_SIZE = 50


class BrokerError(Exception):
    """The broker's backend cannot be reached; the message was not delivered."""


def message_frame(user: str, text: str) -> Frame:
    """A chat message as every socket receives it (and as the history keeps it)."""
    return {"type": "message", "user": user, "text": text, "ts": round(time.time(), 3)}


def presence_frame(users: list[str]) -> Frame:
    return {"type": "presence", "users": users}


class Broker(ABC):
    """Publishes messages and presence; delivers the resulting frames to its listeners."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(frame)`` for every message and presence frame from now on."""
        self._listeners.append(listener)

    def _emit(self, frame: Frame) -> None:
        for listener in self._listeners:
            listener(frame)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect to the backend (called on application startup)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect (called on application cleanup)."""

    @abstractmethod
    async def publish(self, message: Frame) -> None:
        """Append a message frame to the history and send it to every socket."""

    @abstractmethod
    async def history(self) -> list[Frame]:
        """The last ``HISTORY_SIZE`` messages, oldest first."""

    @abstractmethod
    async def join(self, user: str) -> None:
        """A socket of ``user`` opened: count it and send everyone the presence list."""

    @abstractmethod
    async def leave(self, user: str) -> None:
        """A socket of ``user`` closed: uncount it and send everyone the presence list."""

    @abstractmethod
    async def users(self) -> list[str]:
        """The users with at least one open socket, sorted."""


class MemoryBroker(Broker):
    """Everything in this process: for a single server."""

    def __init__(self) -> None:
        super().__init__()
        self._history: deque[Frame] = deque(maxlen=HISTORY_SIZE)
        self._sockets: Counter[str] = Counter()

    async def publish(self, message: Frame) -> None:
        self._history.append(message)
        self._emit(message)

    async def history(self) -> list[Frame]:
        return list(self._history)

    async def join(self, user: str) -> None:
        self._sockets[user] += 1
        self._emit(presence_frame(await self.users()))

    async def leave(self, user: str) -> None:
        self._sockets[user] -= 1
        if self._sockets[user] <= 0:
            del self._sockets[user]
        self._emit(presence_frame(await self.users()))

    async def users(self) -> list[str]:
        return sorted(self._sockets)


#: Seconds a process's presence counts without a heartbeat, and between heartbeats.
PRESENCE_TTL = 30.0
HEARTBEAT = 10.0
_PRESENCE_CHANGED = json.dumps({"type": "presence"})


class RedisBroker(Broker):
    """Messages, history and presence shared by every process on one Redis."""

    def __init__(self, url: str, *, prefix: str = "chat:") -> None:
        super().__init__()
        # Imported here: only ``--redis`` needs the redis package.
        from redis.asyncio import Redis
        from redis.exceptions import ConnectionError, RedisError

        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2,
            retry_on_error=[ConnectionError],  # reconnect pooled connections after a restart
        )
        self._errors: tuple[type[Exception], ...] = (RedisError, OSError)
        self.channel = f"{prefix}events"
        self.history_key = f"{prefix}history"
        self.presence_key = f"{prefix}presence"
        self._process = secrets.token_hex(6)  # members of this process: "<process>:<user>"
        self._sockets: Counter[str] = Counter()
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe (before returning, so no later message is missed) and start the loops."""
        self._pubsub = await self._call(self._subscribe())
        self._tasks = [
            asyncio.create_task(self._listen(), name="chat-listen"),
            asyncio.create_task(self._heartbeat(), name="chat-heartbeat"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            # redis-py can swallow a cancellation inside get_message: cancel until done.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
        mine = [self._member(user) for user in self._sockets]
        with contextlib.suppress(*self._errors):
            if mine:  # leave at once instead of lingering until the members expire
                await self._redis.zrem(self.presence_key, *mine)
                await self._redis.publish(self.channel, _PRESENCE_CHANGED)
        await self._drop_pubsub()
        await self._redis.aclose()

    async def _subscribe(self) -> PubSub:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=False)
        await pubsub.subscribe(self.channel)
        # Wait for Redis to confirm: from then on every PUBLISH reaches this process.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            event = await pubsub.get_message(timeout=1.0)
            if event is not None and event["type"] == "subscribe":
                return pubsub
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        raise BrokerError("redis did not confirm the subscription")

    async def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*self._errors):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except self._errors as exc:
            raise BrokerError(f"redis: {type(exc).__name__}: {exc}") from exc

    # -- the two loops ----------------------------------------------------------------------

    async def _listen(self) -> None:
        """Deliver the channel's frames; after an outage resubscribe with backoff."""
        failures: tuple[type[Exception], ...] = (*self._errors, BrokerError)
        delay = 0.1
        while not self._closing:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                    delay = 0.1
                    await self._catch_up()
                event = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if event is not None and event["type"] == "message":
                    await self._on_event(event["data"])
                delay = 0.1
            except failures as exc:
                log.warning("chat lost redis (%s); retrying in %.1fs", exc, delay)
                await self._drop_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _catch_up(self) -> None:
        """After resubscribing: what was published meanwhile never reached this process,
        so send every socket the history (pages replace their list) and the presence.
        Redis may also have lost this process's presence: put it back first."""
        await self._refresh()
        self._emit({"type": "history", "messages": await self.history()})
        self._emit(presence_frame(await self.users()))

    async def _on_event(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("ignoring a malformed chat event")
            return
        if frame.get("type") == "presence":
            # Read the set now: whatever order the notices arrive in, the last read wins.
            self._emit(presence_frame(await self.users()))
        elif frame.get("type") == "message":
            self._emit(frame)

    async def _heartbeat(self) -> None:
        """Keep this process's members alive; drop dead processes' members."""
        while not self._closing:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._refresh()
            except self._errors as exc:
                log.warning("chat presence heartbeat failed: %s", exc)

    async def _refresh(self) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            if self._sockets:
                expiry = now + PRESENCE_TTL
                pipe.zadd(self.presence_key, {self._member(u): expiry for u in self._sockets})
            pipe.zremrangebyscore(self.presence_key, "-inf", now)
            results = await pipe.execute()
        # Someone appeared (Redis lost our members and got them back) or expired: tell all.
        if any(results):
            await self._redis.publish(self.channel, _PRESENCE_CHANGED)

    # -- the broker interface ----------------------------------------------------------------

    def _member(self, user: str) -> str:
        return f"{self._process}:{user}"

    async def publish(self, message: Frame) -> None:
        raw = json.dumps(message)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.history_key, raw)
            pipe.ltrim(self.history_key, 0, HISTORY_SIZE - 1)
            pipe.publish(self.channel, raw)
            await self._call(pipe.execute())

    async def history(self) -> list[Frame]:
        raws = await self._call(self._redis.lrange(self.history_key, 0, HISTORY_SIZE - 1))
        messages = []
        for raw in reversed(raws):
            with contextlib.suppress(ValueError):
                messages.append(json.loads(raw))
        return messages

    async def join(self, user: str) -> None:
        self._sockets[user] += 1
        try:
            if self._sockets[user] == 1:
                expiry = time.time() + PRESENCE_TTL
                await self._redis.zadd(self.presence_key, {self._member(user): expiry})
            await self._redis.publish(self.channel, _PRESENCE_CHANGED)
        except self._errors as exc:  # the heartbeat adds the member once Redis is back
            log.warning("chat could not announce %s: %s", user, exc)

    async def leave(self, user: str) -> None:
        self._sockets[user] -= 1
        try:
            if self._sockets[user] <= 0:
                del self._sockets[user]
                await self._redis.zrem(self.presence_key, self._member(user))
            await self._redis.publish(self.channel, _PRESENCE_CHANGED)
        except self._errors as exc:  # the member expires by itself
            log.warning("chat could not announce %s left: %s", user, exc)

    async def users(self) -> list[str]:
        members = await self._call(
            self._redis.zrangebyscore(self.presence_key, time.time(), "+inf")
        )
        return sorted({member.partition(":")[2] for member in members})
