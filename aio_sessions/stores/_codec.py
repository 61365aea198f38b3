"""A store's own ``encoder`` and ``decoder``, with aiohttp-session's meaning.

aiohttp-session's storages call ``encoder`` on the whole record document,
``{"created": ..., "session": {...}}``, and ``decoder`` on the text they stored; ours do the
same, and our own fields (``accessed``, ``max_age``, ``id``...) ride along in that document.
Either may be given alone, as there: the other side stays the JSON codec of ``_json.py``.

What a pair gives back is held to the JSON codec's rules: a decoder that raises, or returns
anything but a record, leaves a corrupt record (a fresh session and a warning); an encoder
that raises, or returns anything but UTF-8 text, is a SerializationError at save; data nested
deeper than MAX_DEPTH (or circular) is refused on save and on load alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .._checks import describe
from .._ids import new_id
from ..errors import SerializationError
from . import _json
from .base import SessionRecord

Encoder = Callable[[Any], str]
Decoder = Callable[[str], Any]

_ENCODER = "a callable that turns the record (a dict) into str, as json.dumps does"
_DECODER = "a callable that turns that str back into the dict, as json.loads does"
_CONTAINERS = (dict, list, tuple)


class Codec:
    """An encoder and a decoder for whole record documents (None: the JSON codec's side)."""

    __slots__ = ("decoder", "encoder")

    def __init__(self, encoder: Encoder | None, decoder: Decoder | None) -> None:
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, doc: dict[str, Any], data: dict[str, Any]) -> str:
        """``doc`` (a record whose session data is ``data``) as text.

        SerializationError when the encoder refuses it, naming the key of ``data`` at fault
        when one key alone is.
        """
        encoder = self.encoder
        if encoder is None:
            return _json.encode_document(doc, data)
        if _nests_deeper(data, _json.MAX_DEPTH):
            deep = next(k for k, v in data.items() if _nests_deeper({k: v}, _json.MAX_DEPTH))
            raise SerializationError(
                deep, ValueError(f"nested deeper than {_json.MAX_DEPTH} levels")
            )
        try:
            text = encoder(doc)
        except Exception as exc:
            raise SerializationError(self._bad_key(doc, data), exc) from exc
        if not isinstance(text, str):
            kind = type(text).__name__
            fix = " (for bytes, decode them: lambda doc: dumps(doc).decode())"
            raise SerializationError(
                None,
                TypeError(f"the encoder returned {kind}, not str{fix if kind == 'bytes' else ''}"),
            )
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SerializationError(
                    None, ValueError("the encoder wrote a lone surrogate, which UTF-8 cannot hold")
                ) from exc
        return str(text)

    def _bad_key(self, doc: dict[str, Any], data: dict[str, Any]) -> str | None:
        """The one key of ``data`` the encoder refuses, or None (it refuses more, or all)."""
        assert self.encoder is not None
        header = {k: v for k, v in doc.items() if k != "session"}
        try:
            self.encoder({**header, "session": {}})
        except Exception:
            return None  # the encoder fails whatever the data: no key is to blame
        for key, value in data.items():
            try:
                self.encoder({**header, "session": {key: value}})
            except Exception:
                return key
        return None

    def decode(self, text: str) -> dict[str, Any]:
        """The record document in ``text``; ValueError when the decoder fails or gives back
        something that is not one (checked further by ``_record.record_from_doc``)."""
        decoder = self.decoder
        if decoder is None:
            return _json.parse(text)
        try:
            doc = decoder(text)
        except Exception as exc:  # any failure of the app's decoder is a corrupt record
            raise ValueError(f"the decoder refused the record ({type(exc).__name__})") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"the decoder gave a {type(doc).__name__}, not a record (a dict)")
        doc = dict(doc)
        data = doc.get("session")
        if isinstance(data, dict):
            if not all(isinstance(key, str) for key in data):
                raise ValueError("the decoder gave session data with keys that are not str")
            if _nests_deeper(data, _json.MAX_DEPTH):
                raise ValueError(f"session data nested deeper than {_json.MAX_DEPTH} levels")
            doc["session"] = dict(data)
        return doc


def _nests_deeper(data: dict[str, Any], limit: int) -> bool:
    """Whether dicts, lists and tuples nest in ``data`` (level 1) more than ``limit`` levels.

    A loop, not a recursion: circular data nests without end and is caught, never a
    RecursionError.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, _CONTAINERS):
                if level >= limit:
                    return True
                stack.append((item, level + 1))
    return False


def make_codec(call: str, encoder: Encoder | None, decoder: Decoder | None) -> Codec | None:
    """The codec a store's ``encoder=`` and ``decoder=`` make, or None for the JSON codec.

    Both are checked at once, on a sample record, so that a swapped pair, a class where an
    instance's method belongs or an encoder returning bytes fails in the constructor
    (``call``, as users write it), not on every request.
    """
    if encoder is None and decoder is None:
        return None
    head = call[:-1] if call.endswith("()") else f"{call[:-1]}, "
    _check_callable("encoder", encoder, _ENCODER, f"e.g. {head}encoder=json.dumps)")
    _check_callable("decoder", decoder, _DECODER, f"e.g. {head}decoder=json.loads)")
    codec = Codec(encoder, decoder)
    _try_sample(codec)
    return codec


def _check_callable(name: str, value: object, expected: str, fix: str) -> None:
    if value is None:
        return
    if isinstance(value, type) and issubclass(value, (json.JSONEncoder, json.JSONDecoder)):
        method = "encode" if name == "encoder" else "decode"
        raise TypeError(
            describe(
                name,
                value,
                expected,
                f"pass an instance's method: {name}={value.__qualname__}().{method}",
            )
        )
    if not callable(value):
        raise TypeError(describe(name, value, expected, fix))


def _try_sample(codec: Codec) -> None:
    """Encode and decode a small record: TypeError when either side fails, ValueError when
    what comes back is not what went in."""
    sample = SessionRecord(new_id(), {"user": "alice", "n": 1}, int(time.time()), time.time())
    try:
        text = _json.dump_record(sample, with_id=True, codec=codec)
    except SerializationError as exc:
        raise TypeError(
            describe("encoder", codec.encoder, _ENCODER, f"it failed on a sample record: {exc}")
        ) from exc
    try:
        back = _json.load_record(None, text, codec=codec)
    except ValueError as exc:
        raise TypeError(
            describe(
                "decoder",
                codec.decoder,
                _DECODER,
                f"it failed on what the encoder wrote for a sample record: {exc}",
            )
        ) from exc
    if (back.id, back.data, back.created) != (sample.id, sample.data, sample.created):
        raise ValueError(
            f"encoder and decoder do not read back what they write: a sample record's "
            f"session {sample.data!r} came back as {back.data!r}; pass the decoder that reads "
            "what the encoder writes"
        )
