"""Redis dying or freezing under load, at small scale (bench/faults.py is the full-size run).

Concurrent clients keep writing while the fault happens. What must hold: every answer is a
200 or a 503 with Retry-After (never a 500), none takes longer than the store's
``command_timeout`` and a margin, the app serves again soon after Redis is back, and every
write that was answered 200 is in Redis at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from aio_sessions import RedisStore, get_session, setup

from ._services import RedisServer

LIMIT = 0.5  # the store's command_timeout in these tests
SESSIONS = 8
WORKERS = 16


async def append(request: web.Request) -> web.Response:
    """Record one unique value as a key of its own (concurrent writers keep each other's)."""
    value = request.query["v"]
    session = await get_session(request)
    session[f"w{value}"] = 1
    return web.Response(text=value)


async def login(request: web.Request) -> web.Response:
    (await get_session(request))["user"] = "load"
    return web.Response(text="ok")


@dataclass
class Run:
    """What the clients saw: (started, finished, status, has Retry-After) per request."""

    answers: list[tuple[float, float, int, bool]] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    hung: int = 0


async def drive(server: TestServer, cookies: list[str], seconds: float) -> Run:
    """``WORKERS`` clients writing unique values round-robin over the sessions."""
    run = Run()
    deadline = time.monotonic() + seconds
    url = server.make_url("/append")

    async def worker(n: int, http: aiohttp.ClientSession) -> None:
        i = 0
        while time.monotonic() < deadline:
            value = f"{n}-{i}"
            cookie = cookies[(n + i) % len(cookies)]
            i += 1
            started = time.monotonic()
            try:
                async with asyncio.timeout(LIMIT + 3):
                    async with http.get(url, params={"v": value}, headers={"Cookie": cookie}) as r:
                        body = await r.text()
                        status, retry = r.status, "Retry-After" in r.headers
            except TimeoutError:
                run.hung += 1
                continue
            run.answers.append((started, time.monotonic(), status, retry))
            if status == 200:
                assert body == value
                run.acknowledged.add(value)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        await asyncio.gather(*(worker(n, http) for n in range(WORKERS)))
    return run


async def stored_values(redis: Redis) -> set[str]:
    values: set[str] = set()
    async for key in redis.scan_iter("AIOHTTP_SESSION_*", _type="string"):
        doc = json.loads(await redis.get(key))
        values.update(k[1:] for k in doc["session"] if k.startswith("w"))
    return values


async def fault_run(
    aiohttp_server: Any, redis_server: RedisServer, fault: str
) -> tuple[Run, float, float]:
    """Load for 5 s; the fault at 1 s, healed at 3 s. Returns the run, fault and heal times."""
    app = web.Application()
    setup(app, RedisStore.from_url(redis_server.url, command_timeout=LIMIT))
    app.router.add_get("/append", append)
    app.router.add_post("/login", login)
    server = await aiohttp_server(app)
    cookies = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for _ in range(SESSIONS):
            async with http.post(server.make_url("/login")) as resp:
                assert resp.status == 200
                cookies.append(f"AIOHTTP_SESSION={resp.cookies['AIOHTTP_SESSION'].value}")
    load = asyncio.ensure_future(drive(server, cookies, 5.0))
    await asyncio.sleep(1.0)
    assert redis_server.process is not None
    pid = redis_server.process.pid
    broke = time.monotonic()
    if fault == "kill":
        os.kill(pid, signal.SIGKILL)
        redis_server.process.wait()
    else:
        os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(2.0)
    healed = time.monotonic()
    if fault == "kill":
        await asyncio.to_thread(redis_server.start)
    else:
        os.kill(pid, signal.SIGCONT)
    return await load, broke, healed


@pytest.mark.parametrize("fault", ["kill", "stop"])
async def test_redis_fault_under_load_loses_no_acknowledged_write(
    aiohttp_server: Any, own_redis: RedisServer, fault: str
) -> None:
    run, broke, healed = await fault_run(aiohttp_server, own_redis, fault)
    statuses = {status for _, _, status, _ in run.answers}
    assert run.hung == 0, "a request outlived the command timeout by 3 s"
    assert statuses <= {200, 503}, statuses
    assert all(retry for _, _, status, retry in run.answers if status == 503)
    slowest = max(end - start for start, end, _, _ in run.answers)
    assert slowest < LIMIT + 1.5, slowest
    before = [s for start, end, s, _ in run.answers if end < broke]
    during = [s for start, end, s, _ in run.answers if start > broke + LIMIT and end < healed]
    after = [s for start, _, s, _ in run.answers if start > healed + 1.0]  # 2 s allowed
    assert before
    assert set(before) == {200}
    assert during
    assert set(during) == {503}
    assert after
    assert after.count(200) / len(after) >= 0.9, after.count(503)
    client = Redis.from_url(own_redis.url)
    try:
        stored = await stored_values(client)
    finally:
        await client.aclose()
    assert run.acknowledged, "nothing was acknowledged"
    assert not run.acknowledged - stored, f"lost {len(run.acknowledged - stored)} writes"
