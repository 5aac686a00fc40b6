"""How deep values may nest: ``MAX_DEPTH`` where a value enters pepper, ``STORED_DEPTH`` for what pepper makes of
such values, and a YAML document measured (aliases too) without being read."""

from __future__ import annotations

from typing import Any

import pytest

from pepper.engine.executors.subprocess import parse_output
from pepper.errors import NestingTooDeepError, NotSerializableError, ValidationError
from pepper.http.nesting import check_document_depth, yaml_depth
from pepper.model import codec
from pepper.model.feedback import TaskFeedback
from pepper.model.submission import build_task


def nested(levels: int, inner: Any = 1) -> Any:
    """``inner`` inside ``levels`` lists (built without recursion, however deep)."""
    value = inner
    for _ in range(levels):
        value = [value]
    return value


def test_depth_counts_levels_of_lists_and_objects_and_stops_past_the_limit():
    assert codec.depth_of(1, 10) == 0 and codec.depth_of("text", 10) == 0
    assert codec.depth_of([], 10) == 1 and codec.depth_of({"a": 1, "b": "x"}, 10) == 1
    assert codec.depth_of({"a": [1], "b": {"c": [[]]}}, 10) == 4
    assert codec.depth_of(nested(50), 10) == 11  # counting stops one past the limit


def test_a_value_at_the_limit_is_kept_and_one_level_more_is_refused_naming_the_field_and_the_limit():
    value, text = codec.normalise({"x": nested(codec.MAX_DEPTH - 1)}, "inputs", depth=codec.MAX_DEPTH)
    assert codec.depth_of(value, 1000) == codec.MAX_DEPTH and codec.decode(text) == value
    with pytest.raises(NestingTooDeepError, match=r"^inputs nests lists and objects more than 100 levels deep") as bad:
        codec.normalise({"x": nested(codec.MAX_DEPTH)}, "inputs", depth=codec.MAX_DEPTH)
    assert bad.value.field == "inputs" and bad.value.limit == codec.MAX_DEPTH
    assert isinstance(bad.value, NotSerializableError) and isinstance(bad.value, ValidationError)


def test_what_pepper_makes_may_nest_deeper_up_to_the_stored_bound():
    made = [nested(codec.MAX_DEPTH), nested(codec.MAX_DEPTH)]  # a fan-out's results, each at the limit
    assert codec.depth_of(codec.normalise(made, "result")[0], 1000) == codec.MAX_DEPTH + 1
    with pytest.raises(NestingTooDeepError, match=f"more than {codec.STORED_DEPTH} levels"):
        codec.normalise(nested(codec.STORED_DEPTH + 1), "result")


def test_a_value_too_deep_to_be_written_at_all_is_refused_the_same_way():
    with pytest.raises(NestingTooDeepError, match=r"^the agent's result nests .* more than 100 levels"):
        codec.normalise(nested(100_000), "the agent's result", depth=codec.MAX_DEPTH)
    with pytest.raises(NestingTooDeepError, match=r"^the command's output nests"):
        parse_output(("[" * 100_000 + "]" * 100_000).encode())
    assert parse_output(b"[[1]]\n") == [[1]]


def test_tasks_and_feedback_refuse_inputs_metadata_and_metrics_past_the_limit():
    assert build_task(task_type="t", inputs={"x": nested(codec.MAX_DEPTH - 1)}).inputs["x"]
    for field in ("inputs", "metadata"):
        with pytest.raises(NestingTooDeepError, match=rf"^{field} nests"):
            build_task(task_type="t", **{field: {"x": nested(codec.MAX_DEPTH)}})
    with pytest.raises(NestingTooDeepError, match=r"^metrics nests"):
        TaskFeedback.build("t1", 3, metrics={"x": nested(codec.MAX_DEPTH)})


def test_a_yaml_document_is_measured_with_its_aliases_without_being_read():
    assert yaml_depth("a: 1", 100) == 1 and yaml_depth("a: {b: [[1]]}", 100) == 4 and yaml_depth("x", 100) == 0
    assert yaml_depth("a: &x [[1]]\nb: [*x]\nc: *x", 100) == 4  # b: a list holding x's two levels
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [[[[*a{i - 1}]]]]\n" for i in range(1, 40))
    assert yaml_depth(chain, 1000) == 158 and yaml_depth(chain, 100) > 100  # short text, deep through aliases
    assert yaml_depth("[" * 100_000 + "]" * 100_000, 100) == 101  # past what libyaml reads: Python's reader counts
    assert yaml_depth("a: [ : :", 100) == 0  # not YAML: reading it says what is wrong
    with pytest.raises(NestingTooDeepError, match=r"^workflow nests .* more than 100 levels"):
        check_document_depth(chain)
    with pytest.raises(NestingTooDeepError, match=r"^workflow nests"):
        check_document_depth({"name": "w", "steps": [{"inputs": {"x": nested(98)}}]})
    check_document_depth({"name": "w", "steps": [{"inputs": {"x": nested(96)}}]})  # 100 levels in all
