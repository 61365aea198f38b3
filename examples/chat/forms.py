"""The session keys every part of the chat shares, and the CSRF check of its forms.

The CSRF token lives in the session: every form carries it back and ``checked_form``
compares the two before a handler acts (403 otherwise).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from aiohttp import web

from aio_sessions import Session

#: Who is logged in (the ``user_key``), and the token every form must send back.
USERNAME: Final = "username"
CSRF: Final = "csrf"


def csrf_token(session: Session) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = session[CSRF] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: web.Request, session: Session) -> dict[str, str]:
    """The posted form, after checking its ``csrf`` field against the session (403)."""
    form = await request.post()
    sent, expected = form.get(CSRF), session.get(CSRF)
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise web.HTTPForbidden(text="Missing or wrong CSRF token: reload the page and retry.")
    return {key: value for key, value in form.items() if isinstance(value, str)}
