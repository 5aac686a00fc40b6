"""EngineState: what a failed task's recovery by hand takes back, and slots held by calls that outlived
their attempt. Events in, actions out; time is passed in."""

from __future__ import annotations

import pytest

from pepper.engine.state import EngineState
from pepper.model.events import (
    Abort,
    AgentAdded,
    AttemptEnded,
    CallHeld,
    CallReturned,
    CancelRequested,
    ErrorHandled,
    Save,
    TasksAdded,
    TasksLoaded,
    WriteRefused,
)
from pepper.model.recovery import Policy
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from tests.unit.test_state_machine import _record, agent, cancel, ends_stored, fail, ok, starts, task

BLOCKED, PENDING, CANCELLED = TaskState.BLOCKED, TaskState.PENDING, TaskState.CANCELLED
DOWN = TaskError("ConnectionError", "down")


@pytest.fixture
def state() -> EngineState:
    return EngineState("worker-a", backoff=Backoff(delay=1.0, multiplier=2.0, max_delay=60.0, jitter=0.0))


def handle(state: EngineState, task_id: str, policy: str, at: float):
    return ends_stored(state, at, state.handle(ErrorHandled(task_id, DOWN, Policy.parse(policy), at)))


def test_every_task_the_failure_cancelled_comes_back_even_behind_a_deeper_one(state):
    # root -> y -> x -> e and root -> d -> e: e comes back whichever of d and x its reason names
    state.handle(AgentAdded(agent("a", capacity=4), 0.0))
    graph = (task("root"), task("y", ["root"]), task("x", ["y"]), task("d", ["root"]), task("e", ["d", "x"]))
    state.handle(TasksAdded(graph, 1.0))
    fail(state, "root", 2.0)
    assert {t: state.tasks[t].state for t in "yxde"} == dict.fromkeys("yxde", CANCELLED)
    actions = handle(state, "root", "skip", 3.0)
    assert {t: state.tasks[t].state for t in "yxde"} == {"y": TaskState.IN_PROGRESS, "d": TaskState.IN_PROGRESS,
                                                         "x": BLOCKED, "e": BLOCKED}  # fmt: skip
    assert all(state.tasks[t].reason is None for t in "yxde")
    assert {a.task_id for a in actions if isinstance(a, Save)} >= set("yxde")
    assert sorted(starts(actions)) == ["d", "y"]
    ok(state, "y", 4.0)
    ok(state, "d", 4.0)
    ok(state, "x", 5.0)
    assert state.tasks["e"].state is TaskState.IN_PROGRESS


def test_only_what_the_failure_alone_cancelled_comes_back(state):
    state.handle(AgentAdded(agent("a", capacity=4), 0.0))
    state.handle(TasksAdded((task("root"), task("other")), 1.0))
    state.handle(TasksAdded((task("mine", ["root"]), task("both", ["root", "other"]), task("asked", ["root"]),
                             task("after-asked", ["asked"])), 1.0))  # fmt: skip
    cancel(state, "asked", 1.5, "not wanted")
    fail(state, "root", 2.0)
    fail(state, "other", 2.0)
    before = state.tasks["both"].reason
    handle(state, "root", "retry", 3.0)
    assert state.tasks["root"].state is PENDING  # waits out its back-off
    assert state.tasks["mine"].state is BLOCKED and state.tasks["mine"].unmet == 1
    assert (state.tasks["both"].state, state.tasks["both"].reason) == (CANCELLED, before)
    assert (state.tasks["asked"].state, state.tasks["asked"].reason) == (CANCELLED, "not wanted")
    assert (state.tasks["after-asked"].state, state.tasks["after-asked"].reason) == (
        CANCELLED, "dependency 'asked' cancelled")  # fmt: skip


def test_a_decision_that_leaves_the_task_failed_takes_nothing_back(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("root"), task("child", ["root"])), 1.0))
    fail(state, "root", 2.0)
    handle(state, "root", "abort", 3.0)
    assert state.tasks["child"].state is CANCELLED
    handle(state, "root", "dead_letter", 4.0)  # parked: the child waits for it again
    assert state.tasks["child"].state is BLOCKED


def test_a_held_slot_keeps_the_next_task_waiting_until_the_call_returns(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("slow"), task("next")), 1.0))
    assert state.tasks["slow"].state is TaskState.IN_PROGRESS
    assert state.handle(CallHeld("a", "slow", 1, 5.0)) == []
    timeout = TaskError("TimeoutError", "too long", kind="timeout")
    ended = state.handle(AttemptEnded("slow", 1, 5.0, False, error=timeout))
    assert starts(ended) == [] and state.tasks["next"].state is PENDING
    assert state.agents["a"].free == 0 and "1 of its 1 slot(s) held" in (state.agents["a"].status_note or "")
    assert state.handle(CallReturned("a", "other", 1, 6.0)) == []  # not a call it holds
    assert starts(state.handle(CallReturned("a", "slow", 1, 7.0))) == ["next"]
    assert state.agents["a"].status_note is None
    assert state.handle(CallReturned("a", "slow", 1, 8.0)) == []  # told twice: nothing more
    assert state.handle(CallHeld("gone", "x", 1, 9.0)) == [] and state.handle(CallReturned("gone", "x", 1, 9.0)) == []


@pytest.mark.parametrize("order", [("r1", "r2"), ("r2", "r1")])
def test_a_dependent_of_two_failed_tasks_comes_back_once_both_are_recovered_in_either_order(state, order):
    state.handle(AgentAdded(agent("a", capacity=4), 0.0))
    state.handle(TasksAdded((task("r1"), task("r2")), 1.0))
    state.handle(TasksAdded((task("x", ["r1", "r2"]), task("y", ["x"]), task("asked", ["r1", "r2"])), 1.0))
    cancel(state, "asked", 1.5, "not wanted")
    fail(state, "r1", 2.0)
    fail(state, "r2", 2.0)
    assert state.tasks["x"].reason == "dependency 'r1' failed"  # its reason names only the first
    handle(state, order[0], "skip", 3.0)
    assert (state.tasks["x"].state, state.tasks["y"].state) == (CANCELLED, CANCELLED)  # the other is still failed
    actions = handle(state, order[1], "skip", 4.0)
    assert starts(actions) == ["x"] and state.tasks["y"].state is BLOCKED
    assert (state.tasks["asked"].state, state.tasks["asked"].reason) == (CANCELLED, "not wanted")
    ok(state, "x", 5.0)
    assert state.tasks["y"].state is TaskState.IN_PROGRESS


@pytest.mark.parametrize("order", [("f1", "f2"), ("f2", "f1")])
def test_a_task_cancelled_through_two_failures_comes_back_once_both_are_recovered(state, order):
    # f1 -> a -> x and f2 -> b -> x: x names whichever of a and b was cancelled first
    state.handle(AgentAdded(agent("a", capacity=4), 0.0))
    state.handle(TasksAdded((task("f1"), task("f2")), 1.0))
    state.handle(TasksAdded((task("a", ["f1"]), task("b", ["f2"]), task("x", ["a", "b"])), 1.0))
    fail(state, "f1", 2.0)
    fail(state, "f2", 2.0)
    handle(state, order[0], "retry", 3.0)  # run again: what waits for it is blocked, x still cancelled
    assert state.tasks["x"].state is CANCELLED
    handle(state, order[1], "retry", 4.0)
    assert {t: state.tasks[t].state for t in "abx"} == dict.fromkeys("abx", BLOCKED)


def test_a_dependent_whose_other_dependency_was_cancelled_on_request_stays_cancelled(state):
    state.handle(AgentAdded(agent("a", capacity=4), 0.0))
    state.handle(TasksAdded((task("gate", ["later"]), task("r")), 1.0))
    state.handle(TasksAdded((task("x", ["r", "gate"]),), 1.0))
    cancel(state, "gate", 1.5, "not wanted")
    assert state.tasks["x"].reason == "dependency 'gate' cancelled"
    fail(state, "r", 2.0)
    handle(state, "r", "skip", 3.0)
    assert (state.tasks["x"].state, state.tasks["x"].reason) == (CANCELLED, "dependency 'gate' cancelled")


def _cancel(state: EngineState, at: float) -> list:
    return state.handle(CancelRequested("slow", at, "not wanted"))


def _by_hand(state: EngineState, at: float) -> list:
    return handle(state, "slow", "dead_letter", at)


def _taken_over(state: EngineState, at: float) -> list:
    theirs = _record(task("slow"), TaskState.IN_PROGRESS, owner="worker-b", attempts=2)
    return state.handle(TasksLoaded((theirs,), at, "conflict"))


def _refused(state: EngineState, at: float) -> list:
    return state.handle(WriteRefused("slow", TaskError("StoreError", "refused"), at))


@pytest.mark.parametrize("stop", [_cancel, _by_hand, _taken_over, _refused])
def test_every_abort_keeps_the_slot_until_the_call_stopped(state, stop):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("slow"), task("next")), 1.0))
    actions = stop(state, 2.0)
    assert [a.attempt for a in actions if isinstance(a, Abort)] == [1]
    # In the very turn that aborted it, nothing takes its slot: its call may still run.
    assert starts(actions) == [] and state.tasks["next"].state is PENDING
    assert state.agents["a"].held == {("slow", 1)} and state.agents["a"].free == 0
    assert state.handle(CallHeld("a", "slow", 1, 2.5)) == []  # a sync call runs on: still held
    assert starts(state.handle(CallReturned("a", "other", 1, 3.0))) == []
    assert starts(state.handle(CallReturned("a", "slow", 1, 4.0))) == ["next"]
    assert not state.agents["a"].held


def test_an_aborted_attempt_that_never_started_is_found_by_its_task(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("slow"), task("next")), 1.0))
    _cancel(state, 2.0)
    assert starts(state.handle(CallReturned("", "slow", 1, 2.0))) == ["next"]  # the shell knows no agent for it
