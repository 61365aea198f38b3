"""Every key a memcached holds, from ``lru_crawler metadump``.

aiomcache has no command for it, so the dump runs on a connection of the client's own pool
(its address, its connection arguments). A connection whose dump did not end cleanly is
closed, never handed back with half an answer unread.

``metadump hash`` walks memcached's hash table and sees every live item. Servers that do not
know it (before 1.6) get ``metadump all``, an LRU walk that skips the items a command is using
at that instant.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote_to_bytes

from aiomcache import ClientException, FlagClient

# memcached runs one crawl at a time and answers BUSY to another: wait and ask again.
_BUSY_RETRIES = 20
_BUSY_WAIT = 0.05


async def dump_keys(client: FlagClient[Any]) -> list[str]:
    """The keys of every live item; ClientException when memcached refuses to list them."""
    refusal = b""
    for walk in (b"hash", b"all"):
        for _ in range(_BUSY_RETRIES):
            answer = await _dump_once(client, walk)
            if isinstance(answer, list):
                return answer
            if not answer.startswith(b"BUSY"):
                refusal = answer
                break
            await asyncio.sleep(_BUSY_WAIT)
        else:
            raise ClientException("memcached kept answering BUSY to lru_crawler metadump")
    hint = "is it started with -X, or older than 1.4.31?"
    raise ClientException(f"memcached refused lru_crawler metadump ({hint})", refusal)


async def _dump_once(client: FlagClient[Any], walk: bytes) -> list[str] | bytes:
    """One dump: the keys, or the line memcached answered instead (BUSY, an error)."""
    pool = client._pool
    conn = await pool.acquire()
    try:
        conn.writer.write(b"lru_crawler metadump " + walk + b"\r\n")
        await conn.writer.drain()
        keys: list[str] = []
        while True:
            # One line per item: "key=<URL-encoded key> exp=... la=... ...", then END.
            line = await conn.reader.readline()
            if line.startswith(b"key="):
                key = line[4:].split(b" ", 1)[0].strip()
                keys.append(unquote_to_bytes(key).decode("utf-8", "replace"))
            elif line == b"END\r\n":
                return keys
            elif not line.endswith(b"\n"):
                raise EOFError("memcached closed the connection during lru_crawler metadump")
            elif keys:
                raise ClientException("unexpected line in lru_crawler metadump", line)
            else:
                return line.strip()
    except BaseException:
        # Marked broken, so the pool closes this connection instead of reusing it.
        conn.reader.set_exception(ConnectionAbortedError("lru_crawler metadump did not end"))
        raise
    finally:
        pool.release(conn)
