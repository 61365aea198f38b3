"""The benchmark's WebSocket sections: handshakes per second, sockets held up to the open-file
limit (memory per socket, ``logout_user`` closing them all), and ``send_to_user`` reaching
one user's sockets spread over two server processes that share one Redis."""

from __future__ import annotations

import json
import resource
import select
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    WSCLIENT,
    Config,
    RedisProcess,
    ServerProcess,
    cpu_seconds,
    log,
    login,
    request,
    rss_kib,
    server,
    stop_process,
    verdict,
)

#: The first count of held sockets that is measured; the second is the most the limit allows.
FIRST_STEP = 10_000
#: Sockets per client process; each process connects from a loopback address of its own.
PER_CLIENT = 5_000
#: Open files the server keeps for everything but the held sockets (listener, epoll, logs...).
FD_MARGIN = 1_000
#: Targets of issue 13.
OVERHEAD_KIB = 3.0
CLOSE_ALL_MS = 1000.0
PUSH_LAST_MS = 1000.0
HANDSHAKE_RATIO = 0.85


def max_sockets() -> int:
    """The most sockets a server process can hold under this machine's open-file hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    return max(hard - FD_MARGIN, 100)


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


# -- handshakes per second -------------------------------------------------------------------


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


# -- sockets held by several client processes ------------------------------------------------


def read_event(proc: subprocess.Popen[str], event: str, timeout: float) -> dict[str, Any]:
    """Wait for a hold client's next JSON line and check its event."""
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


class Holders:
    """``wsclient.py hold`` processes, each holding at most ``PER_CLIENT`` sockets from a
    loopback address of its own (127.0.0.2, .3, ...), so neither a client's open-file limit
    nor one address's ephemeral ports bound the total."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.opened = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()

    def open(self, port: int, count: int, cookies_file: Path) -> float:
        """Open ``count`` more sockets to 127.0.0.1:PORT; returns the seconds it took."""
        started = time.monotonic()
        new = []
        while count > 0:
            share = min(count, PER_CLIENT)
            count -= share
            source = f"127.0.0.{len(self.procs) + 2}"
            proc = subprocess.Popen(
                [sys.executable, str(WSCLIENT), "hold", "--port", str(port),
                 "--sockets", str(share), "--cookies-file", str(cookies_file),
                 "--source", source],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            self.procs.append(proc)
            new.append(proc)
        for proc in new:
            ready = read_event(proc, "ready", 240)
            self.opened += ready["opened"]
            self.failed += ready["failed"]
            self.errors.update(ready["errors"])
        return time.monotonic() - started

    def _send(self, line: str) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    def wait(self, what: str, since: float, timeout: float) -> dict[str, Any]:
        """Every socket's close frame (``what="close"``) or N-th message (``"text N"``),
        as milliseconds after ``since`` (a ``time.monotonic()`` reading of the runner)."""
        self._send(f"wait {what} {timeout:g}")
        times: list[float] = []
        missing = 0
        codes: Counter[str] = Counter()
        for proc in self.procs:
            doc = read_event(proc, "waited", timeout + 30)
            times += [(at - since) * 1000 for at in doc["times"]]
            missing += doc["missing"]
            codes.update(doc["codes"])
        times.sort()
        return {
            "received": len(times),
            "missing": missing,
            "codes": dict(codes),
            "first_ms": times[0] if times else None,
            "median_ms": statistics.median(times) if times else None,
            "last_ms": times[-1] if times and not missing else None,
        }

    def close(self) -> None:
        """Close every socket and stop the clients, whatever state they are in."""
        try:
            self._send("close")
            for proc in self.procs:
                read_event(proc, "closed", 60)
                proc.wait(30)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"[ws] closing the clients: {exc}")
        finally:
            for proc in self.procs:
                stop_process(proc)


def cookies_for(srv: ServerProcess, workdir: Path, sessions: int) -> Path:
    """Log in ``sessions`` times (user ``bench``); the Cookie values, as a file for wsclient."""
    cookies = [login(srv.port) for _ in range(sessions)] if srv.variant != "bare" else []
    path = workdir / f"cookies-{srv.port}.json"
    path.write_text(json.dumps(cookies))
    return path


def open_sockets(srv: ServerProcess) -> int:
    """The sockets the server counts as open (after a ``gc.collect()`` there)."""
    _, _, body = request(srv.port, "GET", "/admin/stats", timeout=60)
    sockets: int = json.loads(body).get("sockets", 0)
    return sockets


def ws_hold_section(cfg: Config, workdir: Path) -> dict[str, Any]:
    """Hold sockets on bare aiohttp and on aio_sessions (all of one user, MemoryStore) up to
    the limit, reading the server's RSS at 10,000 and at the maximum; then revoke every
    socket of that user and time it."""
    total = cfg.sockets or max_sockets()
    steps = [n for n in (FIRST_STEP,) if n < total] + [total]
    limit = "--sockets" if cfg.sockets else f"the open-file hard limit less {FD_MARGIN}"
    out: dict[str, Any] = {"steps": steps, "limit": limit}
    for variant in ("bare", "aio-memory"):
        with server(variant, workdir, None) as srv:
            cookies_file = cookies_for(srv, workdir, cfg.ws_sessions)
            cookie = json.loads(cookies_file.read_text())[:1]
            # Warm the server's WebSocket code paths so only the sockets count below.
            warm = ["handshakes", "--port", str(srv.port), "--duration", "0.5", "--workers", "8"]
            wsclient(*warm, *(["--cookie", cookie[0]] if cookie else []), timeout=60)
            request(srv.port, "GET", "/admin/stats")  # runs gc.collect() in the server
            before = rss_kib(srv.pid)
            res: dict[str, Any] = {"rss_before_kib": before, "points": []}
            holders = Holders()
            try:
                for step in steps:
                    seconds = holders.open(srv.port, step - holders.opened, cookies_file)
                    server_sockets = open_sockets(srv)
                    after = rss_kib(srv.pid)
                    res["points"].append(
                        {
                            "target": step,
                            "opened": holders.opened,
                            "failed": holders.failed,
                            "errors": dict(holders.errors.most_common(3)),
                            "open_seconds": seconds,
                            "server_sockets": server_sockets,
                            "rss_kib": after,
                            "kib_per_socket": (after - before) / max(holders.opened, 1),
                        }
                    )
                    log(f"[ws-hold] {variant}: {res['points'][-1]}")
                res["clients"] = len(holders.procs)
                if variant != "bare":
                    since = time.monotonic()
                    status, _, _ = request(srv.port, "POST", "/admin/logout?user=bench", timeout=60)
                    response_ms = (time.monotonic() - since) * 1000
                    res["revoke"] = {
                        "status": status,
                        "response_ms": response_ms,
                        **holders.wait("close", since, 60),
                    }
                    log(f"[ws-hold] revoke: {res['revoke']}")
            finally:
                holders.close()
            out[variant] = res
    return out


# -- push across two server processes --------------------------------------------------------


def ws_push_section(cfg: Config, workdir: Path, redis: RedisProcess | None) -> dict[str, Any]:
    """``send_to_user('bench')`` from one of two aio-redis server processes on one Redis, each
    holding half of ``cfg.push_sockets`` sockets of that user: when does the last arrive?"""
    if redis is None:
        raise RuntimeError("the push section needs redis-server")
    redis.flush()
    servers = [ServerProcess("aio-redis", workdir, redis) for _ in range(2)]
    holders = Holders()
    out: dict[str, Any] = {"sockets": cfg.push_sockets, "rounds": []}
    try:
        cookies_file = cookies_for(servers[0], workdir, cfg.ws_sessions)
        half = cfg.push_sockets // 2
        for srv, count in zip(servers, (half, cfg.push_sockets - half), strict=True):
            holders.open(srv.port, count, cookies_file)
        out["opened"], out["failed"] = holders.opened, holders.failed
        out["per_server"] = [open_sockets(srv) for srv in servers]
        for n in range(1, max(cfg.rounds, 3) + 1):
            since = time.monotonic()
            status, _, body = request(servers[0].port, "POST", "/admin/push?user=bench")
            response_ms = (time.monotonic() - since) * 1000
            result = {
                "status": status,
                "sent_here": json.loads(body).get("sent") if status == 200 else body[:200],
                "response_ms": response_ms,
                **holders.wait(f"text {n}", since, 30),
            }
            out["rounds"].append(result)
            log(f"[ws-push] round {n}: {result}")
            time.sleep(0.5)
    finally:
        holders.close()
        for srv in servers:
            srv.stop()
    return out


# -- the report ------------------------------------------------------------------------------


def report_ws(cfg: Config, results: dict[str, Any], add: Callable[[str], None]) -> None:
    """The WebSocket part of the report."""
    hs = results.get("ws_handshake")
    if hs and "bare" in hs and "aio-memory" in hs:
        _report_handshakes(cfg, hs, add)
    hold = results.get("ws_hold")
    if hold and "bare" in hold and "aio-memory" in hold:
        _report_hold(cfg, hold, add)
    push = results.get("ws_push")
    if push and push.get("rounds"):
        _report_push(push, add)


def _report_handshakes(cfg: Config, hs: dict[str, Any], add: Callable[[str], None]) -> None:
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
    add(
        f"  {label:38} {value:7.2f}   target >= {HANDSHAKE_RATIO:.2f}  "
        f"{verdict(value, HANDSHAKE_RATIO)}"
    )
    label = "same, per server CPU-second"
    add(f"  {label:38} {per_cpu:7.2f}   (noise-robust cross-check)")


def _report_hold(cfg: Config, hold: dict[str, Any], add: Callable[[str], None]) -> None:
    bare, ours = hold["bare"], hold["aio-memory"]
    add("")
    add(
        f"Concurrent WebSockets in one server process, up to {hold['steps'][-1]} "
        f"({hold['limit']}); the clients: {ours.get('clients', '?')} processes of at "
        f"most {PER_CLIENT} sockets, each from its own loopback address; aio_sessions: "
        f"{cfg.ws_sessions} sessions of user 'bench', MemoryStore. RSS after gc.collect()."
    )
    head = f"{'sockets':>7} {'failed':>6} {'opened in':>9} {'RSS MiB':>8} {'KiB/socket':>10}"
    add(f"  {'':14} {head}")
    for label, r in (("bare aiohttp", bare), ("aio_sessions", ours)):
        add(f"  {label:14} {'0':>7} {'':>6} {'':>9} {r['rss_before_kib'] / 1024:8.1f}")
        for p in r["points"]:
            add(
                f"  {'':14} {p['opened']:7d} {p['failed']:6d} {p['open_seconds']:8.1f}s "
                f"{p['rss_kib'] / 1024:8.1f} {p['kib_per_socket']:10.2f}"
            )
    for b, o in zip(bare["points"], ours["points"], strict=False):
        overhead = o["kib_per_socket"] - b["kib_per_socket"]
        add(
            f"  session overhead per socket at {o['opened']:6d}: {overhead:5.2f} KiB   "
            f"target <= {OVERHEAD_KIB:g} KiB  {verdict(overhead, OVERHEAD_KIB, '<=')}"
        )
    rv = ours.get("revoke")
    if rv:
        last = rv["last_ms"]
        add(
            f"  logout_user('bench') closing all {ours['points'][-1]['opened']} sockets: admin "
            f"response {rv['response_ms']:.0f} ms, first close frame {rv['first_ms']:.0f} ms, "
            f"median {rv['median_ms']:.0f} ms, last "
            + (f"{last:.0f} ms" if last is not None else f"NOT ALL ({rv['missing']} missing)")
            + f"; close codes {rv['codes']}   target < {CLOSE_ALL_MS:.0f} ms  "
            + (verdict(last, CLOSE_ALL_MS, "<") if last is not None else "MISS")
        )


def _report_push(push: dict[str, Any], add: Callable[[str], None]) -> None:
    add("")
    add(
        f"send_to_user('bench') to {push['opened']} sockets of one user over two aio-redis server "
        f"processes on one Redis (sockets per server: {push['per_server']}), posted to the "
        "first; times from just before the POST until each socket has the message"
    )
    worst: float | None = 0.0
    for n, r in enumerate(push["rounds"], 1):
        last = r["last_ms"]
        add(
            f"  round {n}: sent by the posting process {r['sent_here']}, response "
            f"{r['response_ms']:.0f} ms; first {r['first_ms']:.0f} ms, median "
            f"{r['median_ms']:.0f} ms, last "
            + (f"{last:.0f} ms" if last is not None else f"NOT ALL ({r['missing']} missing)")
        )
        worst = None if worst is None or last is None else max(worst, last)
    add(
        "  last delivery, worst round: "
        + (f"{worst:.0f} ms" if worst is not None else "not all delivered")
        + f"   target < {PUSH_LAST_MS:.0f} ms  "
        + (verdict(worst, PUSH_LAST_MS, "<") if worst is not None else "MISS")
    )
