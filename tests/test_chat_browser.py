"""The chat page end to end in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSCloseCode, web

from aio_sessions import get_manager
from examples.chat.app import ROOM, make_app

from ._services import unavailable

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
except ImportError:  # pragma: no cover - reported by the fixture
    async_playwright = None

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "test-artifacts" / "chat.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
async def chat() -> AsyncIterator[tuple[str, web.Application]]:
    """The chat app on a free loopback port, in this test's event loop."""
    app = make_app()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/", app
    finally:
        await runner.cleanup()


def need_browser() -> None:
    """Skip locally, fail under CI, without Playwright or Debian's Chromium."""
    if async_playwright is None:
        unavailable("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        unavailable(f"no {CHROMIUM} (apt-get install chromium)")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    need_browser()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


class Problems:
    """Uncaught script errors and CSP violations of the pages watched; sockets they open."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.sockets: dict[Page, int] = {}

    def watch(self, page: Page) -> Page:
        self.sockets[page] = 0
        page.on("pageerror", lambda error: self.seen.append(f"pageerror: {error}"))
        page.on("console", self._console)
        page.on("websocket", lambda _: self.sockets.update({page: self.sockets[page] + 1}))
        return page

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.seen.append(f"console: {message.text}")


async def log_in(context: BrowserContext, url: str, name: str, problems: Problems) -> Page:
    page = problems.watch(await context.new_page())
    await page.goto(url)
    await page.fill("#username", name)
    await page.click("#login button[type=submit]")
    await expect(page.locator("#status")).to_have_attribute("data-state", "open")
    return page


async def say(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await expect(page.locator("#text")).to_have_value("")


async def test_two_browsers_chat_reconnect_and_log_out(
    chat: tuple[str, web.Application], browser: Browser
) -> None:
    url, app = chat
    problems = Problems()
    viewport = {"width": 980, "height": 620}
    alice_context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    bob_context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    alice = await log_in(alice_context, url, "alice", problems)
    bob = await log_in(bob_context, url, "bob", problems)

    # Presence and a message each way; user text is shown as text, never as markup.
    for page in (alice, bob):
        await expect(page.locator("#users .name")).to_have_text(["alice", "bob"])
    await say(alice, "Hi Bob! Is <b>this</b> bold?")
    await say(bob, "Hello Alice, ça va? plain text: 1 < 2 && 3 > 2")
    for page in (alice, bob):
        texts = page.locator("#messages .text")
        await expect(texts).to_have_text(
            ["Hi Bob! Is <b>this</b> bold?", "Hello Alice, ça va? plain text: 1 < 2 && 3 > 2"]
        )
        await expect(page.locator("#messages .author")).to_have_text(["alice", "bob"])
        assert await page.locator("#messages b").count() == 0
    await expect(alice.locator("#messages .message.mine .text")).to_have_text(
        ["Hi Bob! Is <b>this</b> bold?"]
    )

    # A dropped connection (not a logout): both pages reconnect by themselves, and the
    # history they get again replaces the list instead of duplicating it.
    await app[ROOM].close_all(code=WSCloseCode.SERVICE_RESTART)
    for page in (alice, bob):
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
    await say(bob, "Back again.")
    await expect(alice.locator("#messages .text")).to_have_count(3)
    await expect(alice.locator("#messages .text").last).to_have_text("Back again.")

    # Alice logs out in a second tab: her first tab is told, and does not reconnect.
    second_tab = problems.watch(await alice_context.new_page())
    await second_tab.goto(url)
    alice_sockets = problems.sockets[alice]
    await second_tab.click("#logout button")
    await expect(second_tab.locator("#login")).to_be_visible()
    notice = alice.locator("#notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("You were logged out")
    await expect(notice.get_by_role("link", name="Log in again")).to_have_attribute("href", "/")
    await expect(alice.locator("#status")).to_have_attribute("data-state", "closed")
    await expect(alice.locator("#text")).to_be_disabled()
    await expect(alice.locator("#logout")).to_be_hidden()
    await expect(bob.locator("#users .name")).to_have_text(["bob"])
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await alice.screenshot(path=str(SCREENSHOT))

    # Bob's session ends while his connection is down: the handshake is refused (401), the
    # page finds out and shows the notice instead of retrying forever.
    [cookie] = [c for c in await bob_context.cookies() if c["name"] == "AIOHTTP_SESSION"]
    await get_manager(app).store.delete(cookie["value"])  # gone, sockets left open
    await app[ROOM].close_all(code=WSCloseCode.SERVICE_RESTART)
    await expect(bob.locator("#notice")).to_contain_text("You were logged out")
    bob_sockets = problems.sockets[bob]
    await asyncio.sleep(1.0)  # twice the first reconnection delay
    assert len(app[ROOM]) == 0
    # Neither page tried again: not after close code 4001, not after a refused handshake.
    assert problems.sockets[alice] == alice_sockets
    assert problems.sockets[bob] == bob_sockets == 3  # first, after the drop, refused

    assert problems.seen == []
    assert SCREENSHOT.stat().st_size > 10_000
