"""The chat page end to end in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSCloseCode, web

from aio_sessions import SQLiteStore, get_manager
from examples.chat.app import NAME_INVISIBLE, ROOM, clean_username, make_app, username_problem

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


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on a loopback port (a free one by default), in this test's event loop."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    served: int = runner.addresses[0][1]
    return runner, served


@pytest.fixture
async def chat() -> AsyncIterator[tuple[str, web.Application]]:
    """The chat app on a free loopback port."""
    app = make_app()
    runner, port = await serve(app)
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


#: Names the login page must judge exactly as the server does (same verdict, same words).
NAMES = [
    *("a", "José", "Jose\u0301", " José\u3000", "Zoë-Ørsted_2", "佐々木", "अमित", "٣٤"),
    *("𠀀" * 32, "x\u0301\u0302\u0303\u0304", "", " \t ", "x" * 33, "𠀀" * 33),
    *("al ice", "a.b", "bob🙂", "ab\x00", "\u0301a", "a-\u0301", "x\u0301\u0302\u0303\u0304\u0305"),
    # Every invisible character the server refuses; the page asks \p{Default_Ignorable...}.
    *(f"a{char}b" for char in sorted(NAME_INVISIBLE)),
]


async def test_unicode_names_long_pastes_an_empty_history_and_close_codes(
    browser: Browser, tmp_path: Path
) -> None:
    problems = Problems()
    database = tmp_path / "sessions.sqlite3"  # logins survive the restart below, messages not
    runner, port = await serve(make_app(SQLiteStore(database)))
    url = f"http://127.0.0.1:{port}/"
    try:
        context = await browser.new_context()
        page = problems.watch(await context.new_page())
        await page.goto(url)
        # The page's check of a name agrees with the server's, message for message.
        said = await page.locator("#username").evaluate(
            """(input, names) => names.map((name) => {
                input.value = name;
                input.dispatchEvent(new Event("input"));
                return input.validationMessage;
            })""",
            NAMES,
        )
        assert said == [username_problem(clean_username(name)) or "" for name in NAMES]
        await page.fill("#username", "a.b")
        await page.click("#login button[type=submit]")  # refused in the page, with the reason
        await expect(page.locator("#login-error")).to_have_text(
            "A name may only contain letters, digits, _ and -."
        )

        # José logs in; the empty conversation says so.
        await page.fill("#username", "José")
        await page.click("#login button[type=submit]")
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await expect(page.locator(".me strong")).to_have_text("José")
        await expect(page.locator("#empty")).to_have_text("No messages yet. Say hello!")

        # A 5,000-character paste is refused with a word, and kept to be shortened.
        await page.fill("#text", "x" * 5000)
        await expect(page.locator("#counter")).to_have_text("5,000 / 2,000")
        await expect(page.locator("#counter")).to_have_class("counter over")
        await page.press("#text", "Enter")
        await expect(page.locator("#error")).to_have_text(
            "Your message has 5,000 characters, the limit is 2,000: shorten it. Nothing was sent."
        )
        assert len(await page.input_value("#text")) == 5000
        await say(page, "¡Hola!")
        await expect(page.locator("#messages .text")).to_have_text(["¡Hola!"])
        await expect(page.locator("#empty")).to_be_hidden()
        await expect(page.locator("#counter")).to_be_hidden()

        # A restart: still logged in (SQLite), but the messages are gone; no blank pane.
        await runner.cleanup()
        runner, _ = await serve(make_app(SQLiteStore(database)), port)
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        await expect(page.locator("#messages .text")).to_have_count(0)
        await expect(page.locator("#empty")).to_have_text("No messages yet. Say hello!")

        # Close codes that end the chat are explained, and the page does not reconnect.
        room = runner.app[ROOM]
        await room.close_all(code=4002)  # CLOSE_SESSION_EXPIRED
        await expect(page.locator("#notice")).to_contain_text(
            "You were logged out: your session expired. Log in again"
        )
        await expect(page.locator("#logout")).to_be_hidden()
        await page.reload()
        await expect(page.locator("#status")).to_have_attribute("data-state", "open")
        sockets = problems.sockets[page]
        await room.close_all(code=4003)  # CLOSE_SESSION_FORBIDDEN
        notice = page.locator("#notice")
        await expect(notice).to_contain_text("Session forbidden: you no longer have access")
        await expect(notice.get_by_role("link", name="Back to the start")).to_be_visible()
        await expect(page.locator("#status")).to_have_text("No access")
        await expect(page.locator("#logout")).to_be_visible()  # the session itself lives
        await asyncio.sleep(0.75)  # longer than the first reconnection delay (0.5 s at most)
        assert problems.sockets[page] == sockets
        assert problems.seen == []
    finally:
        await runner.cleanup()


async def test_a_live_theme_a_login_notice_and_a_removal_as_the_person_sees_them(
    browser: Browser,
) -> None:
    problems = Problems()
    runner, port = await serve(make_app(admins=["root"]))
    url = f"http://127.0.0.1:{port}/"
    try:
        alice_context = await browser.new_context()
        first = await log_in(alice_context, url, "alice", problems)
        second = problems.watch(await alice_context.new_page())  # a second tab, one session
        await second.goto(url)
        await expect(second.locator("#status")).to_have_attribute("data-state", "open")
        await expect(second.locator("html")).to_have_attribute("data-theme", "light")

        # A theme picked in one tab: both switch, without a reload or a reconnection.
        await first.click("#theme button")
        for page in (first, second):
            await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
            await expect(page.locator("#theme button")).to_have_text("Light theme")
        background = "getComputedStyle(document.documentElement).backgroundColor"
        assert await second.evaluate(background) == "rgb(18, 20, 27)"
        assert problems.sockets == {first: 1, second: 1}

        # A login under her name elsewhere: both her tabs say so.
        await log_in(await browser.new_context(), url, "alice", problems)
        for page in (first, second):
            await expect(page.locator("#info")).to_contain_text(
                "Your name was just used to log in from another browser."
            )
        await second.click("#info-close")
        await expect(second.locator("#info")).to_be_hidden()

        # The admin removes her: every tab of hers explains it, and stays logged in.
        root = await log_in(await browser.new_context(), url, "root", problems)
        await expect(root.locator(".me .badge")).to_have_text("admin")
        await root.get_by_role("button", name="Remove alice from the room").click()
        await expect(root.locator("#info")).to_have_text("alice was removed from the room. Dismiss")
        await expect(root.locator("#users .name")).to_have_text(["root"])
        for page in (first, second):
            await expect(page.locator("#notice")).to_contain_text(
                "Session forbidden: you no longer have access to this room: an admin removed you."
            )
            await expect(page.locator("#status")).to_have_text("No access")
            await expect(page.locator("#logout")).to_be_visible()
        # Reloaded, the page says so at once: no socket for the guard to refuse.
        await second.reload()
        await expect(second.locator("#notice")).to_contain_text("an admin removed you")
        assert problems.sockets[second] == 1
        assert problems.seen == []
    finally:
        await runner.cleanup()


async def test_account_panel_lists_and_ends_devices(
    chat: tuple[str, web.Application], browser: Browser
) -> None:
    """Two browser contexts are two devices of one user: each lists both; one ends the
    other ("Log out"), then "Log out all other devices" does it again after a new login."""
    url, _ = chat
    problems = Problems()
    laptop_context = await browser.new_context(user_agent=LAPTOP)
    phone_context = await browser.new_context(user_agent=PHONE)
    laptop = await log_in(laptop_context, url, "carol", problems)
    phone = await log_in(phone_context, url, "carol", problems)
    await laptop.reload()
    await expect(laptop.locator("#status")).to_have_attribute("data-state", "open")
    names = laptop.locator("#devices .device-name")
    await expect(names).to_have_text(["Chrome on Linux this device", "Safari on iOS"])

    # The laptop ends the phone: the phone's socket closes (4001), the laptop stays in.
    await laptop.locator("#devices .device").nth(1).get_by_role("button").click()
    await expect(phone.locator("#notice")).to_contain_text("You were logged out")
    await expect(names).to_have_text(["Chrome on Linux this device"])
    await expect(laptop.locator("#status")).to_have_attribute("data-state", "open")
    await phone.reload()
    await expect(phone.locator("#login")).to_be_visible()

    # The phone logs in again; "Log out all other devices" on the laptop ends it once more.
    phone = await log_in(phone_context, url, "carol", problems)
    await laptop.reload()
    await expect(names).to_have_count(2)
    await laptop.click("#logout-others button")
    await expect(phone.locator("#notice")).to_contain_text("You were logged out")
    await expect(names).to_have_text(["Chrome on Linux this device"])

    # "Log out this device": the laptop's own row logs it out, and only it.
    phone = await log_in(phone_context, url, "carol", problems)
    await laptop.reload()
    await laptop.locator("#devices .device[data-current=true]").get_by_role("button").click()
    await expect(laptop.locator("#login")).to_be_visible()
    await phone.reload()
    await expect(phone.locator("#devices .device-name")).to_have_text(["Safari on iOS this device"])
    assert problems.seen == []


LAPTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)
