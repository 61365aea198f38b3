"""Values whose stored form (or refusal) must not depend on which JSON codec runs.

Imported by tests/test_json_codec.py in-process (orjson) and in a subprocess with orjson
hidden (the stdlib): both print the outcome of ``dump_data`` for each value.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import json
import math
import uuid
from typing import Any

from aio_sessions import SerializationError
from aio_sessions.stores._json import MAX_DEPTH, dump_data


class Colour(enum.Enum):
    RED = "red"
    LIST = [1, 2]  # noqa: RUF012 - an enum member's value, not a class attribute
    ID = uuid.UUID(int=3)
    NAN = math.nan
    SET = frozenset({1})


class Level(enum.IntEnum):
    HIGH = 2


class Mode(str, enum.Enum):
    READ = "r"


class Perm(enum.IntFlag):
    R = 4
    W = 2


class MyUUID(uuid.UUID):
    pass


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


class Mapping(dict):  # type: ignore[type-arg]
    pass


class Items(list):  # type: ignore[type-arg]
    pass


@dataclasses.dataclass
class Point:
    x: int


def nested(depth: int) -> Any:
    """A list ``depth`` levels deep."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return [value]


def circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def values() -> dict[str, Any]:
    """Name -> a session value; ``{"k": value}`` is what gets stored."""
    return {
        "uuid": uuid.UUID(int=1),
        "uuid subclass": MyUUID(int=2),
        "enum": Colour.RED,
        "enum of a list": Colour.LIST,
        "enum of a uuid": Colour.ID,
        "enum of NaN": Colour.NAN,
        "enum of a set": Colour.SET,
        "IntEnum": Level.HIGH,
        "str mixin enum": Mode.READ,
        "IntFlag": Perm.R | Perm.W,
        "NaN": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "NaN in a list": [1, math.nan],
        "inf in a dict": {"x": math.inf},
        "float subclass NaN": Real("nan"),
        "float subclass": Real(1.5),
        "-0.0": -0.0,
        "1e16": 1e16,
        "smallest float": 5e-324,
        "largest float": 1.7976931348623157e308,
        "int64 max": 2**63 - 1,
        "uint64 max + 1": 2**64,
        "int64 min - 1": -(2**63) - 1,
        "int past the str limit": 10**4300,
        "bool": True,
        "None": None,
        "empty string": "",
        "str subclass": Text("t"),
        "int subclass": Number(7),
        "dict subclass": Mapping(a=1),
        "list subclass": Items([1, 2]),
        "OrderedDict": collections.OrderedDict(b=1, a=2),
        "tuple": (1, (2, 3)),
        "bytes": b"raw",
        "bytearray": bytearray(b"raw"),
        "set": {1, 2},
        "frozenset": frozenset({1}),
        "complex": 1j,
        "Decimal": decimal.Decimal("1.5"),
        "Fraction": fractions.Fraction(1, 3),
        "datetime": datetime.datetime(2026, 1, 1, 12, 0),
        "date": datetime.date(2026, 1, 1),
        "time": datetime.time(12, 0),
        "timedelta": datetime.timedelta(seconds=1),
        "dataclass": Point(1),
        "object": object(),
        "range": range(3),
        "int keys": {1: "a", 2: "b"},
        "float key": {1.5: "a"},
        "bool and None keys": {True: "a", None: "b"},
        "NaN key": {math.nan: "a"},
        "inf key": {math.inf: "a"},
        "tuple key": {(1, 2): "a"},
        "uuid key": {uuid.UUID(int=1): "a"},
        "enum key": {Colour.RED: "a"},
        "IntEnum key": {Level.HIGH: "a"},
        "str enum key": {Mode.READ: "a"},
        "str subclass key": {Text("k"): "a"},
        "bytes key": {b"k": "a"},
        "clashing keys": {1: "int", "1": "str"},
        "lone surrogate": "Anna \ud83d",
        "low surrogate first": "\udc00\ud800",
        "surrogate key": {"\udfff": 1},
        "non-ASCII": "héllo \u2028 \U0001f600",
        "control characters": "\x00\x1f\x7f",
        f"nested {MAX_DEPTH - 1} deep": nested(MAX_DEPTH - 1),
        f"nested {MAX_DEPTH} deep": nested(MAX_DEPTH),
        "nested 100000 deep": nested(100_000),
        "circular": circular(),
    }


def outcome(value: Any) -> str:
    """What storing ``{"k": value}`` gives: the stored JSON in a canonical form, or a refusal."""
    try:
        text = dump_data({"k": value})
    except SerializationError as exc:
        return f"refused {exc.key!r}"
    return canonical(text)


def canonical(text: str) -> str:
    """JSON text in one form: what it decodes to, written back by the stdlib."""
    return json.dumps(json.loads(text))


if __name__ == "__main__":
    print(json.dumps({name: outcome(value) for name, value in values().items()}))
