"""Server-side cost per request, without sockets: ``python bench/inprocess.py``.

Each variant of ``bench/server.py`` gets raw HTTP/1.1 requests written straight into
aiohttp's protocol object over an in-memory transport, one at a time on one keep-alive
connection, so the figure is the server's own CPU time per request (parsing, routing,
middleware, handler, session work, response serialisation) without the kernel, the load
generator or the other core. It is steadier than wrk, which makes it the tool for A/B
comparisons of small changes; ``bench/run.py`` remains the measurement of record.

``--routes ws`` times WebSocket handshakes instead (open, upgrade, close), like
``bench/run.py``'s handshake section. Redis variants need ``--redis-url`` (a server you
started, e.g. ``redis-server --port 6390 --save ""``).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import warnings
from typing import Any

from aiohttp import web
from server import COOKIE_NAME, VARIANTS, make_app


class _Transport(asyncio.Transport):
    """Collects what the server writes and wakes the sender when a response arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] | None = None
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.chunks.append(bytes(data))
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Connection:
    """One client connection into the server's protocol object."""

    def __init__(self, runner: web.AppRunner) -> None:
        assert runner.server is not None, "runner.setup() first"
        self.protocol = runner.server()
        self.transport = _Transport()
        self.protocol.connection_made(self.transport)
        self.loop = asyncio.get_running_loop()

    async def send(self, raw: bytes) -> bytes:
        """Feed ``raw`` and return what the server wrote until its first write."""
        self.transport.chunks.clear()
        self.transport.waiter = self.loop.create_future()
        self.protocol.data_received(raw)
        await self.transport.waiter
        await asyncio.sleep(0)  # let the request task finish
        return b"".join(self.transport.chunks)

    async def close_websocket(self) -> None:
        """Send a masked close frame and wait until the server closes the connection."""
        self.transport.closed = closed = self.loop.create_future()
        # FIN + close opcode, masked 2-byte payload: code 1000 (0x03E8) xor the mask 01 02.
        self.protocol.data_received(b"\x88\x82\x01\x02\x03\x04\x02\xea")
        await closed
        self.protocol.connection_lost(None)
        await asyncio.sleep(0)


_HEAD = b"Host: 127.0.0.1:8080\r\n"
_UPGRADE = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://127.0.0.1:8080\r\n"
)


async def per_request(variant: str, route: str, count: int, redis_url: str | None) -> float:
    """Best of five batches of ``count`` requests: seconds per request.

    ``read`` and ``write`` reuse one keep-alive connection; ``ws`` opens a connection per
    request, upgrades it (with the session cookie and the app's own Origin), closes the
    socket and waits for the server to close the connection, as bench/wsclient.py does.
    """
    runner = web.AppRunner(make_app(variant, redis_url, None), access_log=None)
    await runner.setup()
    try:
        conn = _Connection(runner)
        answer = await conn.send(
            b"POST /login?user=bench HTTP/1.1\r\n" + _HEAD + b"Content-Length: 0\r\n\r\n"
        )
        cookie = secrets.token_urlsafe(32).encode()
        for line in answer.split(b"\r\n"):
            if line.lower().startswith(b"set-cookie: " + COOKIE_NAME.lower().encode() + b"="):
                cookie = line.split(b"=", 1)[1].split(b";", 1)[0]
        raw = b"GET /%s HTTP/1.1\r\n%s%sCookie: %s=%s\r\n\r\n" % (
            route.encode(),
            _HEAD,
            _UPGRADE if route == "ws" else b"",
            COOKIE_NAME.encode(),
            cookie,
        )
        expected = b" 101 " if route == "ws" else b" 200 "

        async def one() -> bytes:
            if route != "ws":
                return await conn.send(raw)
            fresh = _Connection(runner)
            answer = await fresh.send(raw)
            await fresh.close_websocket()
            return answer

        answer = await one()
        if expected not in answer.split(b"\r\n", 1)[0] or (
            route == "read" and b"user=bench" not in answer
        ):
            raise RuntimeError(f"{variant} /{route} answered {answer[:300]!r}")
        for _ in range(min(count, 2000)):
            await one()
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(count):
                await one()
            best = min(best, (time.perf_counter() - start) / count)
        return best
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", default="bare,bare-middleware,aio-memory,ahs-encrypted,aio-cookie"
    )
    parser.add_argument("--routes", default="read,write", help="read, write, ws (read,write)")
    parser.add_argument("--count", type=int, default=10000, help="requests per batch (10000)")
    parser.add_argument("--redis-url")
    parser.add_argument(
        "--stdlib-json",
        action="store_true",
        help="hide orjson, to measure aio_sessions with the standard library's codec",
    )
    args = parser.parse_args()
    if args.stdlib_json:
        sys.modules["orjson"] = None  # type: ignore[assignment]  # import orjson now fails
    warnings.simplefilter("ignore")  # aiohttp-session's string keys warn on aiohttp 3.14
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    codec = "stdlib json" if args.stdlib_json else "orjson if installed"
    print(
        f"server CPU per request, best of 5 batches of {args.count} (lower is better); "
        f"aio_sessions codec: {codec}"
    )
    print(f"{'variant':18} " + " ".join(f"{route:>10}" for route in args.routes.split(",")))
    for variant in variants:
        costs = [
            asyncio.run(per_request(variant, route, args.count, args.redis_url))
            for route in args.routes.split(",")
        ]
        print(f"{variant:18} " + " ".join(f"{cost * 1e6:8.2f}us" for cost in costs), flush=True)


if __name__ == "__main__":
    main()
