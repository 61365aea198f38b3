"""Redis killed or frozen under load: ``python bench/faults.py`` (also ``run.py``'s ``faults``).

A wrk run on the aio-redis server's write route (``GET /append?v=VALUE``: each request stores
a unique value in one of 50 sessions, round robin) while Redis is SIGKILLed and restarted, or
frozen with SIGSTOP and thawed. wrk counts the answers by status in quarter seconds and keeps
the values answered 200 (bench/faults.lua); at the end every one of them must be in Redis.

Redis runs with ``appendfsync always``: a crashed Redis keeps what it acknowledged only when
it fsyncs before answering, and without that no session library could keep the promise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import BENCH, RedisProcess, log, login, run_alone, server, verdict

SCRIPT = BENCH / "faults.lua"
FAULTS = ("kill", "stop")
#: RedisStore's default command_timeout: the longest a request may wait on a dead Redis.
COMMAND_TIMEOUT = 2.0
#: How soon after Redis is back the success rate must be at its level before the fault.
RECOVERY_TARGET = 2.0


@dataclass
class FaultRun:
    """One fault under load; times are seconds since wrk started."""

    fault: str
    seconds: int
    broke: float
    healed: float
    #: status (or "503-no-retry-after") -> answers, per quarter second since wrk started
    quarters: dict[int, dict[str, int]] = field(default_factory=dict)
    acknowledged: int = 0
    lost: int = 0
    latency_max_ms: float = 0.0
    timeouts: int = 0
    baseline: float = 0.0
    recovered_after: float | None = None
    #: why the server answered 503 (its log's "session store unavailable" reasons) -> count
    reasons: dict[str, int] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for counts in self.quarters.values():
            for status, n in counts.items():
                out[status] = out.get(status, 0) + n
        return out

    def success(self, quarter: int) -> float:
        """The share of one quarter second's answers that are 200 (0 without answers)."""
        counts = self.quarters.get(quarter, {})
        total = sum(counts.values())
        return counts.get("200", 0) / total if total else 0.0


def run_fault(
    fault: str, workdir: Path, *, seconds: int = 20, at: float = 5.0, down: float = 3.0,
    sessions: int = 50, connections: int = 50,
) -> FaultRun:  # fmt: skip
    """Break Redis ``at`` seconds into a ``seconds`` wrk run and heal it ``down`` later."""
    redis_dir = workdir / f"redis-{fault}"
    redis_dir.mkdir()
    redis = RedisProcess(redis_dir, durable=True)
    try:
        with server("aio-redis", workdir, redis) as srv:
            cookies = workdir / f"fault-cookies-{fault}.txt"
            cookies.write_text("\n".join(login(srv.port) for _ in range(sessions)) + "\n")
            out = workdir / f"fault-{fault}.txt"
            env = {**os.environ, "FAULTS_COOKIES": str(cookies), "FAULTS_OUT": str(out)}
            cmd = [
                "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                "-s", str(SCRIPT), f"{srv.origin}/append",
            ]  # fmt: skip
            start = time.time()
            wrk = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(max(0.0, start + at - time.time()))
            broke = time.time()
            if fault == "kill":
                redis.proc.send_signal(signal.SIGKILL)
                redis.proc.wait()
            else:
                redis.proc.send_signal(signal.SIGSTOP)
            time.sleep(max(0.0, broke + down - time.time()))
            healed = time.time()
            if fault == "kill":
                redis.start()
            else:
                redis.proc.send_signal(signal.SIGCONT)
            stdout, stderr = wrk.communicate(timeout=seconds + 60)
            if wrk.returncode != 0 or not out.exists():
                tail = (stdout[-500:] + stderr[-500:]).decode(errors="replace")
                raise RuntimeError(f"wrk failed ({wrk.returncode}): {tail}")
            run = FaultRun(fault, seconds, broke - start, healed - start)
            acked = _parse(out, run, start)
            run.reasons = _reasons(srv.log_path.read_text(errors="replace"))
            stored = stored_values(redis.url)
    finally:
        redis.stop()
    run.acknowledged = len(acked)
    run.lost = len(acked - stored)
    _recovery(run)
    return run


def _parse(path: Path, run: FaultRun, start: float) -> set[str]:
    """Fill ``run`` from what faults.lua wrote; return the values answered 200."""
    acked: set[str] = set()
    first = int(start * 4)
    for line in path.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "A":
            acked.add(rest)
        elif kind == "B":
            quarter, status, count = rest.split()
            bucket = run.quarters.setdefault(int(quarter) - first, {})
            bucket[status] = bucket.get(status, 0) + int(count)
        elif kind == "L":
            run.latency_max_ms = float(rest) / 1000
        elif kind == "T":
            run.timeouts = int(rest)
    return acked


def _reasons(log_text: str) -> dict[str, int]:
    """The server's 503 reasons, ports and addresses left out so that equal ones count
    together."""
    found: dict[str, int] = {}
    for line in log_text.splitlines():
        _, marker, reason = line.partition("session store unavailable: ")
        if marker:
            reason = re.sub(r"127\.0\.0\.1[:, ]*\d*|\('127\.0\.0\.1', \d+\)", "ADDR", reason)
            found[reason[:160]] = found.get(reason[:160], 0) + 1
    return found


def stored_values(url: str) -> set[str]:
    """Every value the sessions in Redis hold (keys ``w<value>``)."""
    from redis import Redis

    client = Redis.from_url(url)
    values: set[str] = set()
    try:
        for key in client.scan_iter("AIOHTTP_SESSION_*", _type="string", count=1000):
            doc = json.loads(client.get(key))  # type: ignore[arg-type]
            values.update(k[1:] for k in doc["session"] if k.startswith("w"))
    finally:
        client.close()
    return values


def _recovery(run: FaultRun) -> None:
    """The success rate (answers that are 200) before the fault, and how long after Redis
    was back the first quarter second was at least as successful, less 1% (measured to the
    end of that quarter). Throughput is no measure here: every write makes a session
    bigger, so the requests per second fall through the run, fault or not."""
    before = range(4, int(run.broke * 4))
    run.baseline = min((run.success(q) for q in before), default=1.0)
    q = int(run.healed * 4)
    while q < run.seconds * 4:
        if run.success(q) >= run.baseline - 0.01:
            run.recovered_after = (q + 1) / 4 - run.healed
            return
        q += 1


def checks(run: FaultRun) -> list[tuple[str, str, str]]:
    """(what, figure, PASS/MISS) for one run."""
    totals = run.totals()
    others = {s: n for s, n in totals.items() if s not in ("200", "503")}
    down = range(int((run.broke + COMMAND_TIMEOUT) * 4) + 1, int(run.healed * 4))
    down_ok = sum(run.quarters.get(q, {}).get("200", 0) for q in down)
    recovered = run.recovered_after
    return [
        ("only 200 and 503 (with Retry-After)", json.dumps(others) if others else "none other",
         "PASS" if not others else "MISS"),
        ("while down: 200s after the first timeout", str(down_ok),
         "PASS" if down_ok == 0 else "MISS"),
        (f"slowest answer <= {COMMAND_TIMEOUT:g}s + 0.5s, no wrk timeouts",
         f"{run.latency_max_ms:.0f} ms, {run.timeouts} timeouts",
         "PASS" if run.latency_max_ms <= (COMMAND_TIMEOUT + 0.5) * 1000 and not run.timeouts
         else "MISS"),
        (f"success rate back to its level within {RECOVERY_TARGET:g}s of Redis",
         "never" if recovered is None else f"{recovered:.2f}s",
         verdict(recovered, RECOVERY_TARGET, "<") if recovered is not None else "MISS"),
        ("acknowledged writes missing from Redis", f"{run.lost} of {run.acknowledged}",
         "PASS" if run.lost == 0 and run.acknowledged else "MISS"),
    ]  # fmt: skip


def faults_section(workdir: Path, seconds: int = 20) -> dict[str, Any]:
    """Both faults, one after the other."""
    out = {}
    for fault in FAULTS:
        run = run_fault(fault, workdir, seconds=seconds, at=min(5.0, seconds / 4))
        log(f"[faults] {fault}: {run.totals()} lost {run.lost} of {run.acknowledged}")
        out[fault] = asdict(run)
    return out


def report_faults(results: dict[str, Any], add: Any) -> None:
    """The per-second table and the checks of each fault run."""
    section = results.get("faults")
    if not section:
        return
    for fault, data in section.items():
        run = FaultRun(**data)
        run.quarters = {int(q): counts for q, counts in run.quarters.items()}
        event = "SIGKILL, restarted" if fault == "kill" else "SIGSTOP, SIGCONT"
        add("")
        add(
            f"Redis {event} under load: wrk -c50 on GET /append over 50 sessions, "
            f"{run.seconds}s; broken at {run.broke:.2f}s, back at {run.healed:.2f}s; "
            f"appendfsync always; command_timeout {COMMAND_TIMEOUT:g}s"
        )
        add(f"{'second':>6} {'200':>6} {'503':>6} {'other':>6}")
        for second in range(run.seconds + 1):
            counts: dict[str, int] = {}
            for q in range(second * 4, second * 4 + 4):
                for status, n in run.quarters.get(q, {}).items():
                    counts[status] = counts.get(status, 0) + n
            ok, unavailable = counts.pop("200", 0), counts.pop("503", 0)
            mark = ""
            if int(run.broke) == second:
                mark = "  <- Redis " + ("killed" if fault == "kill" else "frozen")
            if int(run.healed) == second:
                mark += "  <- Redis " + ("restarted" if fault == "kill" else "thawed")
            if ok or unavailable or counts or mark:
                add(f"{second:6d} {ok:6d} {unavailable:6d} {sum(counts.values()):6d}{mark}")
        late = [s for q in range(int(run.healed * 4) + 8, run.seconds * 4) if (s := run.success(q))]
        add(
            f"success rate: before the fault {run.baseline:.1%} (lowest quarter second), "
            f"from 2 s after Redis was back {min(late, default=0):.2%} (lowest)"
        )
        for reason, count in sorted(run.reasons.items(), key=lambda item: -item[1]):
            add(f"  503 because {reason} ({count})")
        for what, figure, result in checks(run):
            add(f"  {what:58} {figure:>18}  {result}")


def main(argv: list[str] | None = None) -> int:
    section = run_alone(__doc__, "faults", faults_section, report_faults, 20, argv)
    failed = any(r == "MISS" for data in section.values() for _, _, r in checks(FaultRun(**data)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
