"""What a handler answers with: aiohttp-session's test_http_exception.py and
test_response_types.py, and a FileResponse.

aiohttp-session saves the session only for a ``web.Response`` (or a raised HTTPException) it
gets back unprepared: its tests pin that a StreamResponse carries no session cookie and that a
handler preparing its own response is a RuntimeError (its issues #373, #640). Here the
session is committed just before any response's headers go out (README.md, "Correct where
others are not"; docs/architecture.md#decisions, "Commit before the headers go out"), so
those two tests check the opposite: the session is saved and its cookie sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web

from aio_sessions import get_manager, get_session

from ..conftest import MakeClient
from .conftest import COOKIE, Client


async def saved(client: Client, resp: ClientResponse) -> dict[str, Any] | None:
    """The stored data of the session whose cookie ``resp`` set."""
    return await get_manager(client.app).get(resp.cookies[COOKIE].value)


async def test_exceptions(make_client: MakeClient) -> None:
    async def save(request: web.Request) -> web.Response:
        (await get_session(request))["message"] = "works"
        raise web.HTTPFound("/show")

    async def show(request: web.Request) -> web.Response:
        return web.Response(text=str((await get_session(request)).get("message")))

    client = await make_client(("GET", "/save", save), ("GET", "/show", show))
    resp = await client.get("/save")
    assert resp.status == 200
    assert resp.url.path == "/show"
    assert await resp.text() == "works"


async def test_stream_response(make_client: MakeClient) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        (await get_session(request))["will"] = "show up"
        return web.StreamResponse()

    client = await make_client(("GET", "/stream", stream))
    resp = await client.get("/stream")
    assert resp.status == 200
    assert await saved(client, resp) == {"will": "show up"}


async def test_bad_response_type(make_client: MakeClient) -> None:
    async def bad(request: web.Request) -> web.Response:
        return ""  # type: ignore[return-value]

    client = await make_client(("GET", "/", bad))
    resp = await client.get("/")
    assert resp.status == 500
    assert COOKIE not in resp.cookies


async def test_prepared_response_type(make_client: MakeClient) -> None:
    async def prepared(request: web.Request) -> web.StreamResponse:
        (await get_session(request))["k"] = "v"
        resp = web.Response(text="made here")
        await resp.prepare(request)
        return resp

    client = await make_client(("GET", "/", prepared))
    resp = await client.get("/")
    assert resp.status == 200
    assert await resp.text() == "made here"
    assert await saved(client, resp) == {"k": "v"}


async def test_file_response(make_client: MakeClient, tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_text("a file")

    async def download(request: web.Request) -> web.FileResponse:
        (await get_session(request))["downloaded"] = True
        return web.FileResponse(page)

    client = await make_client(("GET", "/file", download))
    resp = await client.get("/file")
    assert await resp.text() == "a file"
    assert await saved(client, resp) == {"downloaded": True}
