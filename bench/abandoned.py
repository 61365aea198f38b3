"""MemoryStore under abandoned logins: ``python bench/abandoned.py [COUNT] [--max-sessions N]``.

Creates COUNT sessions (1,000,000 by default) that are never used again, as logins of
visitors who leave, through the manager of a real app (no HTTP: the store is what is
measured). One live session is read every 1,000 logins; every 200,000 the script prints the
process's RSS and the time to read that session. With the default cap (100,000) RSS levels off; with
``--max-sessions 0`` (no cap) it grows with every session.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from pathlib import Path

from aiohttp import web

import aio_sessions
from aio_sessions.stores.memory import DEFAULT_MAX_SESSIONS


def rss_mib() -> float:
    """This process's resident set size in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(count: int, cap: int | None) -> None:
    app = web.Application()
    manager = aio_sessions.setup(app, aio_sessions.MemoryStore(max_sessions=cap))
    live = await manager.create({"user": "live", "counter": 0})
    before = rss_mib()
    started = time.perf_counter()
    for i in range(1, count + 1):
        await manager.create({"user": f"visitor{i}", "csrf": "x" * 43})
        if i % 1_000 == 0:  # the live user keeps using the site meanwhile
            assert await manager.get(live) is not None
        if i % 200_000 == 0 or i == count:
            reads = 10_000
            t0 = time.perf_counter()
            for _ in range(reads):
                assert await manager.get(live) is not None
            read_us = (time.perf_counter() - t0) / reads * 1e6
            print(f"{i:9,d} abandoned: RSS {rss_mib():7.1f} MiB, reading the live session "
                  f"{read_us:.2f} µs", flush=True)  # fmt: skip
    gc.collect()
    held = await manager.count()
    print(
        f"{count:,d} logins in {time.perf_counter() - started:.1f}s, max_sessions={cap}: "
        f"RSS {before:.1f} -> {rss_mib():.1f} MiB, {held:,d} sessions held"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=1_000_000)
    parser.add_argument(
        "--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS, help="0: no cap (100000)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.count, args.max_sessions or None))


if __name__ == "__main__":
    main()
