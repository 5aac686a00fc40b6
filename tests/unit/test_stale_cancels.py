"""A cancel decided on a row another process has changed since this engine read it: the cancel's write loses, and
what depends on the task is cancelled only with a cancel that was stored (never on its own)."""

from __future__ import annotations

import pytest

from pepper.engine.state import EngineState
from pepper.model.events import (
    AgentAdded,
    AttemptEnded,
    CancelRequested,
    EndsStored,
    Save,
    Settled,
    TasksAdded,
    TasksLoaded,
    Trim,
    WriteRefused,
)
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from tests.unit.test_state_machine import ME, _record, agent, starts, task

PENDING, BLOCKED, IN_PROGRESS = TaskState.PENDING, TaskState.BLOCKED, TaskState.IN_PROGRESS
COMPLETED, CANCELLED, FAILED = TaskState.COMPLETED, TaskState.CANCELLED, TaskState.FAILED


@pytest.fixture
def state() -> EngineState:
    return EngineState(ME)


def _stale_cancel(state: EngineState) -> list:
    """``root`` (run by no agent here) and its dependent ``after``; ``root`` is cancelled while memory holds it
    pending: the row may say otherwise by now."""
    state.handle(TasksAdded((task("root", task_type="elsewhere"), task("after", ["root"])), 0.0))
    return state.handle(CancelRequested("root", 1.0, "not needed"))


def _read_back(state: EngineState, record) -> list:
    return state.handle(TasksLoaded((record,), 2.0, "conflict"))


def test_the_dependents_of_a_cancel_are_cancelled_only_once_it_is_stored(state: EngineState) -> None:
    actions = _stale_cancel(state)
    assert actions == [Save("root"), Settled("root")]  # nothing of ``after`` goes with it
    assert state.tasks["after"].state is BLOCKED and set(state.cascades_unstored) == {"root"}
    actions = state.handle(EndsStored(("root",), 1.5))
    assert actions == [Save("after"), Settled("after")]
    assert (state.tasks["after"].state, state.tasks["after"].reason) == (CANCELLED, "dependency 'root' cancelled")
    assert not state.cascades_unstored


def test_a_cancel_that_lost_to_another_workers_claim_asks_that_worker_to_stop(state: EngineState) -> None:
    _stale_cancel(state)
    claimed = _record(task("root", task_type="elsewhere"), IN_PROGRESS, owner="worker-b", attempts=1, version=2)
    actions = _read_back(state, claimed)
    root = state.tasks["root"]
    assert (root.state, root.owner, root.cancel_requested, root.reason) == (IN_PROGRESS, "worker-b", True, "not needed")
    assert actions == [Save("root")]  # the request, for its worker to read
    assert state.tasks["after"].state is BLOCKED and not state.cascades_unstored
    assert "root" not in state.finished
    # A late word that the lost cancel was stored changes nothing.
    assert state.handle(EndsStored(("root",), 2.5)) == [] and state.tasks["after"].state is BLOCKED


def test_a_cancel_that_lost_to_a_completion_leaves_the_dependents_to_run(state: EngineState) -> None:
    state.handle(AgentAdded(agent("a"), 0.0))
    _stale_cancel(state)
    done = _record(task("root", task_type="elsewhere"), COMPLETED, owner=None, attempts=1, result=1, version=3)
    actions = _read_back(state, done)
    assert state.tasks["root"].state is COMPLETED and not state.tasks["root"].cancel_requested
    assert starts(actions) == ["after"] and Settled("root") in actions
    assert list(state.finished).count("root") == 1


def test_a_cancel_that_lost_to_a_row_still_pending_is_decided_again_on_it(state: EngineState) -> None:
    _stale_cancel(state)
    requeued = _record(task("root", task_type="elsewhere"), PENDING, attempts=1, version=3)
    actions = _read_back(state, requeued)
    assert state.tasks["root"].state is CANCELLED and Save("root") in actions
    assert state.tasks["after"].state is BLOCKED and set(state.cascades_unstored) == {"root"}
    state.handle(EndsStored(("root",), 2.5))
    assert state.tasks["after"].state is CANCELLED


def test_a_cancel_that_lost_to_a_cancel_from_elsewhere_cancels_the_dependents(state: EngineState) -> None:
    _stale_cancel(state)
    theirs = _record(task("root", task_type="elsewhere"), CANCELLED, reason="theirs", version=2)
    actions = _read_back(state, theirs)
    assert (state.tasks["root"].reason, state.tasks["after"].state) == ("theirs", CANCELLED)
    assert Save("after") in actions and not state.cascades_unstored


def test_a_running_task_cancelled_here_but_taken_over_meanwhile_is_asked_to_stop(state: EngineState) -> None:
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("root"), task("after", ["root"])), 0.0))
    state.handle(CancelRequested("root", 1.0, "not needed"))
    assert state.tasks["root"].state is CANCELLED and state.tasks["after"].state is BLOCKED
    theirs = _record(task("root"), IN_PROGRESS, owner="worker-b", attempts=2, version=4)
    assert _read_back(state, theirs) == [Save("root")]
    assert state.tasks["root"].cancel_requested and state.tasks["after"].state is BLOCKED


def test_a_cancel_still_written_over_our_own_claim_stands(state: EngineState) -> None:
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("root"), task("after", ["root"])), 0.0))
    state.handle(CancelRequested("root", 1.0, "not needed"))
    ours = _record(task("root"), IN_PROGRESS, owner=ME, attempts=1, agent_id="a", version=3)
    assert _read_back(state, ours) == [Save("root"), Settled("root")]  # written again, over the row read
    assert state.tasks["root"].state is CANCELLED and set(state.cascades_unstored) == {"root"}


def test_a_task_submitted_while_its_dependencys_cancel_is_not_stored_waits_for_it(state: EngineState) -> None:
    state.handle(AgentAdded(agent("a"), 0.0))
    _stale_cancel(state)
    state.handle(TasksAdded((task("late", ["root"]),), 1.2))
    assert state.tasks["late"].state is BLOCKED  # not cancelled in the same commit as the cancel it follows
    done = _record(task("root", task_type="elsewhere"), COMPLETED, attempts=1, result=1, version=3)
    assert sorted(starts(_read_back(state, done))) == ["after"]  # one agent slot: ``late`` queues behind
    assert state.tasks["late"].state is PENDING


def test_a_task_whose_cancel_is_not_stored_is_not_forgotten() -> None:
    state = EngineState(ME, keep_finished=0)
    _stale_cancel(state)
    state.handle(Trim(1.5))
    assert "root" in state.tasks
    claimed = _record(task("root", task_type="elsewhere"), IN_PROGRESS, owner="worker-b", attempts=1, version=2)
    assert _read_back(state, claimed) == [Save("root")]


def test_a_cancel_the_store_refuses_ends_the_task_failed_and_its_dependents_cancelled(state: EngineState) -> None:
    _stale_cancel(state)
    state.handle(WriteRefused("root", TaskError("StoreError", "refused"), 2.0))
    assert (state.tasks["root"].state, state.tasks["after"].state) == (TaskState.FAILED, CANCELLED)
    assert not state.cascades_unstored


# -- a failure decided here, whose write may lose the same way ------------------------------------------------


def _failed_here(state: EngineState) -> list:
    """``root`` runs here with no retries left and fails; ``after`` depends on it."""
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("root", max_retries=0), task("after", ["root"])), 0.0))
    assert state.tasks["root"].state is IN_PROGRESS
    attempt = state.tasks["root"].attempts
    return state.handle(AttemptEnded("root", attempt, 1.0, False, error=TaskError("ValueError", "boom")))


def test_the_dependents_of_a_failure_are_cancelled_only_once_it_is_stored(state: EngineState) -> None:
    actions = _failed_here(state)
    assert state.tasks["root"].state is FAILED and Settled("root") in actions
    assert Save("after") not in actions and state.tasks["after"].state is BLOCKED  # nothing of ``after`` goes with it
    assert state.handle(EndsStored(("root",), 1.5)) == [Save("after"), Settled("after")]
    assert (state.tasks["after"].state, state.tasks["after"].reason) == (CANCELLED, "dependency 'root' failed")


def test_a_failure_that_lost_to_a_take_over_leaves_the_dependents_to_the_tasks_real_end(state: EngineState) -> None:
    _failed_here(state)
    # Another worker had presumed this one dead and runs the task again: the failure's write lost to its claim.
    taken = _record(task("root", max_retries=0), IN_PROGRESS, owner="worker-b", attempts=2, version=4)
    actions = _read_back(state, taken)
    root = state.tasks["root"]
    assert (root.state, root.owner, root.cancel_requested) == (IN_PROGRESS, "worker-b", False)  # not decided again
    assert Save("root") not in actions and not state.cascades_unstored
    assert state.tasks["after"].state is BLOCKED
    assert state.handle(EndsStored(("root",), 2.5)) == [] and state.tasks["after"].state is BLOCKED
    done = _record(task("root", max_retries=0), COMPLETED, owner=None, attempts=2, result=1, version=5)
    assert starts(_read_back(state, done)) == ["after"]  # it ends completed there: its dependent runs


def test_a_task_whose_end_is_not_stored_yet_is_forgotten_by_a_later_trim() -> None:
    state = EngineState(ME, keep_finished=0)
    state.handle(TasksAdded((task("x", task_type="elsewhere"), task("y", ["x"], task_type="elsewhere")), 0.0))
    state.handle(CancelRequested("x", 1.0, "not needed"))
    assert state.handle(Trim(1.1)) == [] and "x" in state.tasks  # its cancel is not stored: kept
    state.handle(EndsStored(("x",), 2.0))  # stored: ``y`` is cancelled, and its own cancel waits to be stored
    state.handle(EndsStored(("y",), 3.0))
    forgotten = {a.task_id for a in state.handle(Trim(3.1))}
    assert forgotten == {"x", "y"} and state.tasks == {} and not state.finished
