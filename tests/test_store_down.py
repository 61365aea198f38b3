"""A store that is down gives 503 with Retry-After, and the app recovers when it is back.

The real outage (a redis-server stopped and restarted) is tested with the Redis store; here a
MemoryStore that can be switched off checks the middleware's side of the contract.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aio_sessions import MemoryStore, StoreUnavailable, get_session

from .conftest import MakeClient


class SwitchableStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store switched off")

    async def load(self, token: str) -> Any:
        self._check()
        return await super().load(token)

    async def save(self, record: Any, changes: Any, ttl: float) -> Any:
        self._check()
        return await super().save(record, changes, ttl)


async def test_down_store_gives_503_then_recovers(make_client: MakeClient) -> None:
    store = SwitchableStore()

    async def login(request: web.Request) -> web.Response:
        (await get_session(request))["user"] = "alice"
        raise web.HTTPFound("/read")

    client = await make_client(("POST", "/login", login), store=store)
    await client.get("/count")
    store.down = True
    for path in ("/read", "/count"):
        resp = await client.get(path)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert "Session store unavailable" in await resp.text()
    # A fresh visitor whose session is only written at commit time.
    resp = await client.post("/login", allow_redirects=False, cookies={})
    assert resp.status == 503
    store.down = False
    assert (await (await client.get("/count")).json()) == {"n": 2}
