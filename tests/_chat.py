"""Helpers for the chat example's tests: a user with a cookie jar, and frame readers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from yarl import URL

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    """The CSRF token of a page's form."""
    found = CSRF_FIELD.search(page)
    assert found, "no csrf field on the page"
    return found.group(1)


@dataclass
class ChatUser:
    """One browser: an HTTP client with its own cookie jar, talking to the chat at ``base``."""

    http: aiohttp.ClientSession
    base: URL
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    def url(self, path: str) -> URL:
        return self.base.join(URL(path))

    @property
    def origin(self) -> str:
        return str(self.base.origin())

    async def page(self) -> str:
        async with self.http.get(self.url("/")) as resp:
            assert resp.status == 200
            return await resp.text()

    async def post(self, path: str, **form: str) -> aiohttp.ClientResponse:
        """POST a form without following the redirect."""
        async with self.http.post(self.url(path), data=form, allow_redirects=False) as resp:
            await resp.read()
            return resp

    async def login(self, name: str) -> None:
        resp = await self.post("/login", username=name, csrf=csrf_of(await self.page()))
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"] == "/"

    async def logout(self) -> None:
        resp = await self.post("/logout", csrf=csrf_of(await self.page()))
        assert resp.status == 303

    async def connect(self, **kwargs: Any) -> aiohttp.ClientWebSocketResponse:
        """Open /ws as a browser would (with the page's Origin); nothing read yet."""
        kwargs.setdefault("origin", self.origin)
        ws = await self.http.ws_connect(self.url("/ws"), **kwargs)
        self.sockets.append(ws)
        return ws

    async def close(self) -> None:
        """Close the sockets still open (an open one would leak its connection)."""
        for ws in self.sockets:
            await ws.close()

    async def join(self) -> aiohttp.ClientWebSocketResponse:
        """Open /ws and read the history frame, which comes first."""
        ws = await self.connect()
        assert (await receive_frame(ws))["type"] == "history"
        return ws


async def receive_frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> Any:
    msg = await ws.receive(timeout=timeout)
    assert msg.type is WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def next_frame(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5.0
) -> dict[str, Any]:
    """The next frame of type ``kind``, skipping frames of other types."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await receive_frame(ws, max(deadline - time.monotonic(), 0.01))
        if frame["type"] == kind:
            result: dict[str, Any] = frame
            return result


async def presence_becomes(
    ws: aiohttp.ClientWebSocketResponse, users: list[str], timeout: float = 5.0
) -> None:
    """Read presence frames until one lists exactly ``users``."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"presence never became {users}; saw {seen}"
        frame = await next_frame(ws, "presence", remaining)
        seen.append(frame["users"])
        if frame["users"] == users:
            return


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 1.0) -> int:
    """Wait for the server to close the socket (frames before are skipped); the close code."""

    async def close_code() -> int:
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.CLOSE:
                code: int = msg.data
                return code
            assert msg.type is WSMsgType.TEXT, msg

    return await asyncio.wait_for(close_code(), timeout)
