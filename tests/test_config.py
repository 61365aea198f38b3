"""Options are validated at setup; the cookie policy follows them."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

import aio_sessions

from .conftest import MakeClient


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cookie_name": "bad name"}, "cookie_name"),
        ({"cookie_name": ""}, "cookie_name"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": 1.5}, "max_age"),
        ({"max_age": True}, "max_age"),
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"absolute_timeout": "1h"}, "absolute_timeout"),
        ({"path": "relative"}, "path"),
        ({"samesite": "lax"}, "samesite"),
        ({"samesite": "None", "secure": False}, "secure"),
        ({"rolling": "yes"}, "rolling"),
        ({"httponly": 1}, "httponly"),
    ],
)
def test_bad_options_fail_at_setup(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aio_sessions.setup(web.Application(), **options)


def test_unknown_option_fails_at_setup() -> None:
    with pytest.raises(TypeError, match="max_agee"):
        aio_sessions.setup(web.Application(), max_agee=10)


async def test_cookie_options(make_client: MakeClient) -> None:
    client = await make_client(
        cookie_name="sid",
        path="/",
        domain="example.test",
        samesite="Strict",
        httponly=False,
        max_age=120,
    )
    resp = await client.get("/count")
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("sid=")
    assert "Domain=example.test" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=120" in cookie
    assert "HttpOnly" not in cookie


async def test_secure_forced(make_client: MakeClient) -> None:
    client = await make_client(secure=True)
    assert "Secure" in (await client.get("/count")).headers["Set-Cookie"]


async def test_forwarded_proto_only_with_trust_proxy(make_client: MakeClient) -> None:
    headers = {"X-Forwarded-Proto": "https"}
    plain = await make_client()
    assert "Secure" not in (await plain.get("/count", headers=headers)).headers["Set-Cookie"]
    trusting = await make_client(trust_proxy=True)
    assert "Secure" in (await trusting.get("/count", headers=headers)).headers["Set-Cookie"]
    assert "Secure" not in (await trusting.get("/count")).headers.get("Set-Cookie", "")
