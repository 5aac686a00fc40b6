"""The run driver's approvals: steps that wait for a person, followed until decided or out of time.

When an approval step is released, ``begin`` stores its request (a resumed run finds it stored, with its
deadline). The driver polls the requests of the runs it drives (a person may decide from any process) and
arms a timer at each deadline on the engine's clock; ``poll`` turns a decision into the step's final task.
A deadline that passes is recorded as the decision ``expired`` with the same write-once update a person's
decision uses, so exactly one of them wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pepper.errors import NotApproverError, NotWaitingError, StepNotFoundError, StoreBusyError
from pepper.model import codec
from pepper.model.approval import APPROVED, EXPIRED, REJECTED, Approval, ending
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.recovery import ABORTED
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from pepper.model.units import format_duration
from pepper.model.workflow import Step, step_task, task_id_of
from pepper.model.workflow_run import SKIPPED

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pepper.engine.clock import TimerHandle
    from pepper.engine.shell import Engine
    from pepper.store.protocol import Store


def record_decision(
    store: Store, run_id: str, step_id: str, approve: bool, reason: str | None, by: str | None, now: float
) -> Approval:
    """Record a person's decision on a waiting approval step (the first decision wins); the decided approval.

    Raises ``RunNotFoundError``, ``StepNotFoundError``, ``NotWaitingError`` (not an approval step, not waiting
    yet, decided already, its run ended) or ``NotApproverError``; nothing is changed then."""
    run = store.runs.get(run_id)
    steps = run.spec.by_id
    if step_id not in steps:
        raise StepNotFoundError(run_id, step_id, list(steps))
    task_id = task_id_of(run_id, step_id)
    if steps[step_id].approval is None:
        raise NotWaitingError(f"step {task_id!r} is not an approval step; nothing waits for a decision there",
                              task_id=task_id)  # fmt: skip
    approval = store.approvals.get(task_id)
    if approval is not None and not approval.waiting:
        raise NotWaitingError(_decided(approval), task_id=task_id)
    if run.state.is_final:
        raise NotWaitingError(f"run {run_id!r} {run.state.value}; step {step_id!r} no longer waits", task_id=task_id)
    if approval is None:
        raise NotWaitingError(f"step {task_id!r} does not wait for approval yet: the steps it needs have not all "
                              "completed", task_id=task_id)  # fmt: skip
    if approval.approvers and by not in approval.approvers:
        raise NotApproverError(task_id, by, approval.approvers)
    if now >= approval.deadline:
        raise NotWaitingError(f"step {task_id!r} waited for a decision until {_when(approval.deadline)}; it is too "
                              "late to decide", task_id=task_id)  # fmt: skip
    decision = APPROVED if approve else REJECTED
    try:
        recorded = store.approvals.decide(task_id, decision, by, reason, now)
    except StoreBusyError:  # no answer came; the database may have written the decision all the same
        stored = _read_back(store, task_id)
        if stored is None or (stored.decision, stored.decided_by, stored.decided_at) != (decision, by, now):
            raise
        return stored  # it did: this decision is the one made, and its caller must hear so
    if not recorded:
        raise NotWaitingError(_decided(store.approvals.get(task_id) or approval), task_id=task_id)
    return store.approvals.get(task_id) or approval


def _read_back(store: Store, task_id: str) -> Approval | None:
    """The approval as stored now; None if the database does not answer either."""
    try:
        return store.approvals.get(task_id)
    except StoreBusyError:
        return None


def _decided(approval: Approval) -> str:
    who = f" by {approval.decided_by}" if approval.decided_by else ""
    at = f" at {_when(approval.decided_at)}" if approval.decided_at is not None else ""
    return f"step {approval.task_id!r} was {approval.decision}{who}{at} already; a decision is made once"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Approvals:
    """The approval steps waiting in the runs one driver drives, by run id then step id."""

    def __init__(self, engine: Engine, wake: Callable[[str], None]) -> None:
        self.engine = engine
        self.wake = wake  # advances a run
        self.waiting: dict[str, dict[str, Approval]] = {}
        self._timers: dict[str, TimerHandle] = {}
        self._poll: Any = None

    def of(self, run_id: str) -> dict[str, Approval]:
        return self.waiting.get(run_id, {})

    def forget(self, run_id: str) -> None:
        for step_id in self.waiting.pop(run_id, {}):
            timer = self._timers.pop(task_id_of(run_id, step_id), None)
            if timer is not None:
                timer.cancel()

    def begin(self, run_id: str, step: Step, now: float) -> None:
        """Store the request of ``step`` (kept as stored if there is one) and wait for its decision."""
        assert step.approval is not None
        asked = Approval(task_id_of(run_id, step.step_id), run_id, step.step_id, step.approval.approvers, now,
                         now + step.approval.timeout)  # fmt: skip
        approval = self.engine.store.approvals.request(asked)
        self.waiting.setdefault(run_id, {})[step.step_id] = approval
        self._timers[approval.task_id] = self.engine.clock.call_at(approval.deadline, lambda: self.wake(run_id))
        self._schedule_poll()

    def stop(self, run_id: str, step_id: str) -> bool:
        """Stop waiting for ``step_id`` (its run is cancelled); False if it was not waiting."""
        approval = self.of(run_id).pop(step_id, None)
        if approval is None:
            return False
        timer = self._timers.pop(approval.task_id, None)
        if timer is not None:
            timer.cancel()
        return True

    def poll(self, run_id: str, steps: Mapping[str, Step], inputs: Mapping[str, Any], now: float) -> list[TaskRecord]:
        """The final tasks of the run's approval steps that were decided, or whose deadline passed."""
        settled = []
        waiting = self.of(run_id)
        for step_id, approval in list(waiting.items()):
            stored = self.engine.store.approvals.get(approval.task_id) or approval
            if stored.waiting and now >= stored.deadline:
                why = f"no decision within {format_duration(stored.deadline - stored.requested_at)}"
                self.engine.store.approvals.decide(approval.task_id, EXPIRED, None, why, now)
                stored = self.engine.store.approvals.get(approval.task_id) or stored  # a person may have won
            if stored.waiting:
                continue
            self.stop(run_id, step_id)
            settled.append(_record(steps[step_id], run_id, inputs, stored, now))
        return settled

    def _schedule_poll(self) -> None:
        if self._poll is None and self.waiting:
            self._poll = self.engine.loop.call_later(self.engine.settings.poll_interval, self._tick)

    def _tick(self) -> None:
        self._poll = None
        for run_id in [r for r, steps in self.waiting.items() if steps]:
            self.wake(run_id)
        self.waiting = {r: steps for r, steps in self.waiting.items() if steps}
        self._schedule_poll()


def _record(step: Step, run_id: str, inputs: Mapping[str, Any], approval: Approval, now: float) -> TaskRecord:
    """The approval step's task, final as its decision says (through the step's recovery policy)."""
    task = step_task(step, run_id, inputs, now)
    at = approval.decided_at if approval.decided_at is not None else now
    base = TaskRecord(task, TaskState.COMPLETED, started_at=approval.requested_at, finished_at=at)
    if approval.decision == APPROVED:
        result = {"approved": True, "by": approval.decided_by, "reason": approval.reason}
        return _with_result(base, result)
    if approval.decision == REJECTED:
        what = f"rejected by {approval.decided_by or 'someone'}" + (f": {approval.reason}" if approval.reason else "")
        kind = "ApprovalRejected"
    else:
        what = f"not approved in time ({approval.reason or 'no decision'}; asked: {approval.who()})"
        kind = "ApprovalTimeout"
    then = ending(task.policy)
    if then == "skip":
        return replace(base, reason=f"{SKIPPED}{what}", outcome=TaskOutcome.SKIPPED)
    error = TaskError(kind, what, kind="timeout" if approval.decision == EXPIRED else "error")
    if then == "abort":
        return replace(
            base, state=TaskState.FAILED, error=error, reason=f"{ABORTED}{what}", outcome=TaskOutcome.ABORTED
        )
    return replace(base, state=TaskState.FAILED, error=error, reason=what)


def _with_result(record: TaskRecord, result: dict[str, Any]) -> TaskRecord:
    value, text = codec.normalise(result, "result")
    return replace(record, result=value, result_json=text)
