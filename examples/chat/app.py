"""The chat application: login with a CSRF-protected form, a guarded WebSocket, logout.

What each handler shows of aio_sessions:

- ``index``: ``get_session`` on a plain request; the CSRF token lives in the session.
- ``login``: ``session.regenerate()`` against session fixation; writing ``username`` (the
  ``user_key``) indexes the session under its user, and ``role`` says what it may do.
  ``get_manager(app).sockets.send_to_user`` tells the user's open tabs, in every browser
  and process, that their name was just used to log in.
- ``logout``: ``session.invalidate()`` plus ``get_manager(app).logout_user(name)``, which
  closes the user's sockets in every tab and process (close code 4001).
- ``set_theme``: an ordinary HTTP save of the session (``theme``), which every socket of
  that session sees live.
- ``remove_user``: an admin (``require_session(..., check=is_admin)``) sets ``role`` to
  ``banned`` in every session of a user with ``manager.update``; the guard of that user's
  sockets turns false and they close with 4003, in every process.
- ``account.py``: the user's devices (``manager.user_sessions``), "log out this device"
  and "log out all others" (``end_session``, ``logout_user(..., keep=...)``).
- ``chat_socket``: ``@require_session("username", check=may_chat)`` refuses anonymous (401),
  banned and cross-site (403) handshakes before the upgrade, and closes the socket (4003)
  when its session is banned later; ``get_ws_session(ws)`` gives the user name, which is
  never taken from the client. ``session_changes(ws, read=False)``, in a task beside the
  handler's own reading, relays the theme to the page whenever the session is saved
  anywhere.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from string import Template
from typing import Any, Final

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from aio_sessions import (
    MemoryStore,
    Session,
    Store,
    get_manager,
    get_session,
    get_ws_session,
    require_session,
    session_changes,
    setup,
)

from .account import ROUTES as ACCOUNT_ROUTES
from .account import devices_panel
from .broker import Broker, BrokerError, Frame, MemoryBroker, message_frame
from .forms import CSRF, USERNAME, checked_form, csrf_token
from .room import Connection, Room

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"

#: The browser's theme (absent: light); the other session keys are in forms.py.
THEME: Final = "theme"
THEMES: Final = ("light", "dark")
#: What a session may do: written at login (``admin`` for the ``--admin`` names, else
#: ``member``), set to ``banned`` by an admin. A session without one counts as a member.
ROLE: Final = "role"
ADMIN: Final = "admin"
MEMBER: Final = "member"
BANNED: Final = "banned"

#: A name is 1 to 32 characters (code points, after NFC): letters of any script, each
#: with up to 4 combining marks (accents, vowel signs), decimal digits, ``_`` and ``-``.
#: ``static/chat.js`` applies the same rules, with the same messages, before the form is sent.
NAME_MAX = 32
NAME_MAX_MARKS = 4
NAME_HINT = f"1 to {NAME_MAX} letters (any alphabet, accents included), digits, _ or -"
#: Spaces the form may carry around a name (category Zs, tab, newlines): stripped, not refused.
NAME_EDGE_SPACES = (
    " \t\n\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u202f\u205f\u3000"
)
#: Characters that render as nothing (Unicode's default-ignorable code points: joiners,
#: direction marks, variation selectors, Hangul fillers...): a name with one can look like
#: another name, or blank. The page tests ``\p{Default_Ignorable_Code_Point}``.
NAME_INVISIBLE = frozenset(
    chr(code)
    for first, last in (
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x061C, 0x061C),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x206F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFF8),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
    )
    for code in range(first, last + 1)
)
#: Characters (code points) per message. Longer ones are refused, never cut; the page
#: shows a counter near the limit and says so instead of sending.
MAX_TEXT = 2000
#: Larger frames are refused by aiohttp itself (close code 1009).
MAX_FRAME_BYTES = 64 * 1024

BROKER: Final = web.AppKey("chat.broker", Broker)
ROOM: Final = web.AppKey("chat.room", Room)
#: The names that are admins when they log in (``--admin NAME``).
ADMINS: Final = web.AppKey("chat.admins", frozenset[str])

# Pages only load files from this origin and only open sockets to it.
_HTML_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class ProtocolError(ValueError):
    """A client frame the chat refuses; the text goes back in an error frame."""


# -- pages ---------------------------------------------------------------------------------


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


LOGIN_PAGE = _template("login.html")
CHAT_PAGE = _template("chat.html")


def page(
    template: Template, status: int = 200, markup: dict[str, str] | None = None, **values: str
) -> web.Response:
    """Render a template; every value is HTML-escaped, except ``markup``: HTML built here
    from escaped parts (account.py's device list)."""
    escaped = {key: html.escape(value) for key, value in values.items()}
    body = template.substitute({**escaped, **(markup or {})})
    return web.Response(text=body, status=status, content_type="text/html", headers=_HTML_HEADERS)


def login_page(session: Session, *, error: str = "", username: str = "") -> web.Response:
    """The login form, with an error (status 400) after a refused name."""
    return page(
        LOGIN_PAGE,
        status=400 if error else 200,
        csrf=csrf_token(session),
        username=username[:64],
        error=error,
        hidden="" if error else "hidden",
        hint=NAME_HINT,
        name_max=str(NAME_MAX),
        name_max_marks=str(NAME_MAX_MARKS),
    )


# -- HTTP handlers -------------------------------------------------------------------------


def theme_of(session: Session) -> str:
    """The session's theme: ``light`` unless it holds one of ``THEMES``."""
    theme = session.get(THEME)
    return theme if theme in THEMES else "light"


def theme_frame(session: Session) -> Frame:
    return {"type": "theme", "theme": theme_of(session)}


def role_of(session: Session) -> str:
    role = session.get(ROLE, MEMBER)
    return role if role in (ADMIN, MEMBER, BANNED) else MEMBER


def may_chat(session: Session) -> bool:
    """The chat socket's check: re-evaluated by aio_sessions whenever the session is saved."""
    return role_of(session) != BANNED


def is_admin(session: Session) -> bool:
    return role_of(session) == ADMIN


async def index(request: web.Request) -> web.Response:
    """The chat when logged in, else the login form."""
    session = await get_session(request)
    username = session.get(USERNAME)
    if not isinstance(username, str):
        return login_page(session)
    theme = theme_of(session)
    other = "dark" if theme == "light" else "light"
    role = role_of(session)
    csrf = csrf_token(session)
    return page(
        CHAT_PAGE,
        username=username,
        role=role,
        admin_hidden="" if role == ADMIN else "hidden",
        markup={"devices": await devices_panel(request, session, csrf)},
        csrf=csrf,
        max_text=str(MAX_TEXT),
        theme=theme,
        other_theme=other,
        other_theme_label=f"{other.capitalize()} theme",
    )


def clean_username(raw: str) -> str:
    """The name as it is kept: surrounding spaces stripped, composed (NFC), so that "José"
    typed with a combining accent and "José" typed precomposed are the same user."""
    return unicodedata.normalize("NFC", raw.strip(NAME_EDGE_SPACES))


def username_problem(name: str) -> str | None:
    """Why ``name`` (cleaned) cannot be a user name, in words for the person; None if it can.

    ``static/chat.js`` (``nameProblem``) gives the same answer, word for word.
    """
    if not name:
        return "Please enter a name."
    if len(name) > NAME_MAX:
        return f"A name has at most {NAME_MAX} characters."
    marks = -1  # combining marks after the last letter or digit; -1: nothing to attach to
    for char in name:
        if char in NAME_INVISIBLE:
            return "A name cannot contain invisible characters."
        if char.isalpha() or char.isdecimal():
            marks = 0
        elif unicodedata.category(char) in ("Mn", "Mc"):
            if marks < 0:
                return "An accent or vowel sign must follow a letter."
            marks += 1
            if marks > NAME_MAX_MARKS:
                return f"A letter carries at most {NAME_MAX_MARKS} accents or signs."
        elif char in "_-":
            marks = -1
        else:
            return "A name may only contain letters, digits, _ and -."
    return None


#: Pushed to a user's open tabs when someone logs in under their name. This chat has no
#: passwords: anyone may type any name, which is exactly what the user should hear about.
LOGIN_NOTICE: Final[Frame] = {
    "type": "notice",
    "text": "Your name was just used to log in from another browser. Not you? "
    "Log out: it ends every session under your name.",
}


async def login(request: web.Request) -> web.Response:
    """Check the name, then start the logged-in session under a new id."""
    session = await get_session(request)
    form = await checked_form(request, session)
    typed = form.get(USERNAME, "")
    username = clean_username(typed)
    problem = username_problem(username)
    if problem is not None:
        return login_page(session, error=problem, username=typed)
    session.regenerate()  # a new id for the new privilege: defeats session fixation
    session[USERNAME] = username  # the user_key: indexes the session under this user
    session[ROLE] = ADMIN if username in request.app[ADMINS] else MEMBER
    session[CSRF] = secrets.token_urlsafe(32)
    # Every socket of this user, whatever its browser or process (this new session has
    # none yet). At most once: a tab offline right now never hears of it.
    await get_manager(request).sockets.send_to_user(username, LOGIN_NOTICE)
    raise web.HTTPSeeOther("/")


async def logout(request: web.Request) -> web.Response:
    """Log the user out everywhere: every tab, browser and process."""
    session = await get_session(request)
    await checked_form(request, session)
    username = session.get(USERNAME)
    session.invalidate()
    if isinstance(username, str):
        await get_manager(request.app).logout_user(username)
    raise web.HTTPSeeOther("/")


@require_session(USERNAME)
async def set_theme(request: web.Request) -> web.Response:
    """Keep the theme in the session. The save reaches every socket of the session (other
    tabs of this browser, in any process), whose page then switches without a reload."""
    session = await get_session(request)
    form = await checked_form(request, session)
    theme = form.get(THEME)
    if theme not in THEMES:
        raise web.HTTPBadRequest(text=f"A theme is one of: {', '.join(THEMES)}.")
    session[THEME] = theme
    raise web.HTTPSeeOther("/")  # a form sent without the script: the page, redrawn


@require_session(USERNAME, check=is_admin)  # 401 logged out, 403 not an admin
async def remove_user(request: web.Request) -> web.Response:
    """Ban a user from the room: every session of theirs gets ``role: banned``.

    ``manager.update`` saves each session as an HTTP request would, so each socket opened
    with it re-checks its guard (``may_chat``) and is closed with 4003, in every process.
    The sessions live on: the user stays logged in, without access to the room.
    """
    session = await get_session(request)
    form = await checked_form(request, session)
    target = clean_username(form.get(USERNAME, ""))
    if username_problem(target) is not None:
        raise web.HTTPBadRequest(text="No such user name.")
    if target == session[USERNAME]:
        raise web.HTTPBadRequest(text="You cannot remove yourself.")
    manager = get_manager(request)
    if manager.store.stateless:  # nothing on the server to change: the sessions are cookies
        raise web.HTTPConflict(text="Removing a user needs a server-side session store.")
    banned = 0
    for session_id in await manager.user_session_ids(target):
        banned += await manager.update(session_id, {ROLE: BANNED})  # False: ended meanwhile
    return web.json_response({"user": target, "sessions": banned})


# -- the WebSocket -------------------------------------------------------------------------


def parse_client_frame(raw: str) -> str:
    """The text of a client's ``{"type": "message", "text": ...}``, or ProtocolError."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("not valid JSON") from None
    if not isinstance(frame, dict):
        raise ProtocolError("a frame must be a JSON object")
    if frame.get("type") != "message":
        raise ProtocolError(f"unknown frame type: {str(frame.get('type'))[:40]!r}")
    text = frame.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ProtocolError("a message needs some text")
    if len(text) > MAX_TEXT:  # refused whole, never cut: the sender is told, nothing is sent
        raise ProtocolError(
            f"message not sent: it has {len(text):,} characters, the limit is {MAX_TEXT:,}"
        )
    return text


def error_frame(error: str) -> Frame:
    return {"type": "error", "error": error}


async def handle_frame(msg: WSMessage, connection: Connection, broker: Broker) -> None:
    """Publish a valid message under the session's user name; answer anything else."""
    if msg.type is not WSMsgType.TEXT:
        connection.send(error_frame("send JSON text frames"))
        return
    try:
        text = parse_client_frame(msg.data)
        await broker.publish(message_frame(connection.user, text))
    except ProtocolError as exc:
        connection.send(error_frame(str(exc)))
    except BrokerError:
        connection.send(error_frame("the chat is unavailable, message not sent"))


async def relay_changes(
    ws: web.WebSocketResponse, session: Session, connection: Connection
) -> None:
    """Send the page its theme whenever the session's theme is saved, anywhere.

    ``session_changes`` yields once the socket's session already holds the new values.
    ``read=False``: the handler reads the socket itself, this task only waits. Not run with
    a cookie store: there the socket cannot re-read a session that lives in the browser.
    """
    async for keys in session_changes(ws, read=False):
        if THEME in keys:
            connection.send(theme_frame(session))


@require_session(USERNAME, check=may_chat)  # 401 logged out, 403 banned, then 4003
async def chat_socket(request: web.Request) -> web.WebSocketResponse:
    """History and theme first, then live messages, presence and theme changes, until either
    side closes."""
    ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    session = await get_ws_session(ws)
    connection = Connection(ws, str(session[USERNAME]))  # identity from the session only
    broker, room = request.app[BROKER], request.app[ROOM]
    room.add(connection)  # frames published from now on wait in its queue
    relay = None
    if not get_manager(request).store.stateless:
        relay = asyncio.create_task(relay_changes(ws, session, connection))
    try:
        history = await broker.history()
        await ws.send_json({"type": "history", "messages": history})
        # The theme as it is now: a change made while this tab was offline shows too.
        await ws.send_json(theme_frame(session))
        connection.start(already_sent=history)
        await broker.join(connection.user)
        try:
            async for msg in ws:
                await handle_frame(msg, connection, broker)
        finally:
            await broker.leave(connection.user)
    except BrokerError:
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"chat unavailable")
    finally:
        # What needs no waiting first: the handler may be cancelled in the awaits below.
        room.remove(connection)
        if relay is not None:
            relay.cancel()
        await connection.stop()
        if relay is not None:
            await asyncio.wait([relay])
    return ws


# -- the application -----------------------------------------------------------------------


def make_app(
    store: Store | None = None,
    broker: Broker | None = None,
    *,
    admins: Iterable[str] = (),
    **session_options: Any,
) -> web.Application:
    """The chat app on ``store`` (memory by default) with ``broker`` (in-process by default).

    Whoever logs in under one of the ``admins`` names may remove users from the room.
    ``session_options`` go to ``aio_sessions.setup`` (timeouts, cookie settings).
    """
    admin_names = frozenset(clean_username(name) for name in admins)
    for name in admin_names:
        if username_problem(name) is not None:
            raise ValueError(f"{name!r} is not a user name: {username_problem(name)}")
    app = web.Application()
    app[ADMINS] = admin_names
    store = store if store is not None else MemoryStore()
    if not store.stateless:
        # The account panel shows each device's browser and when it was last seen. A cookie
        # store keeps nothing on the server to list: the panel says so instead.
        session_options.setdefault("track_devices", True)
    setup(app, store, user_key=USERNAME, **session_options)
    chat_broker = broker if broker is not None else MemoryBroker()
    room = Room()
    chat_broker.subscribe(room.broadcast)
    app[BROKER] = chat_broker
    app[ROOM] = room

    async def start_broker(app: web.Application) -> None:
        await chat_broker.start()

    async def close_sockets(app: web.Application) -> None:
        await room.close_all()

    async def close_broker(app: web.Application) -> None:
        await chat_broker.close()

    app.on_startup.append(start_broker)
    app.on_shutdown.append(close_sockets)
    app.on_cleanup.append(close_broker)
    app.add_routes(
        [
            web.get("/", index),
            web.post("/login", login),
            web.post("/logout", logout),
            web.post("/theme", set_theme),
            web.post("/remove", remove_user),
            web.get("/ws", chat_socket),
            *ACCOUNT_ROUTES,
            web.static("/static", STATIC),
        ]
    )
    return app
