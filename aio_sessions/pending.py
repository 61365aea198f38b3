"""What a session has to write back and what its response's cookie must say.

The ``Session`` keeps this bookkeeping in a ``Pending`` of its own; the manager reads and
updates it (``session.pending_of``) when it saves and commits. Package-internal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .stores.base import Changes

if TYPE_CHECKING:
    from .devices import Doomed


class Pending:
    """A session's unsaved state, for the manager."""

    __slots__ = ("changed", "cookie", "doomed", "due", "max_age_set", "new", "token", "touch")

    def __init__(self, new: bool, token: str | None, due: bool) -> None:
        #: Not stored yet.
        self.new = new
        #: Keys this request assigned (True) or deleted (False). One dict, not two sets: a
        #: socket keeps its Session for hours, and an empty set costs 216 bytes.
        self.changed: dict[str, bool] = {}
        #: The lifetime is to be extended (``touch()``, ``max_age`` set).
        self.touch = False
        #: This request assigned max_age: only then is the stored one replaced.
        self.max_age_set = False
        #: Set at load: the session changed nothing but should record this activity.
        self.due = due
        #: Sessions this request ended, deleted on save: (id, reason, what it was).
        self.doomed: tuple[Doomed, ...] = ()
        #: The cookie the response must carry: a value, "" to delete it, or None.
        self.cookie: str | None = None
        #: The cookie value the browser has: the one the request arrived with, or the last
        #: one stored or announced.
        self.token = token

    def any(self) -> bool:
        """Whether committing has anything to do in the store (cheap: every request asks)."""
        return bool(self.new or self.doomed or self.changed or self.touch or self.due)

    def changes(self, data: Mapping[str, Any]) -> Changes:
        """The keys changed since the last save, with their values in ``data``."""
        changed = self.changed
        return Changes(
            {k: data[k] for k, kept in changed.items() if kept},
            frozenset(k for k, kept in changed.items() if not kept),
            self.max_age_set,
        )

    def saved(self, token: str, *, resend: bool) -> None:
        """The session was stored under ``token``; its cookie goes out when the browser does
        not have that value yet, or with ``resend``."""
        if resend or token != self.token:
            self.cookie = token
        self.token = token
        self.clear()

    def clear(self) -> None:
        """Nothing left to write."""
        self.new = False
        self.touch = False
        self.max_age_set = False
        self.due = False
        self.changed.clear()
