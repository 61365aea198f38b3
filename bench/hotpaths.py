"""Profile servers under load with py-spy: ``python bench/hotpaths.py``.

For each variant and route: start bench/server.py, load it with wrk (one cookie, as in
bench/run.py), attach ``py-spy record`` to the server for a few seconds, and print where the
server's CPU time goes (self time, and time inside functions, by function). The collapsed
stacks are kept in ``--out`` (flamegraph.pl reads them; for a speedscope file run
``py-spy record --format speedscope`` on a server yourself).

py-spy is a pip package (``pip install py-spy``) and needs ptrace rights (root, or
CAP_SYS_PTRACE, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from common import (
    REDIS_VARIANTS,
    Config,
    RedisProcess,
    ServerProcess,
    check_session,
    login,
    server,
    warm_up,
)
from run import run_wrk
from wsbench import wsclient

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    """The py-spy executable next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def short(frame: str) -> str:
    """``func (path/to/file.py:LINE)`` -> ``func (file.py)``, keeping the package folder."""
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group("file")
    for package in ("aio_sessions/", "aiohttp_session/"):
        if package in path:
            return f"{m.group('func')} ({package}{path.split(package, 1)[1]})"
    parts = Path(path).parts
    where = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{m.group('func')} ({where})"


def summarize(raw: Path, top: int) -> str:
    """Self and inclusive shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inside: collections.Counter[str] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    total = 0
    for text in raw.read_text().splitlines():
        if not text.strip():
            continue
        stack, _, count = text.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[short(frames[-1])] += n
        for frame in {short(f) for f in frames}:
            inside[frame] += n
        for frame in set(frames):
            if "aio_sessions/" in frame:
                lines[frame.split("aio_sessions/", 1)[1].rstrip(")")] += n
    if total == 0:
        return "  no samples"
    out = [f"  {total} samples"]
    out.append("  self time (the function's own code, not what it calls):")
    out += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("  time inside (the function and what it calls), session and store code:")
    ours = [
        (f, n)
        for f, n in inside.most_common()
        if any(k in f for k in ("aio_sessions/", "aiohttp_session/", "server.py"))
    ]
    out += [f"    {100 * n / total:5.1f}%  {f}" for f, n in ours[:top]]
    out.append("  time inside, everything else:")
    others = [
        (f, n)
        for f, n in inside.most_common()
        if not any(k in f for k in ("aio_sessions/", "aiohttp_session/", "server.py"))
        and 100 * n / total < 95
    ]
    out += [f"    {100 * n / total:5.1f}%  {f}" for f, n in others[:top]]
    if lines:
        out.append("  hottest aio_sessions lines (file:line, time inside):")
        out += [f"    {100 * n / total:5.1f}%  {f}" for f, n in lines.most_common(top)]
    return "\n".join(out)


def wrk_into(
    results: list[str],
    srv: ServerProcess,
    route: str,
    cookie: str | Path,
    seconds: int,
    cfg: Config,
) -> None:
    """Load the server (in a thread, while py-spy records) and keep the rate it reached.

    Route ``ws`` runs WebSocket handshakes with bench/wsclient.py instead of wrk.
    """
    if route == "ws":
        args = ["handshakes", "--port", str(srv.port), "--duration", str(seconds)]
        if isinstance(cookie, str):
            args += ["--cookie", cookie]
        res = wsclient(*args, timeout=seconds + 60)
        results.append(f"{res['per_second']:.0f} handshakes/s")
    else:
        results.append(f"{run_wrk(srv, route, cookie, seconds, cfg).rps:.0f} req/s")


def main(argv: list[str] | None = None) -> int:
    """Profile each variant and route; print the summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="aio-memory,aio-redis")
    parser.add_argument("--routes", default="read,write", help="read, write, ws (handshakes)")
    parser.add_argument("--seconds", type=int, default=8, help="seconds sampled per route (8)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second (250)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="sessions the requests rotate over (1: one cookie, as run.py's read/write)",
    )
    parser.add_argument("--top", type=int, default=18, help="rows per list (18)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "aio-bench-prof")
    args = parser.parse_args(argv)
    spy = py_spy()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = Config(connections=args.connections)
    variants = [v for v in args.variants.split(",") if v]
    with tempfile.TemporaryDirectory(prefix="aio-sessions-prof-") as tmp:
        workdir = Path(tmp)
        redis = RedisProcess(workdir) if any(v in REDIS_VARIANTS for v in variants) else None
        try:
            for variant in variants:
                with server(variant, workdir, redis) as srv:
                    cookie = login(srv.port)
                    check_session(srv.port, cookie)
                    load_with: str | Path = cookie
                    if args.sessions > 1:
                        load_with = workdir / f"cookies-{srv.port}.txt"
                        cookies = [login(srv.port) for _ in range(args.sessions)]
                        load_with.write_text("\n".join(cookies) + "\n")
                    for route in args.routes.split(","):
                        if route != "ws":
                            warm_up(srv.port, route, cookie)
                        tag = f"-{args.sessions}sessions" if args.sessions > 1 else ""
                        stem = args.out / f"{variant}-{route}{tag}"
                        results: list[str] = []
                        load = threading.Thread(
                            target=wrk_into,
                            args=(results, srv, route, load_with, args.seconds + 2, cfg),
                        )
                        load.start()
                        subprocess.run(
                            [spy, "record", "--pid", str(srv.pid), "--duration",
                             str(args.seconds), "--rate", str(args.rate), "--format", "raw",
                             "-o", f"{stem}.txt"],
                            capture_output=True, timeout=args.seconds + 60, check=True,
                        )  # fmt: skip
                        load.join(args.seconds + 60)
                        rps = results[0] if results else "the load generator failed"
                        print(f"\n== {variant} /{route}: {rps} under py-spy; stacks in {stem}.txt")
                        print(summarize(Path(f"{stem}.txt"), args.top), flush=True)
        finally:
            if redis is not None:
                redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
