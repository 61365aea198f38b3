"""Two real ``python -m examples.chat --redis URL`` processes sharing one Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis
from yarl import URL

from aio_sessions import CLOSE_SESSION_REVOKED

from ._chat import ChatUser, closed_with, next_frame, presence_becomes
from ._services import free_port

ROOT = Path(__file__).resolve().parent.parent


class ChatProcess:
    """``python -m examples.chat`` on a free loopback port, output kept in a file."""

    def __init__(self, redis_url: str) -> None:
        self.port = free_port()
        self.url = URL(f"http://127.0.0.1:{self.port}/")
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.chat", "--port", str(self.port), "--redis", redis_url],
            cwd=ROOT,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def printed(self) -> str:
        self.output.seek(0)
        return self.output.read().decode(errors="replace")

    async def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process.poll() is None, f"chat exited:\n{self.printed()}"
                assert time.monotonic() < deadline, f"chat not answering:\n{self.printed()}"
                try:
                    async with http.get(self.url) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, as Ctrl+C or a service manager would; the exit code, None if killed."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode


@pytest.fixture
def processes(redis_url: str) -> Iterator[list[ChatProcess]]:
    started: list[ChatProcess] = []
    try:
        started.extend(ChatProcess(redis_url) for _ in range(2))
        yield started
    finally:
        for process in started:
            process.stop()
            process.output.close()


@pytest.fixture
async def fresh_chat(redis_url: str) -> None:
    """No history or presence left by an earlier run on this Redis."""
    redis = Redis.from_url(redis_url)
    await redis.delete("chat:history", "chat:presence")
    await redis.aclose()


@pytest.fixture
async def browsers() -> AsyncIterator[list[aiohttp.ClientSession]]:
    # unsafe: keep cookies of an IP-address host. Cookies ignore ports, so one jar sends
    # alice's session cookie to both processes, as a browser would.
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in "ab"]
    yield sessions
    for session in sessions:
        await session.close()


async def test_users_on_two_processes_chat_and_logout_reaches_both(
    fresh_chat: None, processes: list[ChatProcess], browsers: list[aiohttp.ClientSession]
) -> None:
    a, b = processes
    await asyncio.gather(a.wait_ready(), b.wait_ready())
    for process in processes:
        assert f"running on {process.url}" in process.printed()

    alice = ChatUser(browsers[0], a.url)
    alice_on_b = ChatUser(browsers[0], b.url)  # the same browser, the other process
    bob = ChatUser(browsers[1], b.url)
    try:
        await alice.login("alice")
        assert 'data-username="alice"' in await alice_on_b.page()  # the session is in Redis
        await bob.login("bob")

        ws_alice = await alice.join()
        ws_bob = await bob.join()
        await presence_becomes(ws_alice, ["alice", "bob"])
        await presence_becomes(ws_bob, ["alice", "bob"])

        await ws_alice.send_json({"type": "message", "text": "hello from A"})
        for ws in (ws_alice, ws_bob):
            message = await next_frame(ws, "message")
            assert (message["user"], message["text"]) == ("alice", "hello from A")
        await ws_bob.send_json({"type": "message", "text": "hello from B"})
        for ws in (ws_alice, ws_bob):
            message = await next_frame(ws, "message")
            assert (message["user"], message["text"]) == ("bob", "hello from B")

        # Both processes serve the same history.
        history = [
            m["text"] for m in (await next_frame(await bob.connect(), "history"))["messages"]
        ]
        assert history[-2:] == ["hello from A", "hello from B"]

        alice_socket_on_b = await alice_on_b.join()
        started = time.monotonic()
        await alice.logout()  # through process A
        assert await closed_with(alice_socket_on_b) == CLOSE_SESSION_REVOKED
        assert await closed_with(ws_alice) == CLOSE_SESSION_REVOKED
        assert time.monotonic() - started < 1.0
        await presence_becomes(ws_bob, ["bob"])
        assert not ws_bob.closed
    finally:
        for user in (alice, alice_on_b, bob):
            await user.close()
    for process in processes:  # a prompt, clean exit on SIGTERM
        assert process.stop() == 0, process.printed()
