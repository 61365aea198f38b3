"""The JSON codec of session records, shared with aiohttp-session.

The codec is the standard library's, or orjson's when it is installed (the ``orjson`` extra);
a store given its own ``encoder``/``decoder`` passes them here as a ``Codec`` (``_codec.py``).
Both write and refuse the same values (docs/stores.md states the rules): orjson hands over to
the standard library wherever they would differ. What the encoder refuses, the decoder refuses
too, and the other way round, so a record that saved always loads and one that loads saves.
What a record document holds, and the checks that make one a record, are ``_record.py``'s.
"""

from __future__ import annotations

import enum
import json
import math
import re
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import SerializationError
from ._record import document, record_from_doc
from .base import SessionRecord

if TYPE_CHECKING:
    from ._codec import Codec

#: Session data nested deeper than this (objects and lists; the session object is the first
#: level) is refused on save and on load. It is orjson's own limit, so what orjson writes
#: needs no check, and far from where the stdlib codec (or copy_decoded) runs out of stack.
#: orjson does not count tuples, though: tuples a handler nests past the limit are written,
#: then refused as corrupt on load (and nested some thousands deep, they crash orjson).
MAX_DEPTH = 254


def _std_default(value: Any) -> Any:
    """Write what orjson writes natively alike: a UUID as its text, an Enum as its value."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_std_encode: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_std_default
).encode
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def std_encode(value: Any) -> str:
    """The stdlib encoder; lone surrogates (which UTF-8 cannot hold) are written escaped.

    Only text that is not ASCII is checked, and only text that fails the check is rewritten.
    A surrogate can only be inside a JSON string, where its escape reads back as itself.
    """
    text = _std_encode(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub(_escape_surrogate, text)
    return text


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:32]}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


#: json.loads without its per-call checks, for text (decode bytes first). NaN, infinities and
#: numbers too large for a float are refused, as the encoder refuses them.
std_decode: Callable[[str], Any] = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_no_constant
).decode

_ANY_DEPTH = sys.maxsize


def _std_within(value: Any, depth: int) -> str:
    """Encode with the stdlib; ValueError when ``value`` nests more than ``depth`` levels."""
    text = std_encode(value)
    if len(text) > 2 * depth and _too_deep(text, depth):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return text


# A JSON string, and the brackets left once strings are gone (for _too_deep's slow path).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _too_deep(text: str, depth: int) -> bool:
    """Whether JSON ``text`` nests objects and lists more than ``depth`` levels.

    Callers skip text shorter than ``2 * depth + 2``, which cannot nest that deep. Text with no
    more brackets than ``depth`` cannot either (two counts); otherwise the brackets outside
    strings are followed.
    """
    if text.count("[") + text.count("{") <= depth:
        return False
    level = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        level += 1 if bracket in "[{" else -1
        if level > depth:
            return True
    return False


try:
    import orjson
except ImportError:  # the optional extra: pip install "aio-sessions[orjson]"
    orjson = None  # type: ignore[assignment]

if orjson is not None:
    # What orjson would write differently from the stdlib, it must refuse (so the stdlib
    # writes it): datetimes, dataclasses and subclasses are passed through to its missing
    # default, and dict keys that are not str are refused without OPT_NON_STR_KEYS.
    _OPTIONS = (
        orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )
    # orjson reads integers of 20 digits and more as floats; the stdlib keeps them exact.
    # A run of 19 digits is found by mapping every digit to "0": a regex search for it
    # would cost more than orjson's whole parse.
    _DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
    _NINETEEN_DIGITS = b"0" * 19

    def _encode_within(value: Any, depth: int) -> str:
        """orjson, or the stdlib for what orjson refuses (integers over 64 bits, ...).

        orjson writes NaN and infinities as null, which the stdlib refuses: output with a
        null in it (rare: None values) is written by the stdlib instead. orjson nests no
        deeper than MAX_DEPTH by itself, so only the stdlib's output is measured.
        """
        try:
            out = orjson.dumps(value, option=_OPTIONS)
        except TypeError:
            return _std_within(value, depth)
        if out.find(b"null") != -1:  # (find: "in" costs more on bytes)
            return _std_within(value, depth)
        return out.decode()

    def fast_encode(value: Any) -> str:
        """The orjson codec alone, at any depth (what tests compare with std_encode)."""
        return _encode_within(value, _ANY_DEPTH)

    def fast_decode(text: str) -> Any:
        """orjson, or the stdlib for long integers and what orjson refuses (NaN, ...)."""
        raw = text.encode("utf-8", "surrogatepass")  # orjson refuses lone surrogates: ok
        if _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
            try:
                return orjson.loads(raw)
            except ValueError:
                pass
        return std_decode(text)

    decode = fast_decode
else:
    _encode_within, decode = _std_within, std_decode


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
    record: SessionRecord,
    *,
    with_id: bool = False,
    extra: dict[str, Any] | None = None,
    codec: Codec | None = None,
) -> str:
    """Encode a record (with ``codec``, a store's own encoder, else JSON); a value the encoder
    cannot hold raises SerializationError naming its key, and so does a record the decoder
    would call corrupt (a time or lifetime out of range).
    """
    doc = document(record, with_id=with_id, extra=extra)
    if codec is not None:
        return codec.encode(doc, record.data)
    return _dump(doc, record.data, MAX_DEPTH + 1)


def encode_document(doc: dict[str, Any], data: dict[str, Any]) -> str:
    """Encode a record document whose session data is ``data`` with the JSON codec."""
    return _dump(doc, data, MAX_DEPTH + 1)


def dump_data(data: dict[str, Any], codec: Codec | None = None) -> str:
    """Encode session data alone; a value the encoder cannot hold raises SerializationError.

    A store's own encoder gets it as a record document, the form it always gets.
    """
    if codec is not None:
        return codec.encode({"created": 0, "session": data}, data)
    return _dump(data, data, MAX_DEPTH)


# What the encoders raise for a value they refuse (RecursionError: nesting beyond the stack).
_REFUSED = (TypeError, ValueError, RecursionError)


def _dump(doc: object, data: dict[str, Any], depth: int) -> str:
    try:
        return _encode_within(doc, depth)
    except _REFUSED as exc:
        raise SerializationError(_bad_key(data), exc) from exc


def _bad_key(data: dict[str, Any]) -> str | None:
    for key, value in data.items():
        try:
            _encode_within({key: value}, MAX_DEPTH)
        except _REFUSED:
            return key
    return None


# What a decoder may raise besides ValueError on hostile input: RecursionError for deep
# nesting, ArithmeticError (OverflowError) for numbers out of range.
_MALFORMED = (ValueError, ArithmeticError, RecursionError)


def parse(raw: str | bytes, codec: Codec | None = None) -> dict[str, Any]:
    """Decode a stored document with ``codec`` (a store's own decoder) or else JSON.

    ValueError unless that gives a dict: with JSON, an object of sane depth.
    """
    if type(raw) is not str:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise ValueError(f"session record is {type(raw).__name__}, not text")
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("session record is not UTF-8") from exc
    if codec is not None:
        return codec.decode(raw)
    try:
        doc = decode(raw)
    except _MALFORMED as exc:
        raise ValueError(f"session record is not JSON ({type(exc).__name__})") from exc
    if type(doc) is not dict:
        raise ValueError("session record is not an object")
    depth = MAX_DEPTH + 1
    if len(raw) > 2 * depth and _too_deep(raw, depth):
        raise ValueError(f"session data nested deeper than {MAX_DEPTH} levels")
    return doc


def load_record(
    session_id: str | None, raw: str | bytes, codec: Codec | None = None
) -> SessionRecord:
    """Decode a record; anything malformed raises ValueError."""
    return record_from_doc(session_id, parse(raw, codec))
