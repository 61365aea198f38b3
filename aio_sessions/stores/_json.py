"""The JSON form of a session record, shared with aiohttp-session.

aiohttp-session writes ``{"created": <int>, "session": {...}}``; it ignores other keys, so
ours ride along (``accessed``, ``max_age``; ``id`` for cookie stores) and a site can switch
between the libraries either way.
"""

from __future__ import annotations

import json
from typing import Any

from .._ids import new_id
from ..errors import SerializationError
from .base import SessionRecord

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: json.loads without its per-call checks, for text (decode bytes first).
decode = json.JSONDecoder().decode


def dump_record(
    record: SessionRecord, *, with_id: bool = False, extra: dict[str, Any] | None = None
) -> str:
    """Encode a record; a value JSON cannot hold raises SerializationError naming its key."""
    doc: dict[str, Any] = {"created": record.created, "session": record.data}
    if record.accessed is not None:
        doc["accessed"] = record.accessed
    if record.max_age is not None:
        doc["max_age"] = record.max_age
    if with_id:
        doc["id"] = record.id
    if extra:
        doc.update(extra)
    return _dump(doc, record.data)


def dump_data(data: dict[str, Any]) -> str:
    """Encode session data alone; a value JSON cannot hold raises SerializationError."""
    return _dump(data, data)


def _dump(doc: object, data: dict[str, Any]) -> str:
    try:
        return _encode(doc)
    except (TypeError, ValueError) as exc:
        raise SerializationError(_bad_key(data), exc) from exc


def _bad_key(data: dict[str, Any]) -> str | None:
    for key, value in data.items():
        try:
            _encode({key: value})
        except (TypeError, ValueError):
            return key
    return None


def parse(raw: str | bytes) -> dict[str, Any]:
    """Decode a stored document; anything but a JSON object raises ValueError."""
    doc = decode(raw if isinstance(raw, str) else raw.decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("session record is not an object")
    return doc


def load_record(session_id: str | None, raw: str | bytes) -> SessionRecord:
    """Decode a record; anything malformed raises ValueError."""
    return record_from_doc(session_id, parse(raw))


def record_from_doc(session_id: str | None, doc: dict[str, Any]) -> SessionRecord:
    """Check a decoded document's shape and build its record.

    ``session_id`` None takes the id from the document (cookie stores); a document without
    one (written by aiohttp-session) gets a fresh id.
    """
    data = doc.get("session", {})
    created: Any = doc.get("created")
    accessed: Any = doc.get("accessed")
    max_age: Any = doc.get("max_age")
    sid = session_id if session_id is not None else doc.get("id")
    if sid is None:
        sid = new_id()
    if (
        type(data) is not dict
        or type(created) not in _NUMBER
        or (accessed is not None and type(accessed) not in _NUMBER)
        or (max_age is not None and (type(max_age) not in _NUMBER or max_age <= 0))
        or type(sid) is not str
    ):
        raise ValueError("session record has the wrong shape")
    return SessionRecord(
        sid,
        data,
        int(created),
        None if accessed is None else float(accessed),
        None if max_age is None else int(max_age),
    )


# JSON numbers; bool is a subclass of int but not a number here, and type() tells them apart.
_NUMBER = (int, float)
