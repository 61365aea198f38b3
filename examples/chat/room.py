"""The sockets open in this process, each with its own outgoing queue.

The broker's frames are put on every connection's queue without waiting; one task per
connection writes them in order. A slow client therefore never holds up the others, and a
client that falls too far behind is disconnected (it reconnects and gets the history).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import WSCloseCode, web

from .broker import Frame

#: Frames a connection may have waiting before it counts as stuck.
QUEUE_SIZE = 256


class Connection:
    """One chat socket: the user it belongs to and the frames waiting to go out."""

    def __init__(self, ws: web.WebSocketResponse, user: str) -> None:
        self.ws = ws
        self.user = user
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._writer: asyncio.Task[None] | None = None
        self._stuck = False

    def send(self, frame: Frame) -> None:
        self.push(json.dumps(frame))

    def push(self, text: str) -> None:
        """Queue an encoded frame; never waits."""
        if self._stuck:
            return
        if self._queue.full():
            self._stuck = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)  # tells the writer to close the socket
            return
        self._queue.put_nowait(text)

    def start(self, already_sent: list[Frame]) -> None:
        """Start writing. Frames queued meanwhile that ``already_sent`` (the history the
        socket just received) contains are dropped, so no message arrives twice."""
        sent = {json.dumps(frame) for frame in already_sent}
        waiting = []
        while not self._queue.empty():
            text = self._queue.get_nowait()
            if text not in sent:
                waiting.append(text)
        for text in waiting:
            self._queue.put_nowait(text)
        self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                return
            try:
                await self.ws.send_str(text)
            except ConnectionError:  # the socket is closing: nothing more to write
                return

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.wait([self._writer])


class Room:
    """Every chat connection of this process."""

    def __init__(self) -> None:
        self._connections: set[Connection] = set()

    def __len__(self) -> int:
        return len(self._connections)

    def add(self, connection: Connection) -> None:
        self._connections.add(connection)

    def remove(self, connection: Connection) -> None:
        self._connections.discard(connection)

    def broadcast(self, frame: Frame) -> None:
        """Queue ``frame`` for every connection (the broker's listener)."""
        text = json.dumps(frame)
        for connection in self._connections:
            connection.push(text)

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close every socket, e.g. on shutdown; browsers reconnect after a backoff."""
        sockets = [connection.ws for connection in self._connections]
        await asyncio.gather(
            *(ws.close(code=code, message=b"server shutdown") for ws in sockets),
            return_exceptions=True,
        )
