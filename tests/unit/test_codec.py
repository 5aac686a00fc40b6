"""JSON as pepper stores it: a value reads back as it was stored, whichever way it was encoded."""

from __future__ import annotations

import enum
import json
import random
import string
from typing import Any

import pytest

from pepper.errors import InvalidTextError, NotSerializableError
from pepper.model import codec

REFERENCE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

FLAT: list[dict[str, Any]] = [
    {},
    {"ok": True, "n": 0},
    {"none": None, "no": False, "zero": -0.0, "big": 1e308, "tiny": 5e-324, "huge": 2**80, "neg": -(2**70)},
    {"quote": 'a " b', "backslash": "a \\ b", "lines": "a\nb\tc\r", "control": "\x00\x1f", "": "empty key"},
    {"é": "ü", "snow": "☃", "emoji": "😀", "rtl": "שלום", "nbsp": "\u00a0\u2028\u2029"},
]


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


@pytest.mark.parametrize("value", FLAT)
def test_a_flat_object_is_stored_as_the_json_encoder_writes_it_and_reads_back_as_a_copy(value: dict[str, Any]) -> None:
    read, text = codec.normalise(value, "the agent's result")
    assert text == REFERENCE.encode(value)
    assert read == json.loads(text) == value
    assert read is not value  # the agent may change its own object afterwards


def test_random_flat_objects_are_stored_as_the_json_encoder_writes_them() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "éü☃😀\u2028"

    def scalar() -> Any:
        return rng.choice([
            None, rng.random() < 0.5, rng.randint(-(2**65), 2**65), rng.uniform(-1e9, 1e9),
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))),
        ])  # fmt: skip

    for _ in range(500):
        value = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))): scalar() for _ in range(8)}
        read, text = codec.normalise(value, "result")
        assert text == REFERENCE.encode(value)
        assert read == json.loads(text)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_flat_object_holding_a_number_json_cannot_write_is_refused_naming_what_it_was(bad: float) -> None:
    with pytest.raises(NotSerializableError, match=r"the agent's result must be JSON-serialisable.*Out of range"):
        codec.normalise({"ok": True, "x": bad}, "the agent's result")


def test_a_flat_object_holding_text_that_is_not_utf8_is_refused_naming_where() -> None:
    with pytest.raises(InvalidTextError, match=r"the agent's result\['name'\] is not valid Unicode text"):
        codec.normalise({"ok": True, "name": "caf\udce9"}, "the agent's result")


def test_an_object_that_holds_itself_is_refused_and_not_looped_over() -> None:
    value: dict[str, Any] = {"a": 1}
    value["me"] = value
    with pytest.raises(NotSerializableError, match="Circular reference"):
        codec.normalise(value, "the agent's result")


def test_objects_that_are_not_plainly_flat_read_back_as_they_were_stored() -> None:
    # Keys that are not text become text; subclasses of str and int read back as the plain type; nested values
    # read back through the decoder.
    assert codec.normalise({1: "a", None: "b"}, "result") == ({"1": "a", "null": "b"}, '{"1":"a","null":"b"}')
    read, text = codec.normalise({"level": Level.LOW, "name": Name("x")}, "result")
    assert (read, text) == ({"level": 1, "name": "x"}, '{"level":1,"name":"x"}')
    assert type(read["level"]) is int and type(read["name"]) is str
    read, text = codec.normalise({"list": (1, 2), "inner": {"k": [None]}}, "result")
    assert (read, text) == ({"list": [1, 2], "inner": {"k": [None]}}, '{"list":[1,2],"inner":{"k":[null]}}')
