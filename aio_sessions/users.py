"""The per-user index: which sessions belong to a user, for "log out everywhere".

Stores keep the index (``link_user`` / ``user_sessions``); this module decides when an
entry must be written or renewed, and what names a user: the value under ``user_key``, a
``str`` or an ``int`` (the same user as its decimal string).
"""

from __future__ import annotations

import logging

from ._ids import user_id
from .config import SessionConfig
from .stores.base import SessionRecord, Store

log = logging.getLogger("aio_sessions")


class UserIndex:
    """When a session's entry in its user's index must be renewed, and who its user is."""

    def __init__(self, store: Store, config: SessionConfig) -> None:
        self._store = store
        self._config = config

    async def renew(self, record: SessionRecord, now: float, *, wrote_user: bool) -> None:
        """Keep the session in its user's index for at least as long as it can live."""
        link = self.due(record, now, wrote_user=wrote_user)
        if link is not None:
            await self._store.link_user(*link)

    def due(
        self, record: SessionRecord, now: float, *, wrote_user: bool
    ) -> tuple[str, str, float] | None:
        """The ``link_user`` arguments when the index entry must be renewed, else None.

        It must when the request wrote the user, when the session has never been indexed
        (aiohttp-session's records), and when the session now outlives its entry
        (``record.linked``, set here), which an active session does about once per lifetime.
        """
        key = self._config.user_key
        if key is None or self._store.stateless:
            return None
        value = record.data.get(key)
        if value is None:
            return None
        if wrote_user:
            user = user_id(value, key)
        else:
            if record.linked is not None and record.linked >= self._config.expires_at(record):
                return None
            try:
                user = user_id(value, key)
            except TypeError as exc:  # stored before this rule: keep serving it
                log.warning("session not indexed by user: %s", exc)
                return None
        if user is None:
            return None
        ttl = 2 * self._config.ttl(record, now)
        record.linked = now + ttl
        return user, record.id, ttl

    def of(self, record: SessionRecord) -> str | None:
        """The user a record names, or None when it names none or none that can be indexed."""
        key = self._config.user_key
        if key is None:
            return None
        try:
            return user_id(record.data.get(key), key)
        except TypeError:
            return None

    def name(self, user: str | int) -> str:
        """The name the index knows ``user`` by (an int as its decimal string)."""
        key = self._config.user_key
        if key is None:
            raise TypeError("sessions are not indexed by user: setup(user_key=None)")
        name = user_id(user, key)
        if name is None:
            raise TypeError("logout_user needs a user (a str or an int), got None")
        return name
