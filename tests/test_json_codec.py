"""The two JSON codecs: the stdlib one and the optional orjson one write and read alike."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_sessions import SerializationError
from aio_sessions.stores import _json
from aio_sessions.stores._json import MAX_DEPTH, dump_data, std_decode, std_encode

from ._codec_values import Colour, Level, Mode, canonical, nested, outcome, values

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


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "[1, 1e309]", '{"k": NaN}']
)
def test_non_finite_numbers_are_refused_by_both_decoders(text: str) -> None:
    # The encoders refuse them, so a stored record never holds one: reading one is corrupt.
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is ValueError
        std_decode(text)
    with pytest.raises(ValueError):  # noqa: PT011
        _json.fast_decode(text)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, [0.5, math.nan], {"x": math.inf}])
def test_non_finite_numbers_are_refused_by_both_encoders(bad: object) -> None:
    # orjson alone would write null: the same save must not succeed only with the extra.
    for encode in (std_encode, _json.fast_encode):
        with pytest.raises(ValueError, match="not JSON compliant"):
            encode({"k": bad})
    with pytest.raises(SerializationError, match="'bad'"):
        dump_data({"fine": None, "bad": bad})


def test_deep_nesting_is_refused_with_the_key() -> None:
    value = nested(MAX_DEPTH - 1)
    assert _json.decode(dump_data({"deep": value})) == {"deep": value}  # just fits
    for depth in (MAX_DEPTH, 300, 100_000):  # past orjson's limit, past the stack
        with pytest.raises(SerializationError, match="'deep'"):
            dump_data({"fine": 1, "deep": nested(depth)})


def test_lone_surrogates_are_written_escaped_by_both() -> None:
    value = {"name": "Anna \ud83d", "\udc00key": ["\udfff", "é \ud800 😀"]}
    for encode in (std_encode, _json.fast_encode):
        text = encode(value)
        text.encode("utf-8")  # what every store does with it
        assert "\\ud83d" in text
        assert "é" in text  # only surrogates are escaped, other text stays as it is
        assert json.loads(text) == std_decode(text) == _json.fast_decode(text) == value


def test_values_are_stored_alike_with_and_without_orjson(tmp_path: Path) -> None:
    """Every value of tests/_codec_values.py: the same stored JSON, or the same refusal."""
    (tmp_path / "orjson.py").write_text('raise ImportError("hidden: the stdlib codec is tested")\n')
    paths = [str(tmp_path), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    out = subprocess.run(
        [sys.executable, "-m", "tests._codec_values"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    without_orjson = json.loads(out.stdout)
    with_orjson = {name: outcome(value) for name, value in values().items()}
    assert with_orjson == without_orjson
    # A few of the rules docs/stores.md states, spelled out.
    assert with_orjson["uuid"] == '{"k": "00000000-0000-0000-0000-000000000001"}'
    assert with_orjson["enum"] == '{"k": "red"}'
    assert with_orjson["NaN"] == with_orjson["enum of NaN"] == "refused 'k'"
    assert with_orjson["int keys"] == '{"k": {"1": "a", "2": "b"}}'
    assert with_orjson["uuid key"] == with_orjson["datetime"] == "refused 'k'"


def _stored(encode: Callable[[Any], str], value: Any) -> str | None:
    """The canonical stored form of ``value`` by one encoder, or None when it refuses."""
    try:
        return canonical(encode(value))
    except (TypeError, ValueError, RecursionError):
        return None


_TEXT = st.text(st.characters(exclude_categories=())) | st.text(
    st.sampled_from('a\x00"\\é\u2028\ud800\udbff\udc00\udfff\U0001f600')
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | _TEXT
    | st.uuids()
    | st.sampled_from([*Colour, *Level, *Mode])
)
_KEYS = _TEXT | st.integers() | st.floats() | st.booleans() | st.none() | st.uuids()
JSONISH = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_KEYS, inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(JSONISH)
def test_both_codecs_store_any_value_alike(value: Any) -> None:
    fast = _stored(_json.fast_encode, {"k": value})
    assert fast == _stored(std_encode, {"k": value})
    if fast is not None:  # and both decoders read either output alike
        for text in (_json.fast_encode({"k": value}), std_encode({"k": value})):
            read = {json.dumps(std_decode(text)), json.dumps(_json.fast_decode(text))}
            assert read == {canonical(text)}


def test_the_stdlib_codec_is_used_without_orjson() -> None:
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "from aio_sessions.stores import _json\n"
        "assert _json.decode is _json.std_decode and _json._encode_within is _json._std_within\n"
        "assert not hasattr(_json, 'fast_encode')\n"
        "print(_json.dump_data({'a': [1, 2**70]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == '{"a":[1,1180591620717411303424]}'


def test_the_store_contract_holds_without_orjson(tmp_path: Path) -> None:
    """The default install has no orjson: the stores' conformance suite runs on the stdlib codec,
    and so do the corrupt-record and browser-text suites.

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
            str(tests / "test_corrupt_records.py"),
            str(tests / "test_browser_text.py"),
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
    assert _json._encode_within is not _json._std_within


def test_orjson_refuses_to_nest_deeper_than_the_limit_by_itself() -> None:
    """What orjson writes is not measured for depth: this is why (see MAX_DEPTH)."""
    orjson.dumps(nested(MAX_DEPTH))
    with pytest.raises(TypeError, match="Recursion"):
        orjson.dumps(nested(MAX_DEPTH + 1))
    with pytest.raises(TypeError, match="Recursion"):
        orjson.dumps({"k": nested(MAX_DEPTH)})


def test_copy_decoded_shares_nothing_mutable() -> None:
    original = {"cart": [{"sku": "a", "tags": ["x"]}], "prefs": {"theme": "dark"}, "n": 1}
    copy = _json.copy_decoded(original)
    assert copy == original
    copy["cart"][0]["tags"].append("y")
    copy["cart"].append({})
    copy["prefs"]["theme"] = "light"
    copy["n"] = 2
    assert original == {"cart": [{"sku": "a", "tags": ["x"]}], "prefs": {"theme": "dark"}, "n": 1}
