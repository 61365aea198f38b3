"""Benchmark aio_sessions against bare aiohttp and aiohttp-session: ``python bench/run.py``.

Every server runs in its own process on a free loopback port (bench/server.py), loaded from
other processes (wrk for HTTP, bench/wsclient.py for WebSockets). Redis is a throwaway
redis-server this script starts and stops. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from burst import burst_section, report_burst
from common import (
    BENCH,
    HTTP_VARIANTS,
    REDIS_VARIANTS,
    SECTIONS,
    Config,
    RedisProcess,
    ServerProcess,
    check_session,
    cpu_seconds,
    log,
    login,
    redis_server_binary,
    request,
    server,
    verdict,
    warm_up,
)
from faults import faults_section, report_faults
from wsbench import report_ws, ws_handshake_section, ws_hold_section, ws_push_section

ROUTES = ("read", "write")
#: The write route again, the wrk connections spread over as many sessions (not one).
MANY = "write-many"
ROTATE_SCRIPT = BENCH / "rotate_cookies.lua"

LABELS = {
    "bare": "bare aiohttp (no sessions)",
    "bare-cookie": "bare + request.cookies parse",
    "bare-middleware": "bare + no-op middleware, hook",
    "ahs-simple": "aiohttp-session Simple",
    "ahs-encrypted": "aiohttp-session Encrypted",
    "ahs-redis": "aiohttp-session Redis",
    "aio-memory": "aio_sessions Memory",
    "aio-cookie": "aio_sessions EncryptedCookie",
    "aio-redis": "aio_sessions Redis",
    "aio-sqlite": "aio_sessions SQLite",
    "aio-file": "aio_sessions File",
}
assert tuple(LABELS) == HTTP_VARIANTS
#: Variants whose sessions live on the server, where concurrent writers of one session meet.
SERVER_SIDE = ("ahs-redis", "aio-memory", "aio-redis", "aio-sqlite", "aio-file")
# Commands the counting itself sends; they are left out of the per-request numbers.
_OWN_COMMANDS = {"config|resetstat", "info", "monitor", "echo"}


# -- HTTP throughput with wrk ----------------------------------------------------------------


@dataclass
class WrkResult:
    """One wrk run against one route.

    ``rps`` counts successful (2xx/3xx) responses only; ``total_rps`` is wrk's own figure,
    which also counts error responses such as a 503.
    """

    rps: float
    total_rps: float
    seconds: float
    requests: int
    errors: int
    latency_avg: str
    server_cpu: float


def run_wrk(
    srv: ServerProcess, route: str, cookie: str | Path, seconds: int, cfg: Config
) -> WrkResult:
    """Load one route with wrk for ``seconds`` and parse requests/sec.

    ``cookie`` is the one Cookie value every request carries, or a file of them to rotate.
    """
    cmd = [
        "wrk", "-t", str(cfg.threads), "-c", str(cfg.connections), "-d", f"{seconds}s",
        "--timeout", "5s",
    ]  # fmt: skip
    if isinstance(cookie, Path):
        cmd += ["-s", str(ROTATE_SCRIPT), f"{srv.origin}/{route}", "--", str(cookie)]
    else:
        cmd += ["-H", f"Cookie: {cookie}", f"{srv.origin}/{route}"]
    cpu0, t0 = cpu_seconds(srv.pid), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    cpu1, t1 = cpu_seconds(srv.pid), time.monotonic()
    if out.returncode != 0 or "Requests/sec" not in out.stdout:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}"
        )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out.stdout)
    requests = int(total.group(1)) if total else 0
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout):
        errors += int(m.group(1))
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out.stdout
    ):
        errors += sum(int(g) for g in m.groups())
    latency = re.search(r"Latency\s+(\S+)", out.stdout)
    ok = (requests - errors) / requests if requests else 1.0
    return WrkResult(
        rps=rps * max(ok, 0.0),
        total_rps=rps,
        seconds=seconds,
        requests=requests,
        errors=errors,
        latency_avg=latency.group(1) if latency else "?",
        server_cpu=(cpu1 - cpu0) / (t1 - t0),
    )


def http_section(cfg: Config, workdir: Path, redis: RedisProcess | None) -> dict[str, Any]:
    """Every variant on both routes, ``cfg.rounds`` times, alternating the order."""
    results: dict[str, dict[str, list[WrkResult]]] = {}
    for round_no in range(cfg.rounds):
        order = cfg.variants if round_no % 2 == 0 else tuple(reversed(cfg.variants))
        for variant in order:
            with server(variant, workdir, redis) as srv:
                cookie = login(srv.port)
                check_session(srv.port, cookie)
                plan: list[tuple[str, str, str | Path]] = [(r, r, cookie) for r in ROUTES]
                if variant in SERVER_SIDE:
                    many = srv.workdir / f"cookies-{srv.port}.txt"
                    many.write_text(
                        "\n".join(login(srv.port) for _ in range(cfg.connections)) + "\n"
                    )
                    plan.append((MANY, "write", many))
                for name, route, cookies in plan:
                    warm_up(srv.port, route, cookie)
                    if cfg.warmup > 0:
                        run_wrk(srv, route, cookies, cfg.warmup, cfg)
                    res = run_wrk(srv, route, cookies, cfg.duration, cfg)
                    results.setdefault(variant, {}).setdefault(name, []).append(res)
                    log(
                        f"[http] round {round_no + 1}/{cfg.rounds} {variant:14} {name:12} "
                        f"{res.rps:9.0f} req/s  server cpu {res.server_cpu:4.0%}"
                        + (f"  ERRORS {res.errors}" if res.errors else "")
                    )
    return {v: {r: [asdict(x) for x in runs] for r, runs in d.items()} for v, d in results.items()}


def best(http: dict[str, Any], variant: str, route: str) -> dict[str, Any] | None:
    """The fastest of a variant's rounds on a route (noise only ever slows a run down)."""
    runs = http.get(variant, {}).get(route)
    return max(runs, key=lambda r: r["rps"]) if runs else None


# -- Redis commands per request --------------------------------------------------------------


async def count_commands(
    port: int, redis_url: str, cookie: str, route: str, n: int
) -> dict[str, Any]:
    """``n`` sequential requests on one route; Redis's commandstats and MONITOR around them."""
    import aiohttp
    from redis.asyncio import Redis

    url = f"http://127.0.0.1:{port}/{route}"
    sentinel = f"bench-end-{os.getpid()}-{time.monotonic_ns()}"
    # Two clients: the monitor holds a connection of its own, and the admin connection is
    # opened before MONITOR starts, so neither shows up in what is counted.
    admin = Redis.from_url(redis_url, socket_timeout=10)
    watcher_client = Redis.from_url(redis_url, socket_timeout=10)
    monitored: dict[str, dict[str, int]] = {"client": {}, "lua": {}}
    line = re.compile(r'[\d.]+ \[\d+ ([^\]]+)\] "((?:[^"\\]|\\.)*)"(?: "((?:[^"\\]|\\.)*)")?')
    try:
        await admin.ping()
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
            watcher_client.monitor() as monitor,
        ):
            await admin.config_resetstat()

            async def watch() -> None:
                for _ in range(100 * n + 1000):  # bounded: a request makes a few commands
                    raw = await monitor.connection.read_response()
                    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                    m = line.match(text)
                    if m is None:
                        continue
                    source, name, arg = m.group(1), m.group(2).lower(), m.group(3)
                    if name == "echo" and arg == sentinel:
                        return
                    side = "lua" if source == "lua" else "client"
                    monitored[side][name] = monitored[side].get(name, 0) + 1

            watcher = asyncio.ensure_future(watch())
            for _ in range(n):
                async with http.get(url, headers={"Cookie": cookie}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET /{route} gave {resp.status}")
            await admin.echo(sentinel)
            await asyncio.wait_for(watcher, 30)
            stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
        await watcher_client.aclose()
    raw_calls = {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in _OWN_COMMANDS
    }
    return {
        "requests": n,
        "commandstats": raw_calls,
        "monitor_client": {k: v for k, v in monitored["client"].items() if k not in _OWN_COMMANDS},
        "monitor_lua": monitored["lua"],
    }


def redis_section(cfg: Config, workdir: Path, redis: RedisProcess) -> dict[str, Any]:
    """Commands per request for both Redis stores, on both routes."""
    out: dict[str, Any] = {}
    for variant in REDIS_VARIANTS:
        with server(variant, workdir, redis) as srv:
            cookie = login(srv.port)
            check_session(srv.port, cookie)
            for route in ROUTES:  # warm up: redis-py loads the Lua script on first use
                for _ in range(5):
                    request(srv.port, "GET", f"/{route}", cookie)
            for route in ROUTES:
                res = asyncio.run(
                    count_commands(srv.port, redis.url, cookie, route, cfg.redis_requests)
                )
                out.setdefault(variant, {})[route] = res
                log(f"[redis] {variant} {route}: {res['commandstats']}")
    return out


# -- the report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if "Model name" in ln), ""
        )
    versions = {}
    for dist in ("aiohttp", "aiohttp-session", "redis", "cryptography", "aio-sessions"):
        try:
            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "-"
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        wrk_out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (wrk_out.stdout or wrk_out.stderr).split("Copyright")[0].strip()
    redis_bin = redis_server_binary()
    redis_version = ""
    if redis_bin:
        redis_version = subprocess.run(
            [redis_bin, "--version"], capture_output=True, text=True, check=False
        ).stdout.split(" sha=")[0]
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(BENCH.parent)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "aio_sessions"], capture_output=True, text=True
        )
        if head.returncode == 0:
            commit = head.stdout.strip() + (
                " + uncommitted changes" if dirty.stdout.strip() else ""
            )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        **versions,
        "wrk": wrk_version,
        "redis-server": redis_version,
        "aio_sessions commit": commit,
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def report(cfg: Config, results: dict[str, Any]) -> str:
    """The whole report as text: the table, the ratios, Redis, WebSockets."""
    lines: list[str] = []
    add = lines.append
    env = results["machine"]
    add("aio_sessions benchmark")
    add(
        f"machine: {env['nproc']} CPUs, {env['cpu']}; Python {env['python']}, "
        f"aiohttp {env['aiohttp']}, aiohttp-session {env['aiohttp-session']}, "
        f"redis-py {env['redis']}, {env['redis-server']}, {env['wrk']}; "
        f"aio_sessions at {env['aio_sessions commit']}"
    )
    add(
        f"load average at start {env['loadavg_start']}, at end {results.get('loadavg_end', '?')}"
        f"; total {results.get('elapsed', 0):.0f}s"
    )
    http = results.get("http")
    if http:
        add("")
        add(
            f"HTTP requests/s: wrk -t{cfg.threads} -c{cfg.connections}, {cfg.duration}s per "
            f"column after 200 requests and {cfg.warmup}s of wrk warm-up, best of {cfg.rounds} "
            "round(s). read and write: every request carries the one cookie;"
        )
        add(
            f"write-many: the same write route, requests rotating over {cfg.connections} "
            "sessions. req/s counts successful responses only; errors: error responses (503...)"
            " and socket errors; cpu: the server process's CPU use; diff: (best-worst)/best."
        )
        columns = (*ROUTES, MANY)
        add(
            f"{'variant':30}"
            + "".join(f" {name:>10} {'diff':>4} {'cpu':>4}" for name in columns)
            + f" {'errors':>6}"
        )
        for variant in cfg.variants:
            row = f"{LABELS[variant]:30}"
            errors = 0
            for name in columns:
                runs = http.get(variant, {}).get(name, [])
                if not runs:
                    row += f" {'-':>10} {'':>4} {'':>4}"
                    continue
                top = max(r["rps"] for r in runs)
                low = min(r["rps"] for r in runs)
                cpu = max(runs, key=lambda r: r["rps"])["server_cpu"]
                diff = f"{(top - low) / top:.0%}" if len(runs) > 1 else "-"
                row += f" {top:10.0f} {diff:>4} {cpu:4.0%}"
                errors += sum(r["errors"] for r in runs)
            add(f"{row} {errors:6d}")
        base_read = best(http, "bare", "read")
        add("")
        add(f"{'ratio of the best runs':50} {'value':>6}  {'target':>7}  result")

        def ratio(a: str, b: str, route: str, target: float | None, label: str) -> None:
            x, y = best(http, a, route), best(http, b, route)
            if x is None or y is None:
                return
            value = x["rps"] / y["rps"]
            goal = f">= {target:.2f}" if target is not None else "-"
            result = verdict(value, target) if target is not None else "(info)"
            add(f"{label:50} {value:6.2f}  {goal:>7}  {result}")

        ratios: list[tuple[str, str, str, float | None, str]] = [
            ("aio-memory", "bare", "read", None, "aio Memory / bare aiohttp"),
            ("aio-memory", "bare", "write", None, "aio Memory / bare aiohttp"),
            ("bare-cookie", "bare", "read", None, "bare + request.cookies / bare"),
            ("bare-middleware", "bare", "read", None, "bare + no-op middleware / bare"),
            ("aio-memory", "bare-middleware", "read", 0.90, "aio Memory / bare + no-op mw"),
            ("aio-memory", "bare-middleware", "write", 0.75, "aio Memory / bare + no-op mw"),
            ("aio-sqlite", "aio-memory", "read", 0.70, "aio SQLite / aio Memory"),
            ("aio-sqlite", "aio-memory", "write", 0.35, "aio SQLite / aio Memory"),
            ("aio-sqlite", "aio-memory", MANY, None, "aio SQLite / aio Memory"),
            ("aio-file", "aio-memory", "read", None, "aio File / aio Memory"),
            ("aio-file", "aio-memory", "write", None, "aio File / aio Memory"),
            ("aio-cookie", "ahs-encrypted", "read", 1.5, "aio EncryptedCookie / ahs Encrypted"),
            ("aio-cookie", "ahs-encrypted", "write", 1.3, "aio EncryptedCookie / ahs Encrypted"),
            ("aio-redis", "ahs-redis", "read", 1.5, "aio Redis / ahs Redis"),
            ("aio-redis", "ahs-redis", "write", 1.3, "aio Redis / ahs Redis"),
            ("aio-redis", "ahs-redis", MANY, 1.6, "aio Redis / ahs Redis"),
            ("aio-memory", "ahs-simple", "read", None, "aio Memory / ahs Simple (reference)"),
            ("aio-memory", "ahs-simple", "write", None, "aio Memory / ahs Simple (reference)"),
            ("aio-cookie", "ahs-simple", "read", None, "aio EncryptedCookie / ahs Simple"),
            ("aio-cookie", "ahs-simple", "write", None, "aio EncryptedCookie / ahs Simple"),
        ]
        for a, b, route, target, label in ratios:
            ratio(a, b, route, target, f"{label}, {route}")
        if base_read is not None and base_read["server_cpu"] < 0.9:
            add("note: the bare server was below 90% CPU: the load generator or noise limited it")
    redis = results.get("redis")
    if redis:
        add("")
        n = cfg.redis_requests
        add(f"Redis commands per request ({n} sequential requests with one cookie, aiohttp client)")
        add(
            f"{'store':30} {'route':5} {'client-issued':>13} {'raw stats':>9}  "
            "commandstats calls/request  [inside Lua scripts]"
        )
        for variant in REDIS_VARIANTS:
            for route in ROUTES:
                res = redis.get(variant, {}).get(route)
                if res is None:
                    continue
                raw = res["commandstats"]
                lua = res["monitor_lua"]
                issued = sum(res["monitor_client"].values()) / n
                total = sum(raw.values()) / n
                detail = " ".join(f"{k}={v / n:.2f}" for k, v in sorted(raw.items()))
                inside = " ".join(f"{k}={v / n:.2f}" for k, v in sorted(lua.items()))
                goal_text = ""
                if variant == "aio-redis":
                    goal = 1.0 if route == "read" else 2.0
                    ok = issued == goal if route == "read" else issued <= goal
                    goal_text = f"  target {'==' if route == 'read' else '<='} {goal:g}: "
                    goal_text += "PASS" if ok else "MISS"
                add(
                    f"{LABELS[variant]:30} {route:5} {issued:13.2f} {total:9.2f}  {detail}"
                    + (f"  [{inside}]" if inside else "")
                    + goal_text
                )
        add(
            "client-issued: commands the server process sent (MONITOR, EVALSHA counts as one); "
            "raw stats: INFO commandstats, which also counts the GET/SET a Lua script runs."
        )
    report_ws(cfg, results, add)
    report_faults(results, add)
    report_burst(results, add)
    for name, error in results.get("errors", {}).items():
        add(f"\nSECTION {name} FAILED: {error}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description="Benchmark aio_sessions against bare aiohttp and aiohttp-session.",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds per variant")
    parser.add_argument("--duration", type=int, help="seconds of wrk per route (4; quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of wrk warm-up per column (1; quick 0)")
    parser.add_argument("--rounds", type=int, help="runs of every variant, best kept (3; quick 1)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--variants", help=f"comma-separated HTTP variants (default all): {','.join(HTTP_VARIANTS)}"
    )
    parser.add_argument(
        "--sections", help=f"comma-separated sections (default all): {','.join(SECTIONS)}"
    )
    parser.add_argument("--redis-requests", type=int, help="requests per Redis count (1000)")
    parser.add_argument("--ws-duration", type=float, help="seconds of handshakes (5; quick 2)")
    parser.add_argument("--ws-workers", type=int, default=32, help="handshake workers (32)")
    parser.add_argument(
        "--sockets", type=int, default=0, help="sockets held (0: the open-file limit allows)"
    )
    parser.add_argument(
        "--push-sockets", type=int, default=10_000, help="sockets of the push (10000)"
    )
    parser.add_argument("--ws-sessions", type=int, default=10, help="logins the sockets use (10)")
    parser.add_argument(
        "--fault-seconds", type=int, help="length of each fault run's wrk (20; quick 10)"
    )
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = parser.parse_args(argv)
    quick = args.quick
    cfg = Config(
        duration=max(1, args.duration or (2 if quick else 4)),
        warmup=max(0, args.warmup if args.warmup is not None else (0 if quick else 1)),
        rounds=args.rounds or (1 if quick else 3),
        connections=args.connections,
        threads=args.threads,
        redis_requests=args.redis_requests or (300 if quick else 1000),
        ws_duration=args.ws_duration or (2.0 if quick else 5.0),
        ws_workers=args.ws_workers,
        sockets=args.sockets,
        push_sockets=args.push_sockets,
        ws_sessions=max(1, args.ws_sessions),
        fault_seconds=args.fault_seconds or (10 if quick else 20),
    )
    if args.variants:
        cfg.variants = _pick(parser, args.variants, HTTP_VARIANTS, "variants")
    if args.sections:
        cfg.sections = _pick(parser, args.sections, SECTIONS, "sections")
    return cfg, args


def _pick(
    parser: argparse.ArgumentParser, text: str, allowed: tuple[str, ...], what: str
) -> tuple[str, ...]:
    """The comma-separated names of ``text``; an unknown one is a usage error."""
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = set(chosen) - set(allowed)
    if unknown:
        parser.error(f"unknown {what}: {', '.join(sorted(unknown))}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the report; 1 when a section failed."""
    cfg, args = parse_args(argv)
    if {"http", "faults", "burst"} & set(cfg.sections) and shutil.which("wrk") is None:
        log("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")
        return 2
    needs_redis = (
        "redis" in cfg.sections
        or "ws-push" in cfg.sections
        or ("http" in cfg.sections and any(v in REDIS_VARIANTS for v in cfg.variants))
    )
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "config": asdict(cfg), "errors": {}}
    with tempfile.TemporaryDirectory(prefix="aio-sessions-bench-") as tmp:
        workdir = Path(tmp)
        redis: RedisProcess | None = None
        if needs_redis:
            try:
                redis = RedisProcess(workdir)
            except RuntimeError as exc:
                log(f"[redis] {exc}: skipping the Redis variants and counts")
                results["errors"]["redis-server"] = str(exc)
                cfg.variants = tuple(v for v in cfg.variants if v not in REDIS_VARIANTS)
                cfg.sections = tuple(s for s in cfg.sections if s not in ("redis", "ws-push"))
        try:
            steps: list[tuple[str, str, Any]] = [
                ("http", "http", lambda: http_section(cfg, workdir, redis)),
                ("redis", "redis", lambda: redis_section(cfg, workdir, redis)),  # type: ignore[arg-type]
                ("ws-handshake", "ws_handshake", lambda: ws_handshake_section(cfg, workdir)),
                ("ws-hold", "ws_hold", lambda: ws_hold_section(cfg, workdir)),
                ("ws-push", "ws_push", lambda: ws_push_section(cfg, workdir, redis)),
                ("faults", "faults", lambda: faults_section(workdir, cfg.fault_seconds)),
                ("burst", "burst", lambda: burst_section(workdir)),
            ]
            for section, key, run in steps:
                if section not in cfg.sections:
                    continue
                t0 = time.monotonic()
                try:
                    results[key] = run()
                    log(f"[{section}] done in {time.monotonic() - t0:.0f}s")
                except Exception as exc:
                    log(f"[{section}] FAILED: {exc}")
                    results["errors"][section] = f"{type(exc).__name__}: {exc}"
        finally:
            if redis is not None:
                redis.stop()
    results["elapsed"] = time.monotonic() - started
    results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(report(cfg, results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
