"""Run the example: ``python -m examples.chat [--host HOST] [--port PORT]``."""

from __future__ import annotations

import argparse
import html

from aiohttp import web

import aio_sessions


async def index(request: web.Request) -> web.Response:
    session = await aio_sessions.get_session(request)
    session["visits"] = session.get("visits", 0) + 1
    body = (
        "<!doctype html><title>aio_sessions</title>"
        f"<h1>You have visited this page {html.escape(str(session['visits']))} times</h1>"
        "<p>The count lives in a server-side session; reload to see it grow.</p>"
    )
    return web.Response(text=body, content_type="text/html")


def make_app() -> web.Application:
    app = web.Application()
    aio_sessions.setup(app)
    app.router.add_get("/", index)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    print(f"Serving on http://{args.host}:{args.port}/", flush=True)
    web.run_app(make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
