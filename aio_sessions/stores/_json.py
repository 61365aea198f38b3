"""The JSON form of a session record, shared with aiohttp-session.

aiohttp-session writes ``{"created": <int>, "session": {...}}``; it ignores other keys, so
ours ride along (``accessed``, ``max_age``; ``id`` for cookie stores) and a site can switch
between the libraries either way.

The codec is the standard library's, or orjson's when it is installed (the ``orjson`` extra):
orjson falls back to the standard library wherever their results would differ on reading,
and on writing for everything but what docs/stores.md lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .._ids import new_id
from ..errors import SerializationError
from .base import SessionRecord

std_encode: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False
).encode
#: json.loads without its per-call checks, for text (decode bytes first).
std_decode: Callable[[str], Any] = json.JSONDecoder().decode

try:
    import orjson
except ImportError:  # the optional extra: pip install "aio-sessions[orjson]"
    orjson = None  # type: ignore[assignment]

if orjson is not None:
    # What the stdlib refuses, orjson must refuse too (so it falls back to the stdlib):
    # datetimes, dataclasses and subclasses are passed through to its missing default.
    _OPTIONS = (
        orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )
    # orjson reads integers of 20 digits and more as floats; the stdlib keeps them exact.
    # A run of 19 digits is found by mapping every digit to "0": a regex search for it
    # would cost more than orjson's whole parse.
    _DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
    _NINETEEN_DIGITS = b"0" * 19

    def fast_encode(value: Any) -> str:
        """orjson, or the stdlib for what orjson refuses (integers over 64 bits, ...)."""
        try:
            return orjson.dumps(value, option=_OPTIONS).decode()
        except TypeError:
            return std_encode(value)

    def fast_decode(text: str) -> Any:
        """orjson, or the stdlib for long integers and what orjson refuses (NaN, ...)."""
        raw = text.encode("utf-8", "surrogatepass")  # orjson refuses lone surrogates: ok
        if _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
            try:
                return orjson.loads(raw)
            except ValueError:
                pass
        return std_decode(text)

    _encode, decode = fast_encode, fast_decode
else:
    _encode, decode = std_encode, std_decode


def copy_decoded(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of decoded JSON data that shares nothing mutable with it.

    Cheaper than decoding again: strings, numbers, booleans and None are immutable and
    shared; only dicts and lists are copied.
    """
    copy = data.copy()
    for key, value in copy.items():
        if type(value) in _CONTAINERS:
            copy[key] = _copy_value(value)
    return copy


def _copy_value(value: Any) -> Any:
    if type(value) is dict:
        return copy_decoded(value)
    if type(value) is list:
        return [_copy_value(item) if type(item) in _CONTAINERS else item for item in value]
    return value


_CONTAINERS = (dict, list)


def dump_record(
    record: SessionRecord, *, with_id: bool = False, extra: dict[str, Any] | None = None
) -> str:
    """Encode a record; a value JSON cannot hold raises SerializationError naming its key."""
    doc: dict[str, Any] = {"created": record.created, "session": record.data}
    if record.accessed is not None:
        doc["accessed"] = record.accessed
    if record.max_age is not None:
        doc["max_age"] = record.max_age
    if record.linked is not None:
        doc["linked"] = record.linked
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
    linked: Any = doc.get("linked")
    sid = session_id if session_id is not None else doc.get("id")
    if sid is None:
        sid = new_id()
    if (
        type(data) is not dict
        or type(created) not in _NUMBER
        or (accessed is not None and type(accessed) not in _NUMBER)
        or (max_age is not None and (type(max_age) not in _NUMBER or max_age <= 0))
        or (linked is not None and type(linked) not in _NUMBER)
        or type(sid) is not str
    ):
        raise ValueError("session record has the wrong shape")
    return SessionRecord(
        sid,
        data,
        int(created),
        None if accessed is None else float(accessed),
        None if max_age is None else int(max_age),
        None if linked is None else float(linked),
    )


# JSON numbers; bool is a subclass of int but not a number here, and type() tells them apart.
_NUMBER = (int, float)
