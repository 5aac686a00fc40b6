"""Every change carries its cause: events name what set them off, actions carry it on, logs show it."""

from __future__ import annotations

import logging

from pepper.engine.state import EngineState
from pepper.engine.tracing import trace
from pepper.model.agent import AgentSpec
from pepper.model.events import AgentAdded, AttemptEnded, Decided, ErrorHandled, RecordError, Start, TasksAdded
from pepper.model.recovery import Policy
from pepper.model.status import TaskError
from pepper.model.submission import build_task


def engine() -> EngineState:
    state = EngineState("me")
    state.handle(AgentAdded(AgentSpec.build("a", task_types=["t"]), 0.0, cause="agent:a"))
    return state


def test_every_action_carries_the_cause_of_the_event_it_answers():
    # Given a task and its dependent, submitted together
    state = engine()
    tasks = (build_task(task_id="p", task_type="t"), build_task(task_id="c", task_type="t", dependencies=["p"]))
    # When they are added, and the first one's attempt ends
    added = state.handle(TasksAdded(tasks, 1.0, "submit:p"))
    ended = state.handle(AttemptEnded("p", 1, 2.0, True, cause="attempt:p:1"))
    # Then every action says which event it answers
    assert added and {a.cause for a in added} == {"submit:p"}
    assert [a.task_id for a in ended if isinstance(a, Start)] == ["c"]
    assert {a.cause for a in ended} == {"attempt:p:1"}


def test_a_recovery_decision_is_returned_as_an_action():
    # Given a running task
    state = engine()
    state.handle(TasksAdded((build_task(task_id="x", task_type="t"),), 0.0))
    # When someone handles an error of it by hand
    error = TaskError("Stuck", "no progress")
    actions = state.handle(ErrorHandled("x", error, Policy.parse("dead_letter"), 1.0, "handle:x"))
    # Then the decision comes back with the actions, beside its entry in the error history
    (decision,) = [a for a in actions if isinstance(a, Decided)]
    (record,) = [a for a in actions if isinstance(a, RecordError)]
    assert decision == Decided("x", "dead_letter", "dead_letter", record.detail, "handle:x")
    assert not hasattr(state, "last_decision")


def test_each_action_is_logged_with_a_stable_name_and_its_cause(caplog):
    # Given the actions of claiming a task
    state = engine()
    actions = state.handle(TasksAdded((build_task(task_id="t", task_type="t"),), 1.0, "submit:t"))
    # When the shell traces them at DEBUG
    with caplog.at_level(logging.DEBUG, logger="pepper.engine"):
        trace(actions, state.tasks)
    # Then each log record names the action, the task and the cause in its extras
    got = [(r.action, r.task_id, r.cause, getattr(r, "state", None)) for r in caplog.records]
    assert got == [("save", "t", "submit:t", "in_progress"), ("start", "t", "submit:t", None)]
