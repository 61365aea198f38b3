"""The account panel: where the user is logged in, "log out this device", "log out all others".

What it shows of aio_sessions:

- ``manager.user_sessions(name)`` lists the user's live sessions as ``SessionInfo`` (with
  ``setup(track_devices=True)``: the browser's User-Agent, its address and when it was last
  seen); ``session.handle`` marks the one this page was loaded with.
- ``manager.end_session(handle, user=name)`` ends one of them: its sockets close with 4001 in
  every tab and process. ``user=`` makes the manager refuse a handle of someone else's session,
  so a forged form cannot end another user's device.
- ``manager.logout_user(name, keep=session.id)`` ends every other session of the user.

The panel is plain HTML forms (each with the CSRF token), so it works without the script.
"""

from __future__ import annotations

import html
import time

from aiohttp import web

from aio_sessions import Session, SessionInfo, get_manager, get_session, require_session

from .forms import USERNAME, checked_form

#: Browser and system names found in a User-Agent, most specific first.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def describe_agent(agent: str | None) -> str:
    """A short name for a User-Agent ("Chrome on Linux"); the raw text when unknown."""
    if not agent:
        return "Unknown browser"
    browser = next((name for mark, name in _BROWSERS if mark in agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or agent[:60]


def ago(moment: float | None, now: float) -> str:
    """When, in words a person reads at a glance."""
    if moment is None:
        return "unknown"
    seconds = max(0, int(now - moment))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def device_row(info: SessionInfo, session: Session, csrf: str, now: float) -> str:
    """One device: what it is, when it was last seen, and its "Log out" form."""
    current = info.handle == session.handle
    label = html.escape(describe_agent(info.user_agent))
    where = f" · {html.escape(info.ip)}" if info.ip else ""
    mark = ' <span class="badge">this device</span>' if current else ""
    button = "Log out this device" if current else "Log out"
    return (
        f'<li class="device" data-current="{str(current).lower()}">'
        f'<span class="device-name">{label}{mark}</span>'
        f'<span class="device-seen">last seen {ago(info.last_seen, now)}{where}</span>'
        f'<form method="post" action="/devices/end">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
        f'<input type="hidden" name="handle" value="{html.escape(info.handle)}">'
        f'<button type="submit" class="secondary">{button}</button></form></li>'
    )


async def devices_panel(request: web.Request, session: Session, csrf: str) -> str:
    """The list of the user's devices as HTML (this device first), for the chat page."""
    manager = get_manager(request)
    if manager.store.stateless:
        return '<li class="device-seen">Listing devices needs sessions kept on the server.</li>'
    devices = await manager.user_sessions(session[USERNAME])
    devices.sort(key=lambda info: info.handle != session.handle)
    now = time.time()
    return "".join(device_row(info, session, csrf, now) for info in devices)


async def _checked(request: web.Request) -> tuple[Session, dict[str, str]]:
    """The session and the posted form, after the CSRF check (403)."""
    session = await get_session(request)
    return session, await checked_form(request, session)


@require_session(USERNAME)
async def end_device(request: web.Request) -> web.Response:
    """End one of the user's sessions by its handle (this device's too)."""
    session, form = await _checked(request)
    handle = form.get("handle", "")
    if handle == session.handle:
        session.invalidate()  # this device: its cookie is deleted on this response
    ended = await get_manager(request).end_session(handle, user=session.get(USERNAME))
    if not ended and handle != session.handle:
        raise web.HTTPNotFound(text="No such device of yours: reload the page.")
    raise web.HTTPSeeOther("/")


@require_session(USERNAME)
async def logout_others(request: web.Request) -> web.Response:
    """Log the user out of every other browser and device; this one stays logged in."""
    session, _ = await _checked(request)
    manager = get_manager(request)
    if manager.store.stateless:  # cookies stay valid in other browsers: nothing to end
        raise web.HTTPConflict(text="Logging other devices out needs a server-side store.")
    await manager.logout_user(session[USERNAME], keep=session.id)
    raise web.HTTPSeeOther("/")


ROUTES = [
    web.post("/devices/end", end_device),
    web.post("/devices/logout-others", logout_others),
]
