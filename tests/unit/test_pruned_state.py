"""EngineState and pruned tasks: memory of a task whose row a prune deleted goes, and only that task's."""

from __future__ import annotations

from pepper.engine.state import EngineState
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    Abort,
    AgentAdded,
    AttemptEnded,
    Forget,
    Pruned,
    Start,
    TasksAdded,
    TasksLoaded,
)
from pepper.model.record import TaskRecord
from pepper.model.submission import build_task
from pepper.model.task import TaskState

ME = "worker-a"


def task(task_id: str, now: float, deps=(), **inputs: int):
    return build_task(task_id=task_id, task_type="t", dependencies=list(deps), inputs=inputs, now=now)


def engine_with_x_completed() -> EngineState:
    state = EngineState(ME)
    state.handle(AgentAdded(AgentSpec.build("a", task_types=["t"]), 0.0))
    state.handle(TasksAdded((task("X", 1.0, v=1),), 1.0))
    state.handle(AttemptEnded("X", 1, 2.0, True, {"old": True}, None))
    assert state.tasks["X"].state is TaskState.COMPLETED and list(state.finished) == ["X"]
    return state


def test_a_pruned_task_is_forgotten_and_its_id_is_unknown_again():
    state = engine_with_x_completed()
    actions = state.handle(Pruned((("X", 1.0),), 3.0))
    assert actions == [Forget("X")]
    assert "X" not in state.tasks and not state.finished
    # a dependent taken in afterwards waits for X to be submitted
    state.handle(TasksAdded((task("D", 4.0, deps=["X"]),), 4.0))
    assert state.tasks["D"].state is TaskState.BLOCKED and state.awaiting == {"X": ["D"]}


def test_a_prune_of_an_earlier_task_of_the_id_leaves_a_later_one_alone():
    state = engine_with_x_completed()
    assert state.handle(Pruned((("X", 0.5),), 3.0)) == []  # created at another time: not the task held
    assert state.tasks["X"].state is TaskState.COMPLETED


def test_a_running_attempt_of_a_pruned_task_is_stopped():
    state = EngineState(ME)
    state.handle(AgentAdded(AgentSpec.build("a", task_types=["t"]), 0.0))
    assert [type(a) for a in state.handle(TasksAdded((task("X", 1.0),), 1.0))][-1] is Start
    actions = state.handle(Pruned((("X", 1.0),), 2.0))
    assert [type(a) for a in actions] == [Abort, Forget] and "X" not in state.tasks


def test_a_row_of_a_held_id_created_at_another_time_is_a_new_task_with_its_own_spec():
    state = engine_with_x_completed()
    new = TaskRecord(task("X", 5.0, v=2), TaskState.PENDING, ready_at=5.0)
    actions = state.handle(TasksLoaded((new,), 5.0))
    held = state.tasks["X"]
    assert held.task.inputs == {"v": 2} and held.task.created_at == 5.0
    assert (held.state, held.attempts, held.result) == (TaskState.IN_PROGRESS, 1, None)
    assert [a for a in actions if isinstance(a, Start)] == [Start("X", 1, "a")]
    assert list(state.finished) == []  # the old X is no longer counted among the finished tasks held
