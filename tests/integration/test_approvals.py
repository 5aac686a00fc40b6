"""Approval steps on a real engine and SQLite file: waiting for a person, approve and reject, the deadline on
the engine's clock, the recovery policy, typed errors that change nothing, restarts and two processes."""

from __future__ import annotations

import time

import pytest

import pepper
from pepper.core import WorkflowController
from pepper.engine.clock import ManualClock
from pepper.errors import (
    InvalidTextError,
    NotApproverError,
    NotWaitingError,
    RunNotFoundError,
    StepNotFoundError,
    StoreBusyError,
    ValidationError,
    WorkflowDefinitionError,
)
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}
# On a manual clock moved on by an hour, timers of the engine's own upkeep run once per interval: keep them few.
VIRTUAL = {
    "retry_delay": "10ms",
    "poll_interval": "5m",
    "heartbeat_interval": "10m",
    "visibility_timeout": "1h",
    "shutdown_timeout": "2s",
}
APPROVER = "approver@example.com"


def make_runtime(tmp_path, **extra):
    return pepper.Runtime(db=str(tmp_path / "a.db"), home=str(tmp_path / "home"), **FAST, **extra)


def gated(runtime, recovery=None, timeout="1h"):
    @pepper.agent("worker", task_types=["build", "ship"], runtime=runtime)
    def work(task):
        return {"step": task.step_id, "got": dict(task.dependency_results)}

    workflow = WorkflowController("release", runtime)
    workflow.add_step("build", "build")
    workflow.add_step("gate", dependencies=["build"], approval={"timeout": timeout, "approvers": [APPROVER]},
                      recovery=recovery)  # fmt: skip
    workflow.add_step("ship", "ship", dependencies=["gate"])
    return workflow


def waiting(runtime, run_id, step="gate"):
    return eventually(
        lambda: next((a for a in runtime.store.approvals.of_run(run_id) if a.step_id == step and a.waiting), None),
        "the approval request",
    )


def test_an_approved_step_lets_the_run_go_on_and_its_result_says_who_approved(tmp_path):
    with make_runtime(tmp_path) as runtime:
        workflow = gated(runtime)
        run_id = workflow.start()
        request = waiting(runtime, run_id)
        assert request.approvers == (APPROVER,) and request.deadline == pytest.approx(request.requested_at + 3600)
        assert workflow.status(run_id)["ship"].state is None or workflow.status(run_id)["ship"].status != "completed"

        decided = workflow.approve(run_id, "gate", by=APPROVER, reason="looks good")

        assert decided.decision == "approved" and decided.decided_by == APPROVER
        result = workflow.wait(run_id, timeout=60)
        assert result.status == "completed"
        assert result["gate"].result == {"approved": True, "by": APPROVER, "reason": "looks good"}
        assert result["ship"].result["got"]["gate"]["approved"] is True


def test_a_rejected_step_fails_and_its_dependents_never_run(tmp_path):
    with make_runtime(tmp_path) as runtime:
        workflow = gated(runtime)
        run_id = workflow.start()
        waiting(runtime, run_id)
        workflow.approve(run_id, "gate", approve=False, by=APPROVER, reason="not today")
        result = workflow.wait(run_id, timeout=60)
        assert result.status == "failed"
        assert result["gate"].status == "failed"
        assert "rejected by approver@example.com: not today" in result["gate"].error.message
        assert result["ship"].status == "cancelled"


def test_a_decision_is_recorded_once_and_bad_requests_change_nothing(tmp_path):
    with make_runtime(tmp_path) as runtime:
        workflow = gated(runtime)
        run_id = workflow.start()
        waiting(runtime, run_id)
        with pytest.raises(RunNotFoundError):
            workflow.approve("no-such-run", "gate", by=APPROVER)
        with pytest.raises(StepNotFoundError, match="its steps: build, gate, ship"):
            workflow.approve(run_id, "gaet", by=APPROVER)
        with pytest.raises(NotWaitingError, match="not an approval step"):
            workflow.approve(run_id, "build", by=APPROVER)
        with pytest.raises(NotApproverError, match=r"waits for approver@example\.com"):
            workflow.approve(run_id, "gate", by="someone-else@example.com")
        with pytest.raises(InvalidTextError, match="reason"):  # a lone surrogate: not text the database can hold
            workflow.approve(run_id, "gate", by=APPROVER, reason="ok \ud800")
        with pytest.raises(ValidationError, match="reason must be text"):
            workflow.cancel(run_id, reason=42)
        with pytest.raises(InvalidTextError, match="reason"):
            workflow.cancel(run_id, reason="stop \ud800")
        assert runtime.store.approvals.get(f"{run_id}/gate").waiting  # nothing changed
        assert runtime.store.runs.get(run_id).state.value == "running"

        workflow.approve(run_id, "gate", by=APPROVER)
        with pytest.raises(NotWaitingError, match=r"approved by approver@example\.com"):
            workflow.approve(run_id, "gate", approve=False, by=APPROVER)
        assert runtime.store.approvals.get(f"{run_id}/gate").decision == "approved"
        assert workflow.wait(run_id, timeout=60).status == "completed"


def test_a_step_not_reached_yet_does_not_take_a_decision(tmp_path):
    with make_runtime(tmp_path) as runtime:

        @pepper.agent("slow", task_types=["build"], runtime=runtime)
        def build(task):
            time.sleep(0.3)
            return 1

        workflow = WorkflowController("early", runtime)
        workflow.add_step("build", "build")
        workflow.add_step("gate", dependencies=["build"], approval={"timeout": "1h"})
        run_id = workflow.start()
        with pytest.raises(NotWaitingError, match="does not wait for approval yet"):
            workflow.approve(run_id, "gate")
        waiting(runtime, run_id)
        workflow.approve(run_id, "gate")  # no approvers named: anyone may decide
        assert workflow.wait(run_id, timeout=60).status == "completed"


def test_the_deadline_fails_the_step_on_the_engines_clock_and_skip_in_the_policy_skips_it(tmp_path):
    clock = ManualClock(time.time())
    with pepper.Runtime(db=str(tmp_path / "a.db"), home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as runtime:
        workflow = gated(runtime, timeout="1h")
        run_id = workflow.start()
        waiting(runtime, run_id)
        clock.advance(3601)
        result = workflow.wait(run_id, timeout=60)
        assert result.status == "failed"
        assert result["gate"].error.type == "ApprovalTimeout"
        assert "not approved in time" in result["gate"].error.message
        with pytest.raises(NotWaitingError, match="expired"):
            workflow.approve(run_id, "gate", by=APPROVER)

    clock = ManualClock(time.time())
    with pepper.Runtime(db=str(tmp_path / "b.db"), home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as runtime:
        workflow = gated(runtime, recovery="skip", timeout="10m")
        run_id = workflow.start()
        waiting(runtime, run_id)
        clock.advance(601)
        result = workflow.wait(run_id, timeout=60)
        assert result.status == "completed"
        assert result["gate"].status == "skipped" and result["ship"].status == "completed"


def test_an_approval_survives_a_restart_and_is_decided_from_another_process(tmp_path):
    db, home = str(tmp_path / "a.db"), str(tmp_path / "home")
    first = make_runtime(tmp_path)
    workflow = gated(first)
    run_id = workflow.start()
    request = waiting(first, run_id)
    first.close()

    with pepper.Runtime(db=db, home=home, **FAST) as onlooker:  # no agents, no engine: the store alone
        WorkflowController(runtime=onlooker).approve(run_id, "gate", by=APPROVER, reason="after the restart")

    with pepper.Runtime(db=db, home=home, **FAST) as second:
        again = gated(second)
        result = again.resume(run_id, timeout=60)
        assert result.status == "completed"
        assert result["gate"].result["reason"] == "after the restart"
        stored = second.store.approvals.get(f"{run_id}/gate")
        assert stored.requested_at == request.requested_at and stored.deadline == request.deadline


def test_bad_approval_definitions_are_refused(tmp_path):
    with make_runtime(tmp_path) as runtime:
        workflow = WorkflowController("defs", runtime)
        with pytest.raises(WorkflowDefinitionError, match="approval needs a timeout"):
            workflow.add_step("gate", approval={"approvers": [APPROVER]})
        with pytest.raises(WorkflowDefinitionError, match="unknown approval key 'who'"):
            workflow.add_step("gate", approval={"timeout": "1h", "who": APPROVER})
        with pytest.raises(WorkflowDefinitionError, match="has both for_each and approval"):
            workflow.add_step("gate", for_each=[1], approval={"timeout": "1h"})
        assert workflow.spec.steps == ()


def test_a_run_waiting_for_approval_is_cancelled_from_another_process(tmp_path):
    db, home = str(tmp_path / "a.db"), str(tmp_path / "home")
    with make_runtime(tmp_path) as runtime:
        workflow = gated(runtime)
        run_id = workflow.start()
        waiting(runtime, run_id)
        with pepper.Runtime(db=db, home=home, **FAST) as onlooker:  # the store alone: it asks the driver
            assert WorkflowController(runtime=onlooker).cancel(run_id, "not needed")
        result = workflow.wait(run_id, timeout=60)
        assert result.status == "cancelled"
        assert result["gate"].status == "cancelled" and result["ship"].status == "cancelled"


@pytest.mark.parametrize("written", [True, False], ids=["written-unanswered", "not-written"])
def test_a_decision_whose_answer_was_lost_is_the_decision_if_it_was_written(tmp_path, monkeypatch, written):
    with make_runtime(tmp_path) as runtime:
        workflow = gated(runtime)
        run_id = workflow.start()
        waiting(runtime, run_id)
        approvals = runtime.store.approvals
        decide = approvals.decide

        def answer_lost(*args):  # as when the connection breaks while the database commits
            if written:
                decide(*args)
            raise StoreBusyError("server closed the connection unexpectedly")

        monkeypatch.setattr(approvals, "decide", answer_lost)
        if written:  # the caller hears of the decision it made, not of the lost answer
            decided = workflow.approve(run_id, "gate", by=APPROVER, reason="ok")
            assert (decided.decision, decided.decided_by, decided.reason) == ("approved", APPROVER, "ok")
        else:
            with pytest.raises(StoreBusyError):
                workflow.approve(run_id, "gate", by=APPROVER, reason="ok")
            assert waiting(runtime, run_id).waiting  # nothing was decided: it still waits, and may be decided
        monkeypatch.setattr(approvals, "decide", decide)
        if written:
            with pytest.raises(NotWaitingError, match=r"approved by approver@example\.com"):
                workflow.approve(run_id, "gate", approve=False, by=APPROVER)  # the first decision stands
        else:
            workflow.approve(run_id, "gate", by=APPROVER, reason="ok")
        result = workflow.wait(run_id, timeout=60)
        assert result.status == "completed" and result["gate"].result["approved"] is True
