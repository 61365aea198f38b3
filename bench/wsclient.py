"""WebSocket load generator for the benchmark, on raw asyncio sockets (cheaper than a client
library, so the server is what saturates).

``handshakes``: N workers open and close WebSockets for a fixed time; prints one JSON line.
``hold``: opens many WebSockets (from ``--source``, a loopback address of its own) and keeps
them; prints ``{"event": "ready", ...}``, then obeys commands on stdin, one a line:

- ``wait close SECONDS``: wait until every socket has received its close frame; prints when
  each did (``time.monotonic()``, the system-wide clock the runner reads too) and the codes.
- ``wait text COUNT SECONDS``: the same for each socket's COUNT-th text or binary message.
- ``close``: closes every socket and exits.

Only loopback addresses are accepted, and every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, cast

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def raise_nofile() -> None:
    """Raise the soft open-file limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def emit(doc: dict[str, Any]) -> None:
    """Print one JSON line for the runner."""
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


class WsProtocol(asyncio.Protocol):
    """One client WebSocket: the handshake, then close frames only."""

    def __init__(self, host: str, port: int, path: str, origin: str, cookie: str | None) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.upgraded: asyncio.Future[None] = loop.create_future()
        #: (close code or -1 when the connection dropped, time.monotonic() of receipt)
        self.closed: asyncio.Future[tuple[int, float]] = loop.create_future()
        #: time.monotonic() of each text or binary message received
        self.messages: list[float] = []
        self.transport: asyncio.Transport | None = None
        self.close_sent = False
        self._buffer = bytearray()
        self._headers_done = False
        key = base64.b64encode(os.urandom(16))
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key.decode()}",
            "Sec-WebSocket-Version: 13",
            f"Origin: {origin}",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast: uvloop's transports do not subclass asyncio.Transport, but write as one.
        self.transport = writer = cast(asyncio.Transport, transport)
        writer.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._headers_done:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > 65536:
                    self._fail("response headers too long")
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._headers_done = True
            status = head.split(b"\r\n", 1)[0]
            if not status.startswith(b"HTTP/1.1 101"):
                self._fail(status.decode("latin-1", "replace"))
                return
            accept = [
                value.strip()
                for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                if name.strip().lower() == b"sec-websocket-accept"
            ]
            if accept != [self._accept]:
                self._fail("bad Sec-WebSocket-Accept")
                return
            if not self.upgraded.done():
                self.upgraded.set_result(None)
        self._read_frames()

    def _fail(self, reason: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def _read_frames(self) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if buf[1] & 0x80:
                offset += 4
            if len(buf) < offset + length:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode in (0x1, 0x2):
                self.messages.append(time.monotonic())
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if not self.closed.done():
                    self.closed.set_result((code, time.monotonic()))
                # Echo the code, as a polite client does (1005: the frame had none).
                self.send_close(code if 1000 <= code < 5000 and code != 1005 else 1000)
                return

    def send_close(self, code: int = 1000) -> None:
        """Send a masked close frame (clients must mask)."""
        if self.close_sent or self.transport is None or self.transport.is_closing():
            return
        self.close_sent = True
        mask = os.urandom(4)
        payload = code.to_bytes(2, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x88, 0x80 | len(payload)]) + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result((-1, time.monotonic()))


async def open_ws(
    host: str,
    port: int,
    path: str,
    origin: str,
    cookie: str | None,
    timeout: float,
    source: str | None = None,
) -> WsProtocol:
    """Connect (from the ``source`` address, if given) and complete the handshake; raises on
    refusal or timeout."""
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(
            lambda: WsProtocol(host, port, path, origin, cookie),
            host,
            port,
            local_addr=(source, 0) if source else None,
        ),
        timeout,
    )
    try:
        await asyncio.wait_for(asyncio.shield(proto.upgraded), timeout)
    except BaseException:
        if proto.transport is not None:
            proto.transport.abort()
        raise
    return proto


# -- handshakes per second -------------------------------------------------------------------


async def handshakes(args: argparse.Namespace) -> dict[str, Any]:
    """Workers open, close, and count WebSockets until the time or the count runs out."""
    loop = asyncio.get_running_loop()
    origin = args.origin or f"http://{args.host}:{args.port}"
    done = 0
    errors: collections.Counter[str] = collections.Counter()
    deadline = loop.time() + args.duration

    async def worker() -> None:
        nonlocal done
        while loop.time() < deadline and done + sum(errors.values()) < args.max_count:
            try:
                proto = await open_ws(args.host, args.port, args.path, origin, args.cookie, 10)
                proto.send_close(1000)
                code, _ = await asyncio.wait_for(asyncio.shield(proto.closed), 10)
                if proto.transport is not None:
                    proto.transport.close()
                if code == 1000:
                    done += 1
                else:
                    errors[f"close code {code}"] += 1
            except (OSError, asyncio.TimeoutError) as exc:
                errors[str(exc)[:80] or type(exc).__name__] += 1

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(args.workers)))
    elapsed = loop.time() - start
    return {
        "handshakes": done,
        "elapsed": elapsed,
        "per_second": done / elapsed if elapsed > 0 else 0.0,
        "errors": dict(errors.most_common(5)),
    }


# -- many sockets held -----------------------------------------------------------------------


async def hold(args: argparse.Namespace) -> None:
    """Open ``--sockets`` WebSockets, report, then follow the runner's commands."""
    loop = asyncio.get_running_loop()
    origin = args.origin or f"http://{args.host}:{args.port}"
    cookies: list[str | None] = args.cookies or [args.cookie]
    sockets: list[WsProtocol] = []
    errors: collections.Counter[str] = collections.Counter()
    gate = asyncio.Semaphore(args.concurrency)

    async def opener(i: int) -> None:
        async with gate:
            try:
                cookie = cookies[i % len(cookies)]
                proto = await open_ws(
                    args.host, args.port, args.path, origin, cookie, 30, args.source
                )
                sockets.append(proto)
            except (OSError, asyncio.TimeoutError) as exc:
                errors[str(exc)[:80] or type(exc).__name__] += 1

    start = loop.time()
    await asyncio.wait_for(
        asyncio.gather(*(opener(i) for i in range(args.sockets))), args.open_timeout
    )
    emit(
        {
            "event": "ready",
            "opened": len(sockets),
            "failed": sum(errors.values()),
            "errors": dict(errors.most_common(3)),
            "open_seconds": loop.time() - start,
        }
    )
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        try:
            line = (await asyncio.wait_for(reader.readline(), 600)).decode().strip()
        except asyncio.TimeoutError:
            line = "close"
        if not line or line == "close":
            await close_all(sockets)
            emit({"event": "closed"})
            return
        words = line.split()
        if words[:2] == ["wait", "close"]:
            emit(await wait_for(sockets, float(words[2]), closed=True))
        elif words[:2] == ["wait", "text"]:
            emit(await wait_for(sockets, float(words[3]), count=int(words[2])))


async def wait_for(
    sockets: list[WsProtocol], timeout: float, *, closed: bool = False, count: int = 0
) -> dict[str, Any]:
    """Wait until every socket has its close frame (``closed``) or its ``count``-th message;
    report when each did, as ``time.monotonic()`` values."""

    def reached(proto: WsProtocol) -> bool:
        return proto.closed.done() if closed else len(proto.messages) >= count

    deadline = time.monotonic() + timeout
    # Polling is fine: each receipt time was taken when its frame arrived, not here.
    while not all(reached(p) for p in sockets) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    done = [p for p in sockets if reached(p)]
    if closed:
        results = [p.closed.result() for p in done]
        codes = collections.Counter(str(code) for code, _ in results)
        times = [at for _, at in results]
    else:
        codes = collections.Counter()
        times = [p.messages[count - 1] for p in done]
    return {
        "event": "waited",
        "times": times,
        "missing": len(sockets) - len(done),
        "codes": dict(codes),
    }


async def close_all(sockets: list[WsProtocol]) -> None:
    """Close every socket politely, then drop whatever did not answer within 10 seconds."""
    for proto in sockets:
        proto.send_close(1000)
    pending = [p.closed for p in sockets if not p.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=10)
    for proto in sockets:
        if proto.transport is not None:
            proto.transport.abort()


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and run one mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("handshakes", "hold"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--origin", help="Origin header (default: the server's own origin)")
    parser.add_argument("--cookie", help="the Cookie header value, e.g. NAME=VALUE")
    parser.add_argument("--cookies-file", help="hold: a JSON list of Cookie values, round robin")
    parser.add_argument("--workers", type=int, default=32, help="handshakes: concurrent workers")
    parser.add_argument("--duration", type=float, default=5.0, help="handshakes: seconds")
    parser.add_argument("--max-count", type=int, default=10_000_000, help="handshakes: at most")
    parser.add_argument("--sockets", type=int, default=10_000, help="hold: sockets to open")
    parser.add_argument("--concurrency", type=int, default=200, help="hold: handshakes in flight")
    parser.add_argument("--open-timeout", type=float, default=180.0, help="hold: seconds")
    parser.add_argument("--source", help="hold: the loopback address to connect from")
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the client's event loop: uvloop when installed (a cheaper client), else asyncio",
    )
    args = parser.parse_args(argv)
    if args.host not in _LOOPBACK or not (args.source or "127.").startswith("127."):
        parser.error("only loopback addresses are allowed")
    args.cookies = json.loads(Path(args.cookies_file).read_text()) if args.cookies_file else None
    raise_nofile()
    runner = asyncio.run
    if args.loop != "asyncio":
        try:
            import uvloop

            runner = uvloop.run  # type: ignore[assignment,unused-ignore]
            args.loop = "uvloop"
        except ImportError:
            if args.loop == "uvloop":
                parser.error("uvloop is not installed: pip install uvloop")
            args.loop = "asyncio"
    if args.mode == "handshakes":
        emit({**runner(handshakes(args)), "loop": args.loop})
    else:
        runner(hold(args))


if __name__ == "__main__":
    main()
