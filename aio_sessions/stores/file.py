"""File store: one JSON file per session in a directory; durable, no server to run.

File names come from the session id alone (ids are checked to be 32-64 characters of
``[A-Za-z0-9_-]`` before any path is built). Writes go to a temporary file that replaces the
old one, so a reader never sees half a session; merges hold an exclusive ``flock`` on the
directory's lock file, so processes sharing the directory keep each other's writes.
POSIX only (it needs ``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from .._checks import check_path, refuse_options
from .._ids import valid_id
from ._blocking import BlockingStore
from ._codec import Decoder, Encoder, make_codec
from ._json import dump_record, parse
from ._record import is_epoch, record_from_doc
from .base import SessionRecord

log = logging.getLogger("aio_sessions")


class FileStore(BlockingStore):
    """Sessions as ``<directory>/<id>.json``; expired files are swept every ``sweep_interval``
    seconds, on a write.

    Each file's modification time is set to the session's expiry, so sweeping reads no file.
    ``encoder``/``decoder``: aiohttp-session's, for the files' text (which keeps its ``.json``
    name whatever the pair writes).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        sweep_interval: float = 60.0,
        encoder: Encoder | None = None,
        decoder: Decoder | None = None,
        **setup_options: NoReturn,
    ) -> None:
        # setup_options: cookie options passed here by habit, refused with the fix.
        refuse_options(
            "FileStore(directory)", setup_options, ("sweep_interval", "encoder", "decoder")
        )
        check_path("directory", directory, "FileStore('sessions')")
        codec = make_codec("FileStore(directory)", encoder, decoder)
        super().__init__("aio-sessions-file", "FileStore(directory)", sweep_interval, codec)
        self.directory = Path(directory)
        self._users = self.directory / "users"
        self._ready = False

    def _prepare(self) -> None:
        if not self._ready:
            self._users.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._ready = True

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._prepare()
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _path(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.json"

    def _read(self, session_id: str) -> SessionRecord | None:
        try:
            raw = self._path(session_id).read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = parse(raw, self._codec)
            expires = doc.get("expires")
            if not is_epoch(expires):
                raise ValueError("no expiry, or one out of range")
            if expires <= time.time():
                return None
            return record_from_doc(session_id, doc)
        except ValueError:
            log.warning("ignoring a corrupt session file")
            return None

    def _write(self, record: SessionRecord, ttl: float) -> None:
        expires = time.time() + ttl
        text = dump_record(record, extra={"expires": expires}, codec=self._codec)
        data = text.encode("utf-8")
        self._replace(self._path(record.id), data, mtime=expires)
        if time.time() >= self._next_sweep:
            self._sweep()

    def _replace(self, target: Path, data: bytes, *, mtime: float | None = None) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            if mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _sweep(self) -> None:
        now = time.time()
        self._next_sweep = now + self._sweep_interval
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= now:
                    path.unlink()

    def _user_file(self, user: str) -> Path:
        return self._users / hashlib.sha256(user.encode("utf-8")).hexdigest()

    def _link(self, user: str, session_id: str) -> None:
        with self._transaction(), open(self._user_file(user), "a") as index:
            index.write(session_id + "\n")

    def _user_sessions(self, user: str) -> list[str]:
        with self._transaction():
            path = self._user_file(user)
            try:
                linked = path.read_text().split()
            except FileNotFoundError:
                return []
            alive = sorted({sid for sid in linked if valid_id(sid) and self._read(sid)})
            if alive:
                self._replace(path, "".join(f"{sid}\n" for sid in alive).encode())
            else:
                path.unlink()
            return alive

    def _delete(self, session_id: str) -> bool:
        try:
            self._path(session_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def _count(self) -> int:
        self._prepare()
        now = time.time()
        n = 0
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                n += path.stat().st_mtime > now
        return n

    def _clear(self) -> None:
        with self._transaction():
            for path in [*self.directory.glob("*.json"), *self._users.iterdir()]:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
