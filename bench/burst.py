"""A login storm on Redis: ``python bench/burst.py`` (also ``run.py``'s ``burst`` section).

wrk holds 400 connections on ``POST /login`` (a new session per request; with aio_sessions
also its link in the user's index) against a healthy Redis, for aio_sessions' RedisStore and
aiohttp-session's RedisStorage, each on a redis-py client with its default pool. redis-py's
asyncio pool opens at most 100 connections and fails a command that finds them all busy,
so a library that sends one command per request in flight answers the rest with errors.
The check: every login answered 200.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import RedisProcess, log, run_alone, server, verdict

VARIANTS = ("aio-redis", "ahs-redis")
CONNECTIONS = 400
LABELS = {"aio-redis": "aio_sessions RedisStore", "ahs-redis": "aiohttp-session RedisStorage"}


def run_burst(variant: str, workdir: Path, redis: RedisProcess, seconds: int) -> dict[str, Any]:
    """One wrk run of logins; the answers that were not 200, and the server's reasons."""
    script = workdir / "post.lua"
    script.write_text('wrk.method = "POST"\n')
    with server(variant, workdir, redis) as srv:
        cmd = [
            "wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
            "-s", str(script), f"{srv.origin}/login?user=bench",
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-500:]}")
        errors = srv.log_path.read_text(errors="replace")
    redis.flush()
    total = int(re.search(r"(\d+) requests in", out.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    sockets = re.search(r"Socket errors: (.*)", out.stdout)
    return {
        "requests": total,
        "failed": int(failed.group(1)) if failed else 0,
        "socket_errors": sockets.group(1).strip() if sockets else "",
        "max_connections_errors": errors.count("MaxConnectionsError"),
        "per_second": total / seconds,
    }


def burst_section(workdir: Path, seconds: int = 5) -> dict[str, Any]:
    """Both libraries, one after the other, on one Redis."""
    redis_dir = workdir / "redis-burst"
    redis_dir.mkdir(exist_ok=True)
    redis = RedisProcess(redis_dir)
    out: dict[str, Any] = {"seconds": seconds}
    try:
        for variant in VARIANTS:
            out[variant] = run_burst(variant, workdir, redis, seconds)
            log(f"[burst] {variant}: {out[variant]}")
    finally:
        redis.stop()
    return out


def report_burst(results: dict[str, Any], add: Any) -> None:
    """One line per library, and the check."""
    section = results.get("burst")
    if not section:
        return
    add("")
    add(
        f"Login storm: wrk -c{CONNECTIONS} on POST /login for {section['seconds']}s, a healthy "
        "Redis, redis-py's default pool (100 connections)"
    )
    for variant in VARIANTS:
        r = section.get(variant)
        if r is None:
            continue
        share = r["failed"] / max(r["requests"], 1)
        add(
            f"  {LABELS[variant]:30} {r['per_second']:7.0f} logins/s, {r['failed']:6d} of "
            f"{r['requests']:6d} not 200 ({share:.1%}); MaxConnectionsError in its log: "
            f"{r['max_connections_errors']}"
        )
    ours = section.get("aio-redis")
    if ours is not None:
        ok = ours["failed"] == 0 and not ours["socket_errors"]
        add(f"  {'every aio_sessions login answered 200':58} {verdict(float(ok), 1.0)}")


def main(argv: list[str] | None = None) -> int:
    section = run_alone(__doc__, "burst", burst_section, report_burst, 5, argv)
    return 0 if section["aio-redis"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
