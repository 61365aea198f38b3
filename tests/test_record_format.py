"""The stored JSON document: what loads, what is refused as corrupt."""

from __future__ import annotations

import math

import pytest

from aio_sessions import SerializationError
from aio_sessions._ids import new_id, valid_id
from aio_sessions.stores import SessionRecord
from aio_sessions.stores._json import MAX_DEPTH, dump_record, load_record


def test_aiohttp_session_document_loads_and_gets_an_id() -> None:
    record = load_record(None, '{"created": 1700000000, "session": {"user": "alice"}}')
    assert record.data == {"user": "alice"}
    assert record.created == 1700000000
    assert record.accessed is None
    assert valid_id(record.id)


def test_roundtrip_keeps_our_fields() -> None:
    record = load_record("x" * 43, '{"created": 5, "session": {}, "accessed": 6.5, "max_age": 60}')
    again = load_record("x" * 43, dump_record(record))
    assert (again.created, again.accessed, again.max_age) == (5, 6.5, 60)


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '"text"',
        '{"session": {}}',
        '{"created": true, "session": {}}',
        '{"created": "1", "session": {}}',
        '{"created": 1, "session": []}',
        '{"created": 1, "session": {}, "accessed": "now"}',
        '{"created": 1, "session": {}, "max_age": 0}',
        '{"created": 1, "session": {}, "max_age": false}',
        '{"created": 1, "session": {}, "id": 7}',
        "{broken",
        b"\xff\xfe",
        # Numbers that are not numbers, or not times.
        '{"created": Infinity, "session": {}}',
        '{"created": NaN, "session": {}}',
        '{"created": 1e400, "session": {}}',
        '{"created": 1, "session": {"x": -Infinity}}',
        '{"created": 1, "session": {"x": [1e999]}}',
        '{"created": -1, "session": {}}',
        '{"created": 253402300800, "session": {}}',
        '{"created": 1, "session": {}, "accessed": -0.5}',
        '{"created": 1, "session": {}, "accessed": 1e300}',
        '{"created": 1, "session": {}, "max_age": 60.0}',
        '{"created": 1, "session": {}, "max_age": 1e400}',
        '{"created": 1, "session": {}, "max_age": 999999999999}',
        '{"created": 1, "session": {"n": ' + "9" * 5000 + "}}",
        '{"created": ' + "1" * 5000 + ', "session": {}}',
        # Nesting past the limit, and past what the decoders' stacks hold.
        '{"created": 1, "session": {"x": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}}",
        "[" * 100_000,
        '{"a":' * 100_000,
        # Ids a cookie document may not carry.
        '{"created": 1, "session": {}, "id": "short"}',
        '{"created": 1, "session": {}, "id": "../' + "a" * 40 + '"}',
    ],
)
def test_malformed_documents_are_refused(raw: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every refusal is a ValueError by contract
        load_record(None, raw)


def test_the_deepest_data_the_encoder_writes_loads() -> None:
    deep: object = []
    for _ in range(MAX_DEPTH - 2):
        deep = [deep]
    record = SessionRecord(new_id(), {"x": deep}, 1, 2.0)
    assert load_record(record.id, dump_record(record)).data == {"x": deep}


@pytest.mark.parametrize(
    ("field", "value"),
    [("created", -1), ("created", 10**12), ("accessed", math.inf), ("max_age", 10**9)],
)
def test_a_record_that_would_load_as_corrupt_is_not_written(field: str, value: object) -> None:
    record = SessionRecord(new_id(), {}, 1, 2.0)
    setattr(record, field, value)
    with pytest.raises(SerializationError, match=field):
        dump_record(record)
