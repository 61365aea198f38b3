"""Server-side cost per request, without sockets: ``python bench/inprocess.py``.

Each variant of ``bench/server.py`` gets raw HTTP/1.1 requests written straight into
aiohttp's protocol object over an in-memory transport, one at a time on one keep-alive
connection, so the figure is the server's own CPU time per request (parsing, routing,
middleware, handler, session work, response serialisation) without the kernel, the load
generator or the other core. It is steadier than wrk, which makes it the tool for A/B
comparisons of small changes; ``bench/run.py`` remains the measurement of record.

Redis variants need ``--redis-url`` (a server you started, e.g. ``redis-server --port 6390
--save ""``).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
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


async def per_request(variant: str, route: str, count: int, redis_url: str | None) -> float:
    """Best of five batches of ``count`` requests: seconds per request."""
    runner = web.AppRunner(make_app(variant, redis_url, None), access_log=None)
    await runner.setup()
    try:
        protocol = runner.server()
        transport = _Transport()
        protocol.connection_made(transport)
        loop = asyncio.get_running_loop()

        async def send(raw: bytes) -> bytes:
            transport.chunks.clear()
            transport.waiter = loop.create_future()
            protocol.data_received(raw)
            await transport.waiter
            await asyncio.sleep(0)  # let the request task finish
            return b"".join(transport.chunks)

        head = b"Host: 127.0.0.1:8080\r\n"
        answer = await send(
            b"POST /login?user=bench HTTP/1.1\r\n" + head + b"Content-Length: 0\r\n\r\n"
        )
        cookie = secrets.token_urlsafe(32).encode()
        for line in answer.split(b"\r\n"):
            if line.lower().startswith(b"set-cookie: " + COOKIE_NAME.lower().encode() + b"="):
                cookie = line.split(b"=", 1)[1].split(b";", 1)[0]
        raw = b"GET /%s HTTP/1.1\r\n%sCookie: %s=%s\r\n\r\n" % (
            route.encode(),
            head,
            COOKIE_NAME.encode(),
            cookie,
        )
        answer = await send(raw)
        if b" 200 " not in answer.split(b"\r\n", 1)[0] or (
            route == "read" and b"user=bench" not in answer
        ):
            raise RuntimeError(f"{variant} /{route} answered {answer[:300]!r}")
        for _ in range(min(count, 2000)):
            await send(raw)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(count):
                await send(raw)
            best = min(best, (time.perf_counter() - start) / count)
        return best
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", default="bare,bare-middleware,aio-memory,ahs-encrypted,aio-cookie"
    )
    parser.add_argument("--routes", default="read,write")
    parser.add_argument("--count", type=int, default=10000, help="requests per batch (10000)")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # aiohttp-session's string keys warn on aiohttp 3.14
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    print(f"server CPU per request, best of 5 batches of {args.count} (lower is better)")
    print(f"{'variant':18} " + " ".join(f"{route:>10}" for route in args.routes.split(",")))
    for variant in variants:
        costs = [
            asyncio.run(per_request(variant, route, args.count, args.redis_url))
            for route in args.routes.split(",")
        ]
        print(f"{variant:18} " + " ".join(f"{cost * 1e6:8.2f}us" for cost in costs), flush=True)


if __name__ == "__main__":
    main()
