"""Two real ``python -m examples.chat --redis URL`` processes sharing one Redis."""

from __future__ import annotations

import asyncio
import os
import socket
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

from aio_sessions import CLOSE_SESSION_FORBIDDEN, CLOSE_SESSION_REVOKED

from ._chat import ChatUser, closed_with, csrf_of, next_frame, presence_becomes
from ._services import free_port

ROOT = Path(__file__).resolve().parent.parent


def chat_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.chat", *args]


def elsewhere() -> dict[str, str]:
    """The environment to run the chat from outside the repository: ``examples`` is not
    installed, so Python finds it through PYTHONPATH, as the chat's README says."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


class ChatProcess:
    """``python -m examples.chat`` on a free loopback port, output kept in a file."""

    def __init__(self, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = URL(f"http://127.0.0.1:{self.port}/")
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            chat_command("--port", str(self.port), *args),
            cwd=cwd,
            env=env,
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
        started.extend(ChatProcess("--redis", redis_url, "--admin", "root") for _ in range(2))
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
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in "abcd"]
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


async def test_a_theme_a_removal_and_a_login_notice_reach_the_other_process(
    fresh_chat: None, processes: list[ChatProcess], browsers: list[aiohttp.ClientSession]
) -> None:
    """session_changes, the require_session check and send_to_user, over the store's Redis
    channel: each is triggered through process A and seen by a socket held by process B."""
    a, b = processes
    await asyncio.gather(a.wait_ready(), b.wait_ready())
    assert "Admins: root" in a.printed()
    alice, alice_on_b = ChatUser(browsers[0], a.url), ChatUser(browsers[0], b.url)
    bob_on_b = ChatUser(browsers[1], b.url)
    alice_elsewhere = ChatUser(browsers[2], a.url)  # another browser
    root = ChatUser(browsers[3], a.url)
    users = (alice, alice_on_b, bob_on_b, alice_elsewhere, root)
    try:
        await alice.login("alice")
        await bob_on_b.login("bob")
        await root.login("root")
        ws_bob = await bob_on_b.join()
        ws_alice = await alice_on_b.join()
        assert (await next_frame(ws_alice, "theme"))["theme"] == "light"
        await presence_becomes(ws_alice, ["alice", "bob"])

        # A theme saved through A reaches alice's tab on B.
        started = time.monotonic()
        resp = await alice.post("/theme", theme="dark", csrf=csrf_of(await alice.page()))
        assert resp.status == 303
        assert await next_frame(ws_alice, "theme", timeout=1.0) == {
            "type": "theme",
            "theme": "dark",
        }
        assert time.monotonic() - started < 1.0

        # A login under her name through A is told to her tab on B.
        await alice_elsewhere.login("alice")
        assert "another browser" in (await next_frame(ws_alice, "notice", timeout=1.0))["text"]

        # An admin on A removes bob: his socket on B closes with 4003.
        started = time.monotonic()
        async with root.http.post(
            root.url("/remove"), data={"username": "bob", "csrf": csrf_of(await root.page())}
        ) as removed:
            assert removed.status == 200
        assert await closed_with(ws_bob) == CLOSE_SESSION_FORBIDDEN
        assert time.monotonic() - started < 1.0
        await presence_becomes(ws_alice, ["alice"])
        assert not ws_alice.closed
    finally:
        for user in users:
            await user.close()


# -- the command line: where it runs from, what it says when it cannot start ------------------


def test_a_port_in_use_is_one_clear_line_and_a_failed_exit() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            chat_command("--port", str(port)), cwd=ROOT, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another chat still running?). "
        f"Pick another with --port, e.g. python -m examples.chat --port {port + 1}"
    ]


async def test_runs_from_any_directory(tmp_path: Path) -> None:
    """Templates and static files are found next to the code, not in the working directory."""
    chat = ChatProcess(cwd=tmp_path, env=elsewhere())
    try:
        await chat.wait_ready()
        async with aiohttp.ClientSession() as http:
            async with http.get(chat.url) as resp:
                assert 'action="/login"' in await resp.text()
            for path in ("static/chat.js", "static/chat.css"):
                async with http.get(chat.url / path) as resp:
                    assert resp.status == 200, path
        assert f"running on {chat.url}" in chat.printed()
    finally:
        assert chat.stop() == 0, chat.printed()
        chat.output.close()
