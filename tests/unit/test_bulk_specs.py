"""Specs of one shape in a batch are checked once; each task still gets its own id, checked, and its own inputs."""

from __future__ import annotations

import dataclasses

import pytest

from pepper.errors import InvalidPriorityError, ValidationError
from pepper.model import submission
from pepper.model.record import TaskRecord, task_status
from pepper.model.slots import quick_init
from pepper.model.status import TaskStatus
from pepper.model.submission import build_task, tasks_from_specs
from pepper.model.task import Task, TaskState


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The ids of the specs whose fields were checked one by one (``build_task`` ran for them)."""
    calls: list[object] = []
    original = submission.build_task

    def counting(**fields: object) -> Task:
        calls.append(fields.get("task_id"))
        return original(**fields)  # type: ignore[arg-type]

    monkeypatch.setattr(submission, "build_task", counting)
    return calls


def test_tasks_of_one_shape_equal_those_built_one_by_one(built: list[object]) -> None:
    calls = built
    specs = [{"id": f"t{i}", "type": "review", "priority": "high", "retries": 2, "timeout": "5m"} for i in range(50)]
    tasks = tasks_from_specs(specs, now=100.0)
    assert calls == ["t0"]  # the others took its checked fields
    for spec, task in zip(specs, tasks, strict=True):
        alone = build_task(task_id=spec["id"], task_type="review", priority="high", max_retries=2, timeout="5m",
                           now=100.0)  # fmt: skip
        assert task == alone and task.created_at == alone.created_at and task.inputs_json == alone.inputs_json


def test_tasks_differing_in_their_dependencies_too_are_checked_once_and_keep_their_own(
    built: list[object],
) -> None:
    calls = built
    specs = [{"id": f"t{i}", "type": "t", "dependencies": [f"t{j}" for j in range(i)]} for i in range(4)]
    specs += [{"id": "u", "type": "t", "dependencies": ("t1", "t1", "t2")}, {"id": "v", "type": "t", "needs": []}]
    tasks = tasks_from_specs(specs, now=3.0)
    assert calls == ["t0", "v"]  # one full check per key the dependencies come under
    assert [t.dependencies for t in tasks] == [(), ("t0",), ("t0", "t1"), ("t0", "t1", "t2"), ("t1", "t2"), ()]
    for task in tasks:
        alone = build_task(task_id=task.task_id, task_type="t", dependencies=task.dependencies, now=3.0)
        assert task == alone and task.inputs_json == alone.inputs_json


@pytest.mark.parametrize("bad", [[""], [" x"], ["bad\udc80"], [7], "t0", 5, [["t0"]]])
def test_bad_dependencies_later_in_a_batch_are_refused_as_when_alone(bad: object) -> None:
    with pytest.raises(ValidationError) as alone:
        tasks_from_specs([{"id": "b", "type": "t", "dependencies": bad}], now=0.0)
    with pytest.raises(ValidationError) as later:
        tasks_from_specs([{"id": "a", "type": "t", "dependencies": []}, {"id": "b", "type": "t", "dependencies": bad}],
                         now=0.0)  # fmt: skip
    assert (str(later.value), later.value.field) == (str(alone.value), alone.value.field)


def test_dependencies_given_twice_are_refused_in_a_batch_too() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        specs = [{"id": "a", "type": "t", "needs": []}, {"id": "b", "type": "t", "needs": [], "depends_on": []}]
        tasks_from_specs(specs, now=0.0)


def test_each_task_of_a_shape_has_inputs_and_metadata_of_its_own() -> None:
    first, second = tasks_from_specs([{"id": "a", "type": "t"}, {"id": "b", "type": "t"}], now=0.0)
    assert first.inputs == second.inputs == {} and first.inputs is not second.inputs
    assert first.metadata is not second.metadata


@pytest.mark.parametrize("bad", [" padded", 7, "bad\udc80", "x" * 201, ""])
def test_a_bad_id_later_in_a_batch_is_refused_as_when_alone(bad: object) -> None:
    with pytest.raises(ValidationError) as alone:
        tasks_from_specs([{"id": bad, "type": "t"}], now=0.0)
    with pytest.raises(ValidationError) as later:
        tasks_from_specs([{"id": "good", "type": "t"}, {"id": bad, "type": "t"}], now=0.0)
    assert (str(later.value), later.value.field) == (str(alone.value), alone.value.field)
    assert later.value.field == "task_id"


def test_values_equal_but_of_other_types_are_checked_on_their_own() -> None:
    # 10 == 10.0 == True-ish values must not borrow each other's check: a bool priority is refused
    with pytest.raises(InvalidPriorityError):
        tasks_from_specs([{"id": "a", "type": "t", "priority": 1}, {"id": "b", "type": "t", "priority": True}], 0.0)
    with pytest.raises(ValidationError, match="max_retries"):
        tasks_from_specs([{"id": "a", "type": "t", "retries": 1}, {"id": "b", "type": "t", "retries": 1.0}], 0.0)


def test_ids_left_out_or_given_by_another_alias_are_handled_per_task() -> None:
    a, b = tasks_from_specs([{"type": "t"}, {"type": "t"}], now=0.0)
    assert a.task_id != b.task_id and a.task_id.startswith("task-")
    c, d = tasks_from_specs([{"task_id": "c", "type": "t"}, {"id": "d", "type": "t"}], now=0.0)
    assert (c.task_id, d.task_id) == ("c", "d")
    with pytest.raises(ValidationError, match="given twice"):
        tasks_from_specs([{"id": "e", "type": "t"}, {"id": "f", "task_id": "f", "type": "t"}], now=0.0)


def test_specs_with_containers_are_each_checked_in_full() -> None:
    tasks = tasks_from_specs([{"id": f"t{i}", "type": "t", "inputs": {"n": i}} for i in range(3)], now=0.0)
    assert [t.inputs for t in tasks] == [{"n": 0}, {"n": 1}, {"n": 2}]
    with pytest.raises(ValidationError, match="dependency id"):
        tasks_from_specs([{"id": "a", "type": "t", "needs": ["x"]}, {"id": "b", "type": "t", "needs": [""]}], 0.0)


def test_quick_init_builds_what_init_builds_with_the_same_defaults() -> None:
    make = quick_init(Task)
    assert make("a", "t") == Task("a", "t")
    assert make("a", "t").inputs is not make("a", "t").inputs  # a default factory is called each time
    status = quick_init(TaskStatus)("a", "t", TaskState.PENDING, 10)
    assert status == TaskStatus("a", "t", TaskState.PENDING, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.attempts = 3  # type: ignore[misc]


@dataclasses.dataclass(frozen=True, slots=True)
class _Base:
    a: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Derived(_Base):
    b: str = "x"


def test_quick_init_builds_instances_of_the_class_itself_with_or_without_a_base_class() -> None:
    import pickle

    for cls, args in ((_Base, (1,)), (_Derived, (1, "y")), (_Derived, (2,)), (TaskStatus, ("a", "t", "pending", 1))):
        built = quick_init(cls)(*args)
        assert type(built) is cls and built == cls(*args) and pickle.loads(pickle.dumps(built)) == built
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick_init(_Base)(1).a = 3  # type: ignore[misc]


def test_quick_init_refuses_a_class_it_would_build_wrongly() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            raise AssertionError("never skipped")

    with pytest.raises(TypeError, match="__post_init__"):
        quick_init(Checked)


def test_a_status_shows_every_field_of_its_record_and_spec() -> None:
    task = build_task(task_id="a", task_type="t", inputs={"x": 1}, policy="retry(2)", now=5.0)
    record = TaskRecord(task, TaskState.PARKED, attempts=3, agent_id="ag", started_at=6.0, finished_at=7.0,
                        result=[1], parked_at=8.0, reason="why")  # fmt: skip
    status = task_status(record, ())
    expected = {name: getattr(record, name) for name in ("state", "attempts", "agent_id", "started_at",
                "finished_at", "result", "parked_at", "reason")}  # fmt: skip
    expected |= {name: getattr(task, name) for name in ("task_id", "task_type", "priority", "dependencies",
                 "max_retries", "created_at", "inputs", "not_before")}  # fmt: skip
    assert {name: getattr(status, name) for name in expected} == expected
    assert status.policy == str(task.policy) and status.waiting_on == ()


def test_specs_like_the_one_before_or_not_each_get_their_own_fields(built: list[object]) -> None:
    specs = [
        {"id": "a1", "type": "t", "priority": "high"},
        {"id": "b1", "type": "t", "retries": 3},  # as many keys, another one
        {"id": "a2", "type": "t", "priority": "high"},
        {"priority": "high", "type": "t", "id": "a3"},  # the same keys in another order
        {"id": "b2", "type": "t", "retries": 3},
        {"id": "c1", "type": "t", "retries": 4},  # the same keys, another value
        {"id": "d1", "type": "u", "retries": 4, "needs": ["a1"]},
        {"id": "d2", "type": "u", "retries": 4, "needs": ("b1", "a1")},
    ]
    tasks = tasks_from_specs(specs, now=5.0)
    assert built == ["a1", "b1", "c1", "d1"]  # each shape is checked once, whatever came between
    for spec, task in zip(specs, tasks, strict=True):
        assert task == tasks_from_specs([spec], now=5.0)[0]
    assert [t.dependencies for t in tasks[6:]] == [("a1",), ("b1", "a1")]
    with pytest.raises(InvalidPriorityError):  # a bad value right after a good one of its shape is refused
        tasks_from_specs([{"id": "e1", "type": "t", "priority": "high"}, {"id": "e2", "type": "t", "priority": "x"}], 0)
    with pytest.raises(ValidationError, match="dependencies"):  # dependencies that are not a list, likewise
        tasks_from_specs([{"id": "f1", "type": "t", "needs": []}, {"id": "f2", "type": "t", "needs": "f1"}], 0.0)
