"""Push: messages to every socket of a user or a session, in every process.

Each socket has a bounded queue of frames and, while it is not empty, one task that sends
them, so a slow or dead socket never blocks the sender or the other sockets. A frame that
finds its socket's queue full is dropped and logged: delivery is at most once.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .events import Events, strings

if TYPE_CHECKING:
    from .registry import Binding, SocketRegistry

log = logging.getLogger("aio_sessions")

#: Frames a socket may have waiting before new ones are dropped.
QUEUE_LIMIT = 64


def encode(message: Any) -> str | bytes:
    """A ``str`` is a text frame, ``bytes`` a binary frame, anything else JSON text."""
    if isinstance(message, (str, bytes)):
        return message
    if isinstance(message, (bytearray, memoryview)):
        return bytes(message)
    return json.dumps(message, separators=(",", ":"))


class Pusher:
    """Delivers pushed frames to this process's sockets and publishes them to the others."""

    def __init__(self, registry: SocketRegistry, events: Events) -> None:
        self._registry = registry
        self._events = events
        events.on("push", self._on_push)

    async def send(
        self, message: Any, *, sessions: Sequence[str] = (), users: Sequence[str] = ()
    ) -> int:
        """Queue ``message`` for the sockets of these fingerprints, here and elsewhere."""
        frame = encode(message)
        sessions, users = list(sessions), list(users)
        sent = self.deliver(self._registry.bindings(sessions, users), frame)
        if self._events.shared:
            binary = isinstance(frame, bytes)
            data = base64.b64encode(frame).decode() if isinstance(frame, bytes) else frame
            await self._events.publish(
                "push", sessions=sessions, users=users, binary=binary, data=data
            )
        return sent

    def _on_push(self, doc: dict[str, Any]) -> None:
        data = doc["data"]
        if not isinstance(data, str):
            raise TypeError("push data is not text")
        frame: str | bytes = base64.b64decode(data, validate=True) if doc["binary"] else data
        targets = self._registry.bindings(strings(doc["sessions"]), strings(doc["users"]))
        self.deliver(targets, frame)

    def deliver(self, bindings: list[Binding], frame: str | bytes) -> int:
        """Queue a frame on each socket; return how many took it."""
        queued = 0
        for binding in bindings:
            if binding.ws.closed:
                continue
            outbox = binding.outbox
            if outbox is None:
                outbox = binding.outbox = deque()
            if len(outbox) >= QUEUE_LIMIT:
                log.warning("a socket's push queue is full: message dropped")
                continue
            outbox.append(frame)
            queued += 1
            if not binding.sending:
                binding.sending = True
                self._registry.spawn(self._drain(binding))
        return queued

    async def _drain(self, binding: Binding) -> None:
        """Send a socket's queued frames in order; stop at the first failure."""
        try:
            while binding.outbox:
                frame = binding.outbox.popleft()
                if binding.ws.closed:
                    break
                if isinstance(frame, bytes):
                    await binding.ws.send_bytes(frame)
                else:
                    await binding.ws.send_str(frame)
        except (ConnectionError, RuntimeError) as exc:
            log.info("push to a closing socket failed: %s", exc)
            if binding.outbox is not None:
                binding.outbox.clear()
        finally:
            binding.sending = False
