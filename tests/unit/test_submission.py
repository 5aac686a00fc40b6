"""Validation of what callers submit: every bad input is a typed error naming the problem."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import pytest

from pepper.errors import (
    CycleError,
    DuplicateTaskError,
    InvalidPriorityError,
    NotSerializableError,
    PepperError,
    ValidationError,
)
from pepper.model.step_tasks import new_run_id, run_namespace
from pepper.model.submission import build_task, prepare, task_from_mapping
from pepper.model.task import Priority, Task


class Stored:
    """A tiny stand-in for what a store knows, to test ``prepare`` without one."""

    def __init__(self, *tasks: Task, runs: Collection[str] = ()) -> None:
        self.tasks = {t.task_id: t for t in tasks}
        self.runs = set(runs)
        self.asked: list[set[str]] = []  # the run ids asked about

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        return {tid: self.tasks[tid] for tid in task_ids if tid in self.tasks}

    def awaited(self, task_ids: Collection[str]) -> bool:
        return any(dep in task_ids for t in self.tasks.values() for dep in t.dependencies)

    def deps_of(self, task_id: str) -> Iterable[str]:
        return self.tasks[task_id].dependencies if task_id in self.tasks else ()

    def runs_among(self, run_ids: Collection[str]) -> Collection[str]:
        self.asked.append(set(run_ids))
        return self.runs & set(run_ids)


def test_priorities_accept_names_aliases_and_integers():
    assert Priority.parse("critical") > Priority.parse("high") > Priority.parse("normal") > Priority.parse("low")
    assert Priority.parse("medium") == Priority.parse("normal") == 10
    assert Priority.parse(-3) == -3
    assert Priority.label(20) == "high" and Priority.label(15) == "15"


@pytest.mark.parametrize("bad", ["urgent", "", True, 1.5, None, 10**7])
def test_an_unknown_priority_is_refused_with_the_valid_ones_listed(bad):
    with pytest.raises(InvalidPriorityError) as caught:
        build_task(task_type="t", priority=bad)
    assert "critical, high, medium, normal, low" in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, PepperError)


def test_a_close_misspelling_gets_a_suggestion():
    with pytest.raises(InvalidPriorityError, match="Did you mean 'high'"):
        build_task(task_type="t", priority="hihg")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout", -1, "cannot be negative"),
        ("timeout", 0, "must be positive"),
        ("timeout", "soon", "not a duration"),
        ("max_retries", -1, "max_retries"),
        ("max_retries", 1.5, "max_retries"),
        ("dependencies", "task_122", "list of task ids"),
        ("dependencies", [""], "non-empty"),
        ("task_id", "  padded ", "surrounding spaces"),
        ("task_id", "line\nbreak", "unprintable"),
        ("metadata", ["not", "a", "mapping"], "metadata must be a mapping"),
        ("requirements", {"skils": ["x"]}, "Did you mean 'skills'"),
        ("requirements", {"performance_score": 1.5}, "between 0 and 1"),
        ("requirements", {"resources": {"cpu": -1}}, "cannot be negative"),
        ("requirements", {"resources": {"memory": "4Gx"}}, "unknown unit"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(field, value, message):
    with pytest.raises(ValidationError, match=message):
        build_task(task_type="t", **{field: value})


def test_inputs_must_be_json():
    with pytest.raises(NotSerializableError, match="inputs must be JSON-serialisable"):
        build_task(task_type="t", inputs={"when": object()})
    with pytest.raises(NotSerializableError):
        build_task(task_type="t", inputs={"x": float("nan")})


def test_inputs_are_stored_as_they_will_read_back():
    task = build_task(task_type="t", inputs={"pair": (1, 2), 3: "three"})
    assert task.inputs == {"pair": [1, 2], "3": "three"}
    assert task.inputs_json == '{"pair":[1,2],"3":"three"}'


def test_durations_and_generated_ids():
    task = build_task(task_type="t", timeout="2m")
    assert task.timeout == 120.0
    assert task.task_id.startswith("task-") and len(task.task_id) == 17


def test_task_mappings_accept_short_aliases_and_refuse_unknown_fields():
    task = task_from_mapping({"id": "a", "type": "review", "dependencies": ["b"]}, now=5.0)
    assert (task.task_id, task.task_type, task.dependencies, task.created_at) == ("a", "review", ("b",), 5.0)
    with pytest.raises(ValidationError, match="unknown task field 'dependsOn'"):
        task_from_mapping({"id": "a", "type": "t", "dependsOn": ["b"]}, now=0.0)
    with pytest.raises(ValidationError, match="needs a type"):
        task_from_mapping({"id": "a"}, now=0.0)


def test_a_self_dependency_is_a_cycle():
    with pytest.raises(CycleError) as caught:
        prepare([build_task(task_id="a", task_type="t", dependencies=["a"])], Stored())
    assert caught.value.cycle == ("a", "a")


def test_a_cycle_within_a_batch_is_named_in_order():
    batch = [
        build_task(task_id="a", task_type="t", dependencies=["c"]),
        build_task(task_id="b", task_type="t", dependencies=["a"]),
        build_task(task_id="c", task_type="t", dependencies=["b"]),
    ]
    with pytest.raises(CycleError) as caught:
        prepare(batch, Stored())
    assert "a -> c -> b -> a" in str(caught.value)


def test_a_cycle_closed_through_a_stored_task_waiting_for_a_new_id_is_found():
    stored = Stored(build_task(task_id="x", task_type="t", dependencies=["y"]))
    with pytest.raises(CycleError) as caught:
        prepare([build_task(task_id="y", task_type="t", dependencies=["x"])], stored)
    assert caught.value.cycle == ("y", "x", "y")


def test_resubmitting_the_same_spec_is_idempotent_and_a_different_spec_is_refused():
    original = build_task(task_id="a", task_type="t", inputs={"n": 1}, now=1.0)
    stored = Stored(original)
    again = prepare([build_task(task_id="a", task_type="t", inputs={"n": 1}, now=99.0)], stored)
    assert again.new == () and again.tasks == (original,)
    with pytest.raises(DuplicateTaskError) as caught:
        prepare([build_task(task_id="a", task_type="t", inputs={"n": 2})], stored)
    assert caught.value.differences == ("inputs",)
    assert str(caught.value).startswith("task 'a' already exists with different inputs; re-submitting the same id")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"dry_run": 1}, {"dry_run": True}),
        ({"n": False}, {"n": 0}),
        ({"n": 1}, {"n": 1.0}),
        ({"deep": [{"on": True}]}, {"deep": [{"on": 1}]}),
        ({"deep": {"x": 0.0}}, {"deep": {"x": 0}}),
    ],
)
@pytest.mark.parametrize("field", ["inputs", "metadata"])
def test_values_equal_in_python_but_of_another_type_are_another_spec(field, first, second):
    stored = Stored(build_task(task_id="a", task_type="t", **{field: first}))
    with pytest.raises(DuplicateTaskError) as caught:
        prepare([build_task(task_id="a", task_type="t", **{field: second})], stored)
    assert caught.value.differences == (field,)
    twice = [
        build_task(task_id="b", task_type="t", **{field: first}),
        build_task(task_id="b", task_type="t", **{field: second}),
    ]
    with pytest.raises(DuplicateTaskError):
        prepare(twice, Stored())


def test_the_same_values_in_another_key_order_are_the_same_spec():
    stored = Stored(
        build_task(task_id="a", task_type="t", inputs={"x": 1, "y": [True, 2.5]}, metadata={"p": 1, "q": None})
    )
    again = build_task(task_id="a", task_type="t", inputs={"y": [True, 2.5], "x": 1}, metadata={"q": None, "p": 1})
    assert prepare([again], stored).new == ()


def test_an_id_twice_in_one_submission_with_different_specs_is_named_as_such():
    twice = [build_task(task_id="a", task_type="t", inputs={"n": 1}), build_task(task_id="a", task_type="t")]
    with pytest.raises(DuplicateTaskError) as caught:
        prepare(twice, Stored())
    assert caught.value.differences == ("inputs",) and caught.value.task_id == "a"
    assert str(caught.value).startswith("task id 'a' appears twice in this submission, with different inputs")
    same = prepare([build_task(task_id="a", task_type="t"), build_task(task_id="a", task_type="t")], Stored())
    assert [t.task_id for t in same.new] == ["a"]


def test_dependency_order_does_not_change_a_spec():
    first = build_task(task_id="a", task_type="t", dependencies=["x", "y"])
    assert prepare([build_task(task_id="a", task_type="t", dependencies=["y", "x"])], Stored(first)).new == ()


def test_one_bad_task_rejects_the_whole_batch():
    batch = [build_task(task_id="ok", task_type="t"), build_task(task_id="ok", task_type="other")]
    with pytest.raises(DuplicateTaskError):
        prepare(batch, Stored())


def test_ids_in_a_runs_namespace_are_refused_and_only_run_shaped_prefixes_are_looked_up():
    run_id = new_run_id("docs site")
    assert run_namespace(f"{run_id}/build") == run_id and run_namespace(f"{run_id}/docs[3]") == run_id
    for plain in ("team/build", "a/b/c", "docs-site-3f2a9c1e0/x", "docs-site-3F2A9C1E0B/x", f"{run_id}/", run_id):
        assert run_namespace(plain) is None
    stored = Stored(runs=[run_id])
    with pytest.raises(ValidationError, match=f"namespace of workflow run '{run_id}'") as refused:
        prepare([build_task(task_id="mine", task_type="t"), build_task(task_id=f"{run_id}/docs[0]", task_type="t")],
                stored)  # fmt: skip
    assert refused.value.field == "task_id"
    other = new_run_id("docs site")  # shaped like a run's, but no such run
    done = prepare([build_task(task_id=f"{other}/x", task_type="t"), build_task(task_id="a/b", task_type="t")], stored)
    assert [t.task_id for t in done.new] == [f"{other}/x", "a/b"]
    assert stored.asked == [{run_id}, {other}]  # "a/b" was never looked up
