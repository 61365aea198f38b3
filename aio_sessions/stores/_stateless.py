"""What every store that keeps the whole session in the cookie shares: no server state.

Such a store cannot find, count or delete sessions; the methods that would need server state
say so with a TypeError naming the store, instead of pretending.
"""

from __future__ import annotations

from typing import NoReturn

from .base import Store


class CookieStore(Store):
    """A store whose ``save`` returns the whole session as the cookie value."""

    stateless = True

    async def delete(self, session_id: str) -> bool:
        return False  # nothing on the server; the middleware deletes the cookie

    async def link_user(self, user: str, session_id: str, ttl: float) -> None:
        self._stateless("index sessions by user")

    async def user_sessions(self, user: str) -> list[str]:
        self._stateless("find a user's sessions")

    async def count(self) -> int:
        self._stateless("count sessions")

    async def clear(self) -> None:
        self._stateless("clear sessions (rotate the secret key instead)")

    def _stateless(self, action: str) -> NoReturn:
        raise TypeError(f"{type(self).__name__} keeps sessions in cookies: it cannot {action}")
