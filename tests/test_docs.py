"""The documentation's examples compile, and the quick starts run against a real server."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_compile(path: Path) -> None:
    for number, code in enumerate(blocks(path)):
        # Snippets may await at top level, as if inside a handler.
        compile(code, f"{path.name}[{number}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def run_first_block(path: Path) -> web.Application:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(blocks(path)[0], namespace)
    app: web.Application = namespace["app"]
    return app


async def test_readme_quick_start(aiohttp_client: Any) -> None:
    client = await aiohttp_client(run_first_block(ROOT / "README.md"))
    assert await (await client.get("/")).text() == "visits: 1"
    assert await (await client.get("/")).text() == "visits: 2"


async def test_docs_quick_start(aiohttp_client: Any) -> None:
    client = await aiohttp_client(run_first_block(ROOT / "docs" / "index.md"))
    assert await (await client.get("/")).text() == "hello stranger"
    resp = await client.post("/login", data={"user": "alice"})
    assert await resp.text() == "hello alice"
    resp = await client.post("/logout")
    assert await resp.text() == "hello stranger"


async def test_websockets_lifecycle_snippet(aiohttp_client: Any) -> None:
    import aiohttp

    from aio_sessions import get_manager

    app = run_first_block(ROOT / "docs" / "websockets.md")
    client = await aiohttp_client(app)
    own = str(client.make_url("/").origin())
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", origin=own)
    assert refused.value.status == 401
    sid = await get_manager(app).create({"user": "ann"})
    headers = {"Cookie": f"AIOHTTP_SESSION={sid}"}
    async with client.ws_connect("/ws", origin=own, headers=headers) as ws:
        assert await ws.receive_str() == "hello ann"
        await ws.send_str("ping")
        await ws.close()
    assert "last_seen" in (await get_manager(app).get(sid) or {})
