"""The stored JSON document: what loads, what is refused as corrupt."""

from __future__ import annotations

import pytest

from aio_sessions._ids import valid_id
from aio_sessions.stores._json import dump_record, load_record


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
    ],
)
def test_malformed_documents_are_refused(raw: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every refusal is a ValueError by contract
        load_record(None, raw)
