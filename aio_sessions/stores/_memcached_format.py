"""What MemcachedStore's items hold, and the expiry numbers memcached reads.

A session is aiohttp-session's record (JSON, or the text of the store's ``encoder``) plus
``expires``, the exact end of its life (which aiohttp-session ignores): memcached counts in
whole seconds. A user index is a JSON object ``{session id: until when}``, whatever the codec.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, NamedTuple

from .._ids import valid_id
from ._codec import Codec
from ._json import dump_data, dump_record, parse
from ._record import is_epoch, record_from_doc
from .base import SessionRecord

log = logging.getLogger("aio_sessions")

# memcached reads an expiry over 30 days as an absolute unix time, not as seconds from now.
_THIRTY_DAYS = 30 * 24 * 3600
# ...and parses it as a signed 32-bit number: no later than January 2038.
_LATEST = 2**31 - 1


class Stamp(NamedTuple):
    """What ``gets`` returned for a session: the compare-and-set token and the value."""

    cas: int
    raw: bytes


def exptime(ttl: float) -> int:
    """memcached's expiry for a TTL in seconds, by aiohttp-session's rule: up to 30 days,
    seconds from now; beyond, the absolute unix time (memcached reads any larger number so).

    One second more than asked, rounded up: memcached's clock ticks once a second, so it may
    end an item up to a second early. The stored ``expires`` ends the session on time.
    """
    seconds = math.ceil(ttl) + 1
    return seconds if seconds <= _THIRTY_DAYS else min(int(time.time()) + seconds, _LATEST)


def dump_session(record: SessionRecord, ttl: float, codec: Codec | None) -> bytes:
    """A session's item, encoded with ``codec`` (None: JSON): its record, and until when it
    is valid."""
    doc = dump_record(record, extra={"expires": time.time() + ttl}, codec=codec)
    return doc.encode("utf-8")


def load_session(
    session_id: str, raw: Any, cas: int | None, codec: Codec | None
) -> SessionRecord | None:
    """The live record in a session's item, decoded with ``codec`` (None: JSON); None when it
    expired, warned about when corrupt.

    The record's ``stamp`` is what a merge compares and sets against.
    """
    try:
        doc = parse(raw, codec)
        expires = doc.get("expires")  # absent when aiohttp-session wrote it
        if "expires" in doc and not is_epoch(expires):
            raise ValueError("session record's expiry is missing or out of range")
        record = record_from_doc(session_id, doc)
    except ValueError:
        log.warning("ignoring a corrupt session record in memcached")
        return None
    if expires is not None and expires <= time.time():
        return None
    record.stamp = None if cas is None else Stamp(cas, raw)
    return record


def live_index(raw: Any, now: float) -> dict[str, float]:
    """The entries of a user index that are still due at ``now``; an unreadable index counts
    as empty (and is rewritten by the next link)."""
    if raw is None:
        return {}
    try:
        doc = parse(raw)
    except ValueError:
        log.warning("ignoring a corrupt user index in memcached")
        return {}
    return {
        sid: until
        for sid, until in doc.items()
        if is_epoch(until) and until > now and valid_id(sid)
    }


def dump_index(index: dict[str, float]) -> bytes:
    return dump_data(index).encode("utf-8")
