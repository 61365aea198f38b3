"""The store's event channel: one listener per process, messages dispatched by kind.

Stores shared by several processes (Redis) carry small, versioned JSON documents between
them: ``{"v": 1, "kind": ..., "origin": ...}`` plus the kind's fields. Session ids and user
names never travel in clear, only their fingerprints. Single-process stores carry nothing:
every handler runs locally only.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from .errors import StoreUnavailable
from .stores.base import Store

log = logging.getLogger("aio_sessions")

#: The version of the documents this library publishes; others are ignored.
VERSION = 1
# Retry delays of the listener after the store's channel fails, in seconds.
_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)

Handler = Callable[[dict[str, Any]], None]


@functools.lru_cache(maxsize=16384)  # one per active session or user, not per socket
def fingerprint(value: str) -> str:
    """What crosses processes instead of a session id or a user name: a hash of it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def strings(value: object) -> list[str]:
    """A list of strings from another process's document (fingerprints, key names);
    TypeError when it is anything else, so a malformed document is logged and ignored."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("expected a list of strings")
    return value


class Events:
    """Publishes this process's events and hands other processes' events to handlers."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._handlers: dict[str, Handler] = {}
        self._origin = secrets.token_hex(8)  # tells this process's documents apart
        self._listener: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def shared(self) -> bool:
        """Whether events reach other processes (the store carries them)."""
        return self._store.shares_events

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler`` with each document of ``kind`` another process publishes."""
        self._handlers[kind] = handler

    async def publish(self, kind: str, **fields: Any) -> None:
        """Send a document to the other processes; nothing when the store shares none."""
        if self._store.shares_events:
            doc = {"v": VERSION, "kind": kind, "origin": self._origin, **fields}
            await self._store.publish(json.dumps(doc, separators=(",", ":")))

    def dispatch(self, raw: str) -> None:
        """Hand one published document to its handler; malformed ones are logged, not fatal."""
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("origin") == self._origin:
                return
            if doc.get("v") != VERSION:
                raise ValueError(f"unknown version {doc.get('v')!r}")
            handler = self._handlers[doc["kind"]]
            handler(doc)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed session event")

    async def start(self) -> None:
        """Listen for other processes' documents, when the store carries them."""
        if self._store.shares_events and self._listener is None:
            self._stopping = False
            self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                async for raw in self._store.listen():
                    failures = 0
                    self.dispatch(raw)
                    if self._stopping:
                        return
            except Exception as exc:  # any failure: the listener must outlive it
                delay = _BACKOFF[min(failures, len(_BACKOFF) - 1)]
                failures += 1
                if isinstance(exc, StoreUnavailable):
                    log.warning(
                        "session event listener lost the store (%s); retrying in %ss", exc, delay
                    )
                else:
                    log.exception("event listener failed; retrying in %ss", delay)
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Stop listening."""
        self._stopping = True
        listener, self._listener = self._listener, None
        # A client library may swallow one cancellation (redis-py can, after its pool was
        # closed): cancel until the task is really done.
        while listener is not None and not listener.done():
            listener.cancel()
            await asyncio.wait({listener}, timeout=0.1)
