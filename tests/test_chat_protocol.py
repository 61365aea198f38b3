"""The chat example over HTTP and WebSocket, through a real server and real clients."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet

from aio_sessions import (
    CLOSE_SESSION_FORBIDDEN,
    CLOSE_SESSION_REVOKED,
    EncryptedCookieStore,
    MemoryStore,
    SQLiteStore,
    Store,
    get_manager,
)
from examples.chat.__main__ import make_broker, make_store, parse_args, url_of
from examples.chat.app import LOGIN_NOTICE, ROOM, make_app
from examples.chat.broker import MemoryBroker

from ._chat import ChatUser, closed_with, csrf_of, next_frame, presence_becomes, receive_frame

#: The account panel's forms (examples/chat/account.py).
ACCOUNT_FORMS = ["/devices/end", "/devices/logout-others"]

NewUser = Callable[[], Awaitable[ChatUser]]


@pytest.fixture
async def server(aiohttp_server: Any) -> TestServer:
    started: TestServer = await aiohttp_server(make_app(admins=["root"]))
    return started


@pytest.fixture
async def new_user(server: TestServer, aiohttp_client: Any) -> AsyncIterator[NewUser]:
    """A new browser (its own cookie jar) on the chat server."""
    users: list[ChatUser] = []

    async def make() -> ChatUser:
        client = await aiohttp_client(server)
        users.append(ChatUser(client.session, client.make_url("/")))
        return users[-1]

    yield make
    for user in users:
        await user.close()


async def logged_in(new_user: NewUser, name: str) -> ChatUser:
    user = await new_user()
    await user.login(name)
    return user


def session_id(user: ChatUser) -> str:
    return user.http.cookie_jar.filter_cookies(user.base)["AIOHTTP_SESSION"].value


# -- login, logout, CSRF ------------------------------------------------------------------


async def test_visitor_gets_the_login_form(new_user: NewUser) -> None:
    user = await new_user()
    async with user.http.get(user.url("/")) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert 'action="/login"' in page
    assert 'name="username"' in page
    assert csrf_of(page)
    assert 'id="chat"' not in page


async def test_login_regenerates_the_session_and_shows_the_chat(
    new_user: NewUser, server: TestServer
) -> None:
    user = await new_user()
    await user.page()
    before = session_id(user)
    await user.login("alice")
    after = session_id(user)
    assert after != before
    manager = get_manager(server.app)
    assert await manager.get(before) is None  # the pre-login id is dead
    assert (await manager.get(after) or {})["username"] == "alice"
    page = await user.page()
    assert 'id="chat" data-username="alice"' in page
    assert "Signed in as <strong>alice</strong>" in page
    assert 'action="/logout"' in page


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("a", "a"),
        ("Zed_9-x", "Zed_9-x"),
        ("x" * 32, "x" * 32),
        ("José", "José"),
        ("Jose\u0301", "José"),  # the accent typed as a combining mark: composed (NFC)
        (" \tJosé\u3000", "José"),  # spaces around it, even ideographic ones, are dropped
        ("émile", "émile"),
        ("Zoë-Ørsted_2", "Zoë-Ørsted_2"),
        ("Ολυμπία", "Ολυμπία"),
        ("محمد", "محمد"),
        ("佐々木", "佐々木"),  # 々 is a modifier letter
        ("अमित", "अमित"),  # ि is a vowel sign: a combining mark after a letter
        ("٣٤٥", "٣٤٥"),  # Arabic-Indic digits
        ("𠀀" * 32, "𠀀" * 32),  # 32 characters outside the BMP: 64 UTF-16 units
        ("x\u0301\u0302\u0303\u0304", "x\u0301\u0302\u0303\u0304"),  # 4 marks: the most
    ],
)
async def test_good_usernames(new_user: NewUser, typed: str, kept: str) -> None:
    user = await logged_in(new_user, typed)
    page = await user.page()
    assert f'data-username="{kept}"' in page
    assert f"Signed in as <strong>{kept}</strong>" in page


async def test_a_name_composed_or_not_is_one_user(new_user: NewUser) -> None:
    composed = await logged_in(new_user, "Jos\u00e9")
    decomposed = await logged_in(new_user, "Jose\u0301")
    ws = await composed.join()
    await decomposed.join()
    await presence_becomes(ws, ["Jos\u00e9"])
    await ws.send_json({"type": "message", "text": "hola"})
    assert (await next_frame(ws, "message"))["user"] == "Jos\u00e9"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "Please enter a name."),
        (" \n ", "Please enter a name."),
        ("x" * 33, "A name has at most 32 characters."),
        ("é" * 33, "A name has at most 32 characters."),
        ("al ice", "A name may only contain letters, digits, _ and -."),
        ("a/b", "A name may only contain letters, digits, _ and -."),
        ("a.b", "A name may only contain letters, digits, _ and -."),
        ("bob🙂", "A name may only contain letters, digits, _ and -."),
        ("ab\x00", "A name may only contain letters, digits, _ and -."),
        ("<script>alert(1)</script>", "A name may only contain letters, digits, _ and -."),
        ("al\u200dice", "A name cannot contain invisible characters."),  # zero-width joiner
        ("ali\u00adce", "A name cannot contain invisible characters."),  # soft hyphen
        ("\u3164", "A name cannot contain invisible characters."),  # Hangul filler: a letter
        ("bob\ufe0f", "A name cannot contain invisible characters."),  # variation selector
        ("\u202ebob", "A name cannot contain invisible characters."),  # right-to-left override
        ("\u0301a", "An accent or vowel sign must follow a letter."),
        ("a-\u0301", "An accent or vowel sign must follow a letter."),
        ("x" + "\u0301\u0302\u0303\u0304\u0305", "A letter carries at most 4 accents or signs."),
    ],
    ids=repr,
)
async def test_bad_usernames_get_the_form_again_with_the_reason(
    new_user: NewUser, name: str, problem: str
) -> None:
    user = await new_user()
    resp = await user.post("/login", username=name, csrf=csrf_of(await user.page()))
    assert resp.status == 400
    async with user.http.post(
        user.url("/login"), data={"username": name, "csrf": csrf_of(await user.page())}
    ) as again:
        page = await again.text()
    assert 'action="/login"' in page
    assert problem in page
    assert "<script>" not in page
    assert 'id="chat"' not in await user.page()


async def test_the_login_hint_says_what_a_name_may_contain(new_user: NewUser) -> None:
    page = await (await new_user()).page()
    hint = "1 to 32 letters (any alphabet, accents included), digits, _ or -"
    assert f'<p class="hint" id="username-hint">{hint}</p>' in page
    assert 'data-max="32"' in page  # the page's own check uses the server's limits
    assert 'data-max-marks="4"' in page
    assert "maxlength" not in page  # it counts UTF-16 units and would cut a pasted name


async def test_missing_username_field_is_a_bad_name(new_user: NewUser) -> None:
    user = await new_user()
    resp = await user.post("/login", csrf=csrf_of(await user.page()))
    assert resp.status == 400


@pytest.mark.parametrize("path", ["/login", "/logout", "/theme", *ACCOUNT_FORMS])
@pytest.mark.parametrize("token", [None, "", "wrong", "é", "other session"])
async def test_forms_need_the_sessions_csrf_token(
    new_user: NewUser, path: str, token: str | None
) -> None:
    user = await logged_in(new_user, "alice")
    if token == "other session":
        token = csrf_of(await (await new_user()).page())
    form = {"username": "mallory"}
    if token is not None:
        form["csrf"] = token
    resp = await user.post(path, **form)
    assert resp.status == 403
    assert 'data-username="alice"' in await user.page()  # nothing happened


async def test_logout_ends_the_session(new_user: NewUser, server: TestServer) -> None:
    user = await logged_in(new_user, "alice")
    sid = session_id(user)
    await user.logout()
    assert await get_manager(server.app).get(sid) is None
    assert 'action="/login"' in await user.page()


# -- chatting -----------------------------------------------------------------------------


async def test_two_users_chat(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    bob = await logged_in(new_user, "bob")
    ws_a = await alice.join()
    await presence_becomes(ws_a, ["alice"])
    ws_b = await bob.join()
    await presence_becomes(ws_a, ["alice", "bob"])
    await presence_becomes(ws_b, ["alice", "bob"])

    before = time.time()
    await ws_a.send_json({"type": "message", "text": "hi bob <b>!</b>"})
    for ws in (ws_a, ws_b):
        message = await next_frame(ws, "message")
        assert set(message) == {"type", "user", "text", "ts"}
        assert message["user"] == "alice"
        assert message["text"] == "hi bob <b>!</b>"
        assert before - 1 <= message["ts"] <= time.time() + 1

    await ws_b.send_json({"type": "message", "text": "hello alice"})
    for ws in (ws_a, ws_b):
        message = await next_frame(ws, "message")
        assert (message["user"], message["text"]) == ("bob", "hello alice")


async def test_first_frames_are_history_theme_then_presence(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.connect()
    assert await receive_frame(ws) == {"type": "history", "messages": []}
    assert await receive_frame(ws) == {"type": "theme", "theme": "light"}
    assert await receive_frame(ws) == {"type": "presence", "users": ["alice"]}


async def test_presence_on_every_join_and_leave(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    bob = await logged_in(new_user, "bob")
    ws_a = await alice.join()
    assert await next_frame(ws_a, "presence") == {"type": "presence", "users": ["alice"]}
    bob_tabs = [await bob.join()]
    assert (await next_frame(ws_a, "presence"))["users"] == ["alice", "bob"]
    bob_tabs.append(await bob.join())  # a second tab: still one bob, but announced
    assert (await next_frame(ws_a, "presence"))["users"] == ["alice", "bob"]
    await bob_tabs.pop().close()
    assert (await next_frame(ws_a, "presence"))["users"] == ["alice", "bob"]
    await bob_tabs.pop().close()
    assert (await next_frame(ws_a, "presence"))["users"] == ["alice"]


async def test_a_reconnected_socket_gets_the_history_again(
    new_user: NewUser, server: TestServer
) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    for text in ("one", "two"):
        await ws.send_json({"type": "message", "text": text})
    while (await next_frame(ws, "message"))["text"] != "two":
        pass
    await server.app[ROOM].close_all(code=aiohttp.WSCloseCode.SERVICE_RESTART)  # a drop
    assert await closed_with(ws) == aiohttp.WSCloseCode.SERVICE_RESTART
    again = await alice.connect()
    history = await receive_frame(again)
    assert history["type"] == "history"
    assert [(m["user"], m["text"]) for m in history["messages"]] == [
        ("alice", "one"),
        ("alice", "two"),
    ]


async def test_after_a_restart_the_session_lives_and_the_history_is_empty(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """What the page shows "No messages yet" for: with --store sqlite, a restart keeps the
    logins, but the messages were only in the old process's memory."""
    before = await aiohttp_client(make_app(SQLiteStore(tmp_path / "chat.sqlite3")))
    alice = ChatUser(before.session, before.make_url("/"))
    await alice.login("alice")
    ws = await alice.join()
    await ws.send_json({"type": "message", "text": "before the restart"})
    await next_frame(ws, "message")
    await alice.close()
    await before.server.close()

    after = await aiohttp_client(make_app(SQLiteStore(tmp_path / "chat.sqlite3")))
    # The same cookie jar: cookies ignore ports, as a browser's do.
    alice_after = ChatUser(before.session, after.make_url("/"))
    assert 'data-username="alice"' in await alice_after.page()
    ws = await alice_after.connect()
    assert await receive_frame(ws) == {"type": "history", "messages": []}
    await alice_after.close()


async def test_history_keeps_the_last_50_messages(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    for n in range(60):
        await ws.send_json({"type": "message", "text": f"m{n}"})
    while (await next_frame(ws, "message"))["text"] != "m59":
        pass
    later = await alice.connect()
    history = await receive_frame(later)
    assert history["type"] == "history"
    assert [m["text"] for m in history["messages"]] == [f"m{n}" for n in range(10, 60)]
    assert all(m["type"] == "message" and m["user"] == "alice" for m in history["messages"])


@pytest.mark.parametrize(
    "frame",
    [
        json.dumps({"type": "message", "text": "x" * 2001}),
        "{not json",
        "",
        "[" * 50_000,
        json.dumps(["message", "hi"]),
        json.dumps("hi"),
        json.dumps(None),
        json.dumps({"type": "shout", "text": "hi"}),
        json.dumps({"text": "hi"}),
        json.dumps({"type": "message"}),
        json.dumps({"type": "message", "text": ""}),
        json.dumps({"type": "message", "text": " \n "}),
        json.dumps({"type": "message", "text": 42}),
    ],
    ids=lambda frame: frame[:30],
)
async def test_refused_frames_get_an_error_and_the_socket_stays_open(
    new_user: NewUser, frame: str
) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    await ws.send_str(frame)
    error = await next_frame(ws, "error")
    assert set(error) == {"type", "error"}
    assert isinstance(error["error"], str)
    assert error["error"]
    # Still open, and nothing was published.
    await ws.send_json({"type": "message", "text": "y" * 2000})
    message = await next_frame(ws, "message")
    assert message["text"] == "y" * 2000
    assert not ws.closed


async def test_an_over_long_message_is_refused_whole_and_the_sender_told(
    new_user: NewUser,
) -> None:
    alice = await logged_in(new_user, "alice")
    bob = await logged_in(new_user, "bob")
    ws_a, ws_b = await alice.join(), await bob.join()
    await ws_a.send_json({"type": "message", "text": "x" * 5000})
    error = await next_frame(ws_a, "error")
    assert error["error"] == "message not sent: it has 5,000 characters, the limit is 2,000"
    # Nobody got it, not even cut to 2,000: the next message is the next one sent.
    await ws_a.send_json({"type": "message", "text": "short"})
    for ws in (ws_a, ws_b):
        assert (await next_frame(ws, "message"))["text"] == "short"
    history = await receive_frame(await alice.connect())
    assert [m["text"] for m in history["messages"]] == ["short"]


@pytest.mark.parametrize(("count", "sent"), [(2000, True), (2001, False)])
async def test_the_limit_counts_characters_as_the_page_does(
    new_user: NewUser, count: int, sent: bool
) -> None:
    """Code points: an emoji is one character (two UTF-16 units, four UTF-8 bytes)."""
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    await ws.send_json({"type": "message", "text": "😀" * count})
    if sent:
        assert (await next_frame(ws, "message"))["text"] == "😀" * count
    else:
        assert "it has 2,001 characters" in (await next_frame(ws, "error"))["error"]


async def test_the_page_knows_the_limit_and_cuts_nothing(new_user: NewUser) -> None:
    page = await (await logged_in(new_user, "alice")).page()
    assert 'data-max-text="2000"' in page
    assert "maxlength" not in page  # a browser would cut a long paste without a word
    assert 'id="counter"' in page


async def test_binary_frames_get_an_error(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    await ws.send_bytes(b'{"type": "message", "text": "hi"}')
    assert (await next_frame(ws, "error"))["error"]
    assert not ws.closed


async def test_user_name_comes_from_the_session(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    await ws.send_json({"type": "message", "text": "I am bob", "user": "bob"})
    message = await next_frame(ws, "message")
    assert message["user"] == "alice"
    assert message["text"] == "I am bob"


# -- the theme: saved over HTTP, seen live by every socket of the session -------------------


async def frame_types_until_message(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    """The types of the frames before the next message (which the caller has sent)."""
    types = []
    while (frame := await receive_frame(ws))["type"] != "message":
        types.append(frame["type"])
    return types


async def test_a_theme_saved_in_one_tab_reaches_the_sessions_other_tabs_live(
    new_user: NewUser,
) -> None:
    alice = await logged_in(new_user, "alice")
    bob = await logged_in(new_user, "bob")
    tabs = [await alice.join(), await alice.join()]  # two tabs: one browser, one session
    ws_bob = await bob.join()
    for ws in (*tabs, ws_bob):
        assert await next_frame(ws, "theme") == {"type": "theme", "theme": "light"}

    started = time.monotonic()
    resp = await alice.post("/theme", theme="dark", csrf=csrf_of(await alice.page()))
    assert resp.status == 303  # a plain form post gets the page back
    for ws in tabs:
        assert await next_frame(ws, "theme", timeout=1.0) == {"type": "theme", "theme": "dark"}
    assert time.monotonic() - started < 1.0

    page = await alice.page()
    assert '<html lang="en" data-theme="dark">' in page
    assert 'name="theme" value="light">Light theme</button>' in page
    later = await alice.connect()  # a tab opened (or reconnected) later gets it first thing
    assert (await next_frame(later, "theme"))["theme"] == "dark"
    # Bob's session did not change: his socket heard nothing of it.
    await ws_bob.send_json({"type": "message", "text": "still light?"})
    assert "theme" not in await frame_types_until_message(ws_bob)
    assert '<html lang="en" data-theme="light">' in await bob.page()


@pytest.mark.parametrize("theme", [None, "", "blue", "Dark", "dark "])
async def test_a_theme_is_light_or_dark(new_user: NewUser, theme: str | None) -> None:
    alice = await logged_in(new_user, "alice")
    form = {"csrf": csrf_of(await alice.page())}
    if theme is not None:
        form["theme"] = theme
    resp = await alice.post("/theme", **form)
    assert resp.status == 400
    assert 'data-theme="light"' in await alice.page()


async def test_only_a_logged_in_session_has_a_theme(new_user: NewUser) -> None:
    visitor = await new_user()
    resp = await visitor.post("/theme", theme="dark", csrf=csrf_of(await visitor.page()))
    assert resp.status == 401


# -- a notice pushed to every tab of a user -------------------------------------------------


async def test_a_login_under_your_name_is_told_to_every_tab_of_yours(new_user: NewUser) -> None:
    alice = await logged_in(new_user, "alice")
    alice_elsewhere = await logged_in(new_user, "alice")  # another browser
    bob = await logged_in(new_user, "bob")
    alice_tabs = [await alice.join(), await alice.join(), await alice_elsewhere.join()]
    ws_bob = await bob.join()

    started = time.monotonic()
    await logged_in(new_user, "alice")  # a third browser
    for ws in alice_tabs:
        notice = await next_frame(ws, "notice", timeout=1.0)
        assert notice == {"type": "notice", "text": LOGIN_NOTICE["text"]}
        assert "another browser" in notice["text"]
    assert time.monotonic() - started < 1.0
    # Nobody else hears of it.
    await logged_in(new_user, "carol")
    await ws_bob.send_json({"type": "message", "text": "anything?"})
    assert "notice" not in await frame_types_until_message(ws_bob)


# -- roles: an admin removes a user, whose sockets close with 4003 --------------------------


async def test_the_admin_names_log_in_as_admins(new_user: NewUser, server: TestServer) -> None:
    root, alice = await logged_in(new_user, "root"), await logged_in(new_user, "alice")
    manager = get_manager(server.app)
    assert (await manager.get(session_id(root)) or {})["role"] == "admin"
    assert (await manager.get(session_id(alice)) or {})["role"] == "member"
    assert 'data-role="admin"' in await root.page()
    assert '<span class="badge" >admin</span>' in await root.page()
    assert 'data-role="member"' in await alice.page()
    assert '<span class="badge" hidden>admin</span>' in await alice.page()


async def test_an_admin_removing_a_user_closes_every_socket_of_theirs_with_4003(
    new_user: NewUser, server: TestServer
) -> None:
    root = await logged_in(new_user, "root")
    alice = await logged_in(new_user, "alice")
    bob = await logged_in(new_user, "bob")
    bob_elsewhere = await logged_in(new_user, "bob")  # another browser: another session
    bob_tabs = [await bob.join(), await bob.join(), await bob_elsewhere.join()]
    ws_alice = await alice.join()
    await presence_becomes(ws_alice, ["alice", "bob"])

    started = time.monotonic()
    async with root.http.post(
        root.url("/remove"), data={"username": "bob", "csrf": csrf_of(await root.page())}
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"user": "bob", "sessions": 2}
    for ws in bob_tabs:
        assert await closed_with(ws) == CLOSE_SESSION_FORBIDDEN
    assert time.monotonic() - started < 1.0
    await presence_becomes(ws_alice, ["alice"])
    assert not ws_alice.closed

    # Bob is still logged in, but the room is closed to him: the guard answers 403.
    for user in (bob, bob_elsewhere):
        assert 'data-role="banned"' in await user.page()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await user.connect()
        assert refused.value.status == 403
    # Anything else he saves keeps him out (the check runs again; it still says no).
    resp = await bob.post("/theme", theme="dark", csrf=csrf_of(await bob.page()))
    assert resp.status == 303
    assert (await get_manager(server.app).get(session_id(bob)) or {})["role"] == "banned"


@pytest.mark.parametrize(
    ("who", "name", "token", "status"),
    [
        (None, "bob", "valid", 401),  # a visitor
        ("alice", "bob", "valid", 403),  # a member
        ("root", "bob", "wrong", 403),
        ("root", "bob", None, 403),
        ("root", "b o b", "valid", 400),
        ("root", None, "valid", 400),
        ("root", "root", "valid", 400),  # not oneself
    ],
)
async def test_only_an_admin_removes_a_user(
    new_user: NewUser, who: str | None, name: str | None, token: str | None, status: int
) -> None:
    bob = await logged_in(new_user, "bob")
    ws_bob = await bob.join()
    user = await new_user() if who is None else await logged_in(new_user, who)
    form = {} if name is None else {"username": name}
    if token is not None:
        form["csrf"] = csrf_of(await user.page()) if token == "valid" else token
    resp = await user.post("/remove", **form)
    assert resp.status == status
    await ws_bob.send_json({"type": "message", "text": "still here"})
    assert (await next_frame(ws_bob, "message"))["text"] == "still here"
    assert not ws_bob.closed


async def test_removing_a_user_needs_server_side_sessions(aiohttp_client: Any) -> None:
    client = await aiohttp_client(
        make_app(EncryptedCookieStore(Fernet.generate_key()), admins=["root"])
    )
    root = ChatUser(client.session, client.make_url("/"))
    await root.login("root")
    resp = await root.post("/remove", username="bob", csrf=csrf_of(await root.page()))
    assert resp.status == 409


# -- logout closes sockets; guarded handshakes ----------------------------------------------


async def test_logout_closes_the_users_sockets_in_every_tab(
    new_user: NewUser, server: TestServer
) -> None:
    alice = await logged_in(new_user, "alice")
    alice_elsewhere = await logged_in(new_user, "alice")  # another browser, same user
    bob = await logged_in(new_user, "bob")
    alice_tabs = [await alice.join(), await alice.join(), await alice_elsewhere.join()]
    ws_bob = await bob.join()
    await presence_becomes(ws_bob, ["alice", "bob"])

    started = time.monotonic()
    await alice.logout()  # in one tab
    for ws in alice_tabs:
        assert await closed_with(ws) == CLOSE_SESSION_REVOKED
    assert time.monotonic() - started < 1.0

    await presence_becomes(ws_bob, ["bob"])
    await ws_bob.send_json({"type": "message", "text": "still here"})
    assert (await next_frame(ws_bob, "message"))["text"] == "still here"
    assert not ws_bob.closed
    assert len(server.app[ROOM]) == 1
    # Logged out everywhere: the other browser too.
    for user in (alice, alice_elsewhere):
        assert 'action="/login"' in await user.page()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await user.connect()
        assert refused.value.status == 401


async def test_anonymous_handshake_is_refused_with_401(new_user: NewUser) -> None:
    visitor = await new_user()
    await visitor.page()  # a session with a CSRF token, but nobody logged in
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await visitor.connect()
    assert refused.value.status == 401


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
async def test_foreign_or_missing_origin_is_refused_with_403(
    new_user: NewUser, origin: str | None
) -> None:
    alice = await logged_in(new_user, "alice")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await alice.connect(origin=origin)
    assert refused.value.status == 403


async def test_shutdown_closes_sockets_as_going_away(new_user: NewUser, server: TestServer) -> None:
    alice = await logged_in(new_user, "alice")
    ws = await alice.join()
    await server.close()
    assert await closed_with(ws, timeout=5) == aiohttp.WSCloseCode.GOING_AWAY


async def test_static_files(new_user: NewUser) -> None:
    user = await new_user()
    for path, kind in [
        ("/static/chat.js", "application/javascript"),
        ("/static/chat.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        async with user.http.get(user.url(path)) as resp:
            assert resp.status == 200
            assert resp.content_type == kind
    async with user.http.get(user.url("/static/../app.py")) as resp:
        assert resp.status in (403, 404)


# -- the other session stores -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "cookie"])
async def test_chat_and_logout_on_other_stores(
    aiohttp_client: Any, tmp_path: Path, kind: str
) -> None:
    store: Store = (
        SQLiteStore(tmp_path / "chat.sqlite3")
        if kind == "sqlite"
        else EncryptedCookieStore(Fernet.generate_key())
    )
    app = make_app(store)
    first = await aiohttp_client(app)
    server = first.server
    alice = ChatUser(first.session, first.make_url("/"))
    second = await aiohttp_client(server)
    bob = ChatUser(second.session, second.make_url("/"))
    await alice.login("alice")
    await bob.login("bob")
    ws_a, ws_b = await alice.join(), await bob.join()
    await ws_a.send_json({"type": "message", "text": "hi"})
    assert (await next_frame(ws_b, "message"))["user"] == "alice"

    # The theme: live in the session's other tabs on SQLite. A cookie session lives in the
    # browser, where no socket can re-read it: its tabs get no stale frame, and pick the
    # theme up when they reload or reconnect.
    assert (await next_frame(ws_a, "theme"))["theme"] == "light"
    resp = await alice.post("/theme", theme="dark", csrf=csrf_of(await alice.page()))
    assert resp.status == 303
    if kind == "sqlite":
        assert await next_frame(ws_a, "theme", timeout=1.0) == {"type": "theme", "theme": "dark"}
    else:
        await ws_a.send_json({"type": "message", "text": "dark?"})
        assert "theme" not in await frame_types_until_message(ws_a)
    assert 'data-theme="dark"' in await alice.page()
    later = await alice.connect()
    assert (await next_frame(later, "theme"))["theme"] == "dark"

    await alice.logout()
    assert await closed_with(ws_a) == CLOSE_SESSION_REVOKED
    await presence_becomes(ws_b, ["bob"])
    await bob.close()


# -- the command line ---------------------------------------------------------------------


def test_defaults_are_memory_on_localhost() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.store, args.redis) == ("127.0.0.1", 8080, "memory", None)
    assert isinstance(make_store(args), MemoryStore)
    assert isinstance(make_broker(args), MemoryBroker)
    assert url_of("127.0.0.1", 8080) == "http://127.0.0.1:8080/"
    assert url_of("::1", 80) == "http://[::1]:80/"


def test_admins_are_user_names_as_the_login_keeps_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse_args([]).admins == []
    assert parse_args(["--admin", "root", "--admin", " Jose\u0301"]).admins == ["root", "José"]
    with pytest.raises(SystemExit):
        parse_args(["--admin", "a b"])
    assert (
        "argument --admin: 'a b' is not a user name: "
        "A name may only contain letters, digits, _ and -." in capsys.readouterr().err
    )
    with pytest.raises(ValueError, match="not a user name"):
        make_app(admins=["a b"])


def test_redis_url_implies_the_redis_store() -> None:
    assert parse_args(["--redis", "redis://127.0.0.1:1/0"]).store == "redis"


@pytest.mark.parametrize(
    "argv",
    [["--store", "redis"], ["--redis", "redis://127.0.0.1:1/0", "--store", "sqlite"]],
)
def test_inconsistent_store_options_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "--redis" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_a_port_is_1_to_65535(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--port", port])
    assert f"argument --port: a port is a number from 1 to 65535, not '{port}'" in (
        capsys.readouterr().err
    )


def test_sqlite_store_uses_the_path(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = make_store(parse_args(["--store", "sqlite", "--sqlite-path", str(path)]))
    assert isinstance(store, SQLiteStore)
    assert store.path == path


def test_cookie_store_key_from_env_or_fresh_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse_args(["--store", "cookie"])
    monkeypatch.setenv("CHAT_SECRET_KEY", Fernet.generate_key().decode())
    assert isinstance(make_store(args), EncryptedCookieStore)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("CHAT_SECRET_KEY")
    assert isinstance(make_store(args), EncryptedCookieStore)
    assert "CHAT_SECRET_KEY" in capsys.readouterr().err


# -- the account panel ----------------------------------------------------------------------


def handles_of(page: str) -> list[str]:
    return re.findall(r'name="handle" value="([^"]+)"', page)


async def test_a_forged_or_foreign_handle_ends_nothing(
    new_user: NewUser, server: TestServer
) -> None:
    alice = await logged_in(new_user, "alice")
    bob = await logged_in(new_user, "bob")
    [bobs] = handles_of(await bob.page())
    page = await alice.page()
    [alices] = handles_of(page)
    for handle in (bobs, alices[:-1] + ("A" if alices[-1] != "A" else "B"), "", "x" * 5000):
        resp = await alice.post("/devices/end", csrf=csrf_of(page), handle=handle)
        assert resp.status == 404
    assert 'data-username="bob"' in await bob.page()  # bob's device was not ended
    assert len(await get_manager(server.app).user_sessions("bob")) == 1


async def test_devices_need_server_side_sessions(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(EncryptedCookieStore(Fernet.generate_key())))
    user = ChatUser(client.session, client.make_url("/"))
    await user.login("carol")
    page = await user.page()
    assert "Listing devices needs sessions kept on the server." in page
    resp = await user.post("/devices/logout-others", csrf=csrf_of(page))
    assert resp.status == 409
