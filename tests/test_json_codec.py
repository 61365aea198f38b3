"""The two JSON codecs: the stdlib one and the optional orjson one write and read alike."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from aio_sessions import SerializationError
from aio_sessions.stores import _json
from aio_sessions.stores._json import dump_data, std_decode, std_encode

orjson = pytest.importorskip("orjson")  # in the test extra; the stdlib half runs regardless

ROUND_TRIPS: list[Any] = [
    {"user": "alice", "counter": 3, "ratio": 0.1, "on": True, "off": None},
    {"nested": {"list": [1, [2, {"x": []}]], "empty": {}}},
    {"text": 'héllo \u2028 \U0001f600 "quoted" \\ back'},
    {"i64": 2**63 - 1, "neg": -(2**63), "u64": 2**64 - 1, "big": 2**80, "neg_big": -(2**70)},
    {"floats": [1e16, 1.5e-300, -0.0, 1700000000.123456]},
    {"digits in a string": "12345678901234567890123"},
    {"lone surrogate": "\ud800", "escaped": "\\ud800"},
]


@pytest.mark.parametrize("value", ROUND_TRIPS)
def test_both_codecs_read_what_either_wrote(value: dict[str, Any]) -> None:
    fast = _json.fast_encode(value)
    std = std_encode(value)
    for text in (fast, std):
        assert std_decode(text) == value
        assert _json.fast_decode(text) == value
        # Exact types too: a big integer must not come back as a float.
        assert [type(v) for v in _json.fast_decode(text).values()] == [
            type(v) for v in value.values()
        ]


def test_non_string_keys_and_tuples_are_written_alike() -> None:
    value = {"m": {7: "a", 2.5: "b", True: "c", None: "d"}, "t": (1, 2)}
    assert _json.fast_encode(value) == std_encode(value)


def test_what_json_cannot_hold_is_refused_by_both() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    class Text(str):
        pass

    for bad in (object(), {1, 2}, b"raw", datetime.date(2026, 1, 1), Point(1), {(1, 2): 3}):
        with pytest.raises(TypeError):
            std_encode({"k": bad})
        with pytest.raises(TypeError):
            _json.fast_encode({"k": bad})
    # A str subclass is written as its text by both.
    assert _json.fast_encode({"k": Text("v")}) == std_encode({"k": Text("v")}) == '{"k":"v"}'


def test_serialization_error_names_the_key_with_either_codec() -> None:
    with pytest.raises(SerializationError, match="'when'"):
        dump_data({"fine": 1, "when": datetime.datetime(2026, 1, 1)})


def test_what_only_the_stdlib_reads_still_loads() -> None:
    # NaN and infinities are not JSON, but the stdlib (and so aiohttp-session) writes them.
    doc = _json.fast_decode('{"n": NaN, "i": Infinity, "big": 1e400}')
    assert math.isnan(doc["n"])
    assert doc["i"] == doc["big"] == math.inf
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is ValueError
        _json.fast_decode("{broken")


def test_the_documented_differences_of_the_orjson_extra() -> None:
    # orjson writes these natively where the stdlib refuses or writes non-JSON:
    # docs/stores.md lists them.
    class Colour(enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 2

    some = uuid.UUID(int=1)
    assert _json.fast_encode({"u": some}) == f'{{"u":"{some}"}}'
    assert _json.fast_encode({"c": Colour.RED}) == '{"c":"red"}'
    assert _json.fast_encode({"n": math.nan}) == '{"n":null}'
    # An IntEnum is an int to both.
    assert _json.fast_encode({"l": Level.HIGH}) == std_encode({"l": Level.HIGH}) == '{"l":2}'


def test_the_stdlib_codec_is_used_without_orjson() -> None:
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "from aio_sessions.stores import _json\n"
        "assert _json.decode is _json.std_decode and _json._encode is _json.std_encode\n"
        "assert not hasattr(_json, 'fast_encode')\n"
        "print(_json.dump_data({'a': [1, 2**70]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == '{"a":[1,1180591620717411303424]}'


def test_the_store_contract_holds_without_orjson(tmp_path: Path) -> None:
    """The default install has no orjson: the stores' conformance suite runs on the stdlib codec.

    Redis is left out only to keep this quick; its codec path is the same functions.
    """
    (tmp_path / "orjson.py").write_text('raise ImportError("hidden: the stdlib codec is tested")\n')
    paths = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    tests = Path(__file__).parent
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not redis",
            str(tests / "test_store_conformance.py"),
            str(tests / "test_memory_store.py"),
            str(tests / "test_record_format.py"),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        cwd=tests.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "skipped" not in result.stdout
    assert " passed" in result.stdout


def test_orjson_is_used_when_installed() -> None:
    assert _json.decode is _json.fast_decode
    assert _json._encode is _json.fast_encode


def test_copy_decoded_shares_nothing_mutable() -> None:
    original = {"cart": [{"sku": "a", "tags": ["x"]}], "prefs": {"theme": "dark"}, "n": 1}
    copy = _json.copy_decoded(original)
    assert copy == original
    copy["cart"][0]["tags"].append("y")
    copy["cart"].append({})
    copy["prefs"]["theme"] = "light"
    copy["n"] = 2
    assert original == {"cart": [{"sku": "a", "tags": ["x"]}], "prefs": {"theme": "dark"}, "n": 1}
