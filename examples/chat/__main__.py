"""Run the chat example: ``python -m examples.chat [--port 8080] [--redis URL]``."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from aio_sessions import EncryptedCookieStore, MemoryStore, SQLiteStore, Store

from .app import clean_username, make_app, username_problem
from .broker import Broker, BrokerError, MemoryBroker, RedisBroker

STORES = ("memory", "sqlite", "redis", "cookie")


def port_number(text: str) -> int:
    """``--port``: a TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, not {text!r}")
    return port


def admin_name(text: str) -> str:
    """``--admin``: a user name, as the login form would keep it."""
    name = clean_username(text)
    problem = username_problem(name)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a user name: {problem}")
    return name


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m examples.chat",
        description="A chat on aiohttp and aio_sessions.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=port_number, default=8080, help="port to listen on")
    parser.add_argument("--store", choices=STORES, help="where sessions live (default: memory)")
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="Redis URL, e.g. redis://127.0.0.1:6379/0: sessions, messages and presence "
        "shared by every process started with it (implies --store redis)",
    )
    parser.add_argument(
        "--admin",
        metavar="NAME",
        type=admin_name,
        action="append",
        default=[],
        dest="admins",
        help="whoever logs in as NAME may remove users from the room (repeat for several)",
    )
    parser.add_argument(
        "--sqlite-path",
        default="chat-sessions.sqlite3",
        help="database file of --store sqlite (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.store is None:
        args.store = "redis" if args.redis else "memory"
    if args.redis and args.store != "redis":
        parser.error(f"--redis keeps sessions in Redis; it cannot go with --store {args.store}")
    if args.store == "redis" and not args.redis:
        parser.error("--store redis needs --redis URL")
    return args


def cookie_key() -> str | bytes:
    """``CHAT_SECRET_KEY`` (a Fernet key), else a random key and a warning."""
    key = os.environ.get("CHAT_SECRET_KEY")
    if key:
        return key
    from cryptography.fernet import Fernet

    print(
        "warning: CHAT_SECRET_KEY is not set; using a random key, so every session ends "
        "when this process stops. Make a key with: python -c "
        '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
        file=sys.stderr,
        flush=True,
    )
    return Fernet.generate_key()


def make_store(args: argparse.Namespace) -> Store:
    if args.store == "redis":
        from aio_sessions import RedisStore  # needs the redis package: imported only here

        return RedisStore.from_url(args.redis)
    if args.store == "sqlite":
        return SQLiteStore(args.sqlite_path)
    if args.store == "cookie":
        return EncryptedCookieStore(cookie_key())
    return MemoryStore(max_sessions=100_000)  # anonymous visitors hold a CSRF token each


def make_broker(args: argparse.Namespace) -> Broker:
    return RedisBroker(args.redis) if args.redis else MemoryBroker()


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


#: Why a server cannot listen: the port is taken, the address is not this machine's, the
#: port needs privileges.
BIND_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def cannot_listen(host: str, port: int, exc: OSError) -> str | None:
    """One line saying why the chat cannot listen and what to do; None for other errors."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"error: port {port} on {host} is already in use (another chat still running?). "
            f"Pick another with --port, e.g. python -m examples.chat --port {port % 65535 + 1}"
        )
    if isinstance(exc, socket.gaierror):  # a --host name that does not resolve
        reason = exc.strerror
    elif exc.errno in BIND_ERRORS:
        reason = os.strerror(exc.errno)
    else:
        return None
    return f"error: cannot listen on {host} port {port}: {reason}. Try another --host or --port"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app = make_app(make_store(args), make_broker(args), admins=args.admins)
    except ImportError as exc:  # --redis without the redis package
        sys.exit(f"error: {exc}")
    url = url_of(args.host, args.port)

    def announce(*_: object) -> None:  # called once the port is open
        print(f"Chat ({args.store} store) running on {url}  (Ctrl+C to stop)", flush=True)
        if args.admins:
            print(f"Admins: {', '.join(args.admins)}", flush=True)

    try:
        web.run_app(app, host=args.host, port=args.port, print=announce, shutdown_timeout=5)
    except BrokerError as exc:  # Redis unreachable at startup
        sys.exit(f"error: {exc}")
    except OSError as exc:  # e.g. the port is taken: one line, not a traceback
        problem = cannot_listen(args.host, args.port, exc)
        if problem is None:
            raise
        sys.exit(problem)


if __name__ == "__main__":
    main()
