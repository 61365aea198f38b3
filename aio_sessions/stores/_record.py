"""The record document, whatever codec writes it: what a record puts in it, and the checks
that make a decoded document a record.

aiohttp-session writes ``{"created": <int>, "session": {...}}``; it ignores other keys, so
ours ride along (``accessed``, ``max_age``, ``linked``, ``watched``, the device fields
``user_agent`` and ``ip`` when tracked; ``id`` for cookie stores)
and a site can switch between the libraries either way. The same rules hold for every codec:
the JSON one of ``_json.py`` and a store's own ``encoder``/``decoder`` alike.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from .._ids import new_id, valid_id
from ..errors import SerializationError
from .base import SessionRecord

#: The last second of the year 9999: a later ``created`` or ``accessed`` is not a time.
LATEST_EPOCH = 253_402_300_799
#: The longest per-session cookie lifetime a record may hold: ten years.
MAX_AGE_LIMIT = 10 * 366 * 24 * 3600
#: The longest User-Agent a record keeps (longer ones are cut to this when recorded).
MAX_AGENT = 256
#: The longest address a record keeps: an IPv6 address with a zone fits.
MAX_IP = 64


def document(
    record: SessionRecord, *, with_id: bool = False, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The document a codec encodes for ``record`` (``extra``: a store's own fields).

    A record the loader would call corrupt (a time or lifetime out of range) is refused with
    a SerializationError, so that what saves always loads.
    """
    problem = _header_problem(
        record.created, record.accessed, record.max_age, record.linked, record.watched
    ) or _device_problem(record.agent, record.ip)
    if problem is not None:
        raise SerializationError(None, ValueError(problem))
    doc: dict[str, Any] = {"created": record.created, "session": record.data}
    if record.accessed is not None:
        doc["accessed"] = record.accessed
    if record.max_age is not None:
        doc["max_age"] = record.max_age
    if record.linked is not None:
        doc["linked"] = record.linked
    if record.watched is not None:
        doc["watched"] = record.watched
    if record.agent is not None:
        doc["user_agent"] = record.agent
    if record.ip is not None:
        doc["ip"] = record.ip
    if with_id:
        doc["id"] = record.id
    if extra:
        doc.update(extra)
    return doc


def record_from_doc(session_id: str | None, doc: dict[str, Any]) -> SessionRecord:
    """Check a decoded document's shape and build its record; ValueError when it is wrong.

    ``session_id`` None takes the id from the document (cookie stores); a document without
    one (written by aiohttp-session) gets a fresh id.
    """
    data = doc.get("session", {})
    created: Any = doc.get("created")
    accessed: Any = doc.get("accessed")
    max_age: Any = doc.get("max_age")
    linked: Any = doc.get("linked")
    watched: Any = doc.get("watched")
    agent: Any = doc.get("user_agent")
    ip: Any = doc.get("ip")
    if session_id is None:
        sid = doc.get("id")
        if sid is None:
            sid = new_id()
        elif type(sid) is not str or not valid_id(sid):
            raise ValueError("session record has a malformed id")
    else:
        sid = session_id
    if type(data) is not dict:
        raise ValueError("session record's data is not an object")
    problem = _header_problem(created, accessed, max_age, linked, watched) or _device_problem(
        agent, ip
    )
    if problem is not None:
        raise ValueError(problem)
    return SessionRecord(
        sid,
        data,
        int(created),
        None if accessed is None else float(accessed),
        max_age,
        None if linked is None else float(linked),
        None if watched is None else float(watched),
        agent,
        ip,
    )


def is_epoch(value: object) -> TypeGuard[float]:
    """Whether ``value`` is a time a record may hold: a number of seconds from 1970 to 9999.

    NaN fails the comparison, an infinity the range; bool is not a number here (type() tells
    it from int).
    """
    return (type(value) is int or type(value) is float) and 0 <= value <= LATEST_EPOCH


def _header_problem(
    created: object,
    accessed: object,
    max_age: object,
    linked: object = None,
    watched: object = None,
) -> str | None:
    """What is wrong with a record's times and lifetime, or None when they are sane."""
    if not is_epoch(created):
        return "session record's created time is missing or out of range"
    if accessed is not None and not is_epoch(accessed):
        return "session record's accessed time is out of range"
    if max_age is not None and (type(max_age) is not int or not 0 < max_age <= MAX_AGE_LIMIT):
        return "session record's max_age is not a whole number of seconds up to ten years"
    for name, value in (("linked", linked), ("watched", watched)):
        if value is not None and not is_epoch(value):
            return f"session record's {name} time is out of range"
    return None


def _device_problem(agent: object, ip: object) -> str | None:
    """What is wrong with a record's device fields (text of bounded length, or absent)."""
    if agent is not None and (type(agent) is not str or len(agent) > MAX_AGENT):
        return "session record's user_agent is not text of at most 256 characters"
    if ip is not None and (type(ip) is not str or len(ip) > MAX_IP):
        return "session record's ip is not text of at most 64 characters"
    return None
