"""What a step that became something else at run time stands at, in a few words: an approval step (who
decides, until when), a fan-out (its items) or a sub-workflow (its child run). ``pepper why``, ``pepper show``
and ``pepper runs`` say it."""

from __future__ import annotations

import time
from collections import Counter

import pepper
from pepper.cli.common import where_hint
from pepper.cli.render import clock_time, relative
from pepper.errors import RunNotFoundError
from pepper.model.approval import Approval
from pepper.model.record import TaskRecord
from pepper.model.workflow import Step, task_id_of
from pepper.model.workflow_run import RunRecord


def approval_note(approval: Approval, db: str | None, now: float) -> str:
    """``waits for approval by a@example.com until 14:05:00 (in 59m)`` or how it was decided."""
    if approval.waiting:
        command = f"`pepper approve {approval.run_id} {approval.step_id}{where_hint(db)}`"
        until = f"{clock_time(approval.deadline)} ({relative(approval.deadline, now)})"
        return f"waits for approval by {approval.who()} until {until}; {command} decides"
    who = f" by {approval.decided_by}" if approval.decided_by else ""
    why = f": {approval.reason}" if approval.reason else ""
    return f"{approval.decision}{who} at {clock_time(approval.decided_at)}{why}"


def step_note(
    runtime: pepper.Runtime, record: RunRecord, step: Step, db: str | None, *, ended: bool = False
) -> str | None:
    """What ``step`` of the run stands at, if it is an approval, a fan-out or a sub-workflow (else None).

    For a step that ``ended``: only what it became (the decision, its items, its child run), if anything."""
    now = time.time()
    run_id = record.run_id
    if step.approval is not None:
        approvals = {a.step_id: a for a in runtime.read(lambda backend: backend.run_approvals(run_id))}
        found = approvals.get(step.step_id)
        if found is not None:
            return approval_note(found, db, now)
        who = " or ".join(step.approval.approvers) or "anyone"
        return None if ended else f"will wait for approval by {who} once the steps it needs completed"
    if runtime.server is not None:
        return None  # the rest reads the database, which is the server's
    if step.fans_out:
        prefix = f"{task_id_of(run_id, step.step_id)}["
        items = [r for tid, r in runtime.store.runs.tasks(run_id).items() if tid.startswith(prefix)]
        if ended:
            return _items_note(items) if items else None
        if not items:
            return "fans out (one task per item) once the steps it needs completed"
        done = sum(1 for r in items if r.state.is_final)
        return f"fanned out: {done} of the {len(items)} items started so far ended"
    if step.workflow is not None:
        children = runtime.store.runs.children(task_id_of(run_id, step.step_id))
        if children:
            child = children[-1]
            show = f"`pepper show {child.run_id}{where_hint(db)}`"
            return f"{'ran' if ended else 'runs'} as sub-workflow run {child.run_id} ({child.state.value}; {show})"
        if ended:
            return None
        return f"runs workflow {step.workflow.name!r} as a sub-workflow once the steps it needs completed"
    return None


def _items_note(items: list[TaskRecord]) -> str:
    """``fanned out into 3 items: 2 completed, 1 failed``."""
    states = Counter(r.state.value for r in items)
    told = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return f"fanned out into {len(items)} item{'s' if len(items) != 1 else ''}: {told}"


def shaped_step(runtime: pepper.Runtime, task_id: str) -> tuple[RunRecord, Step] | None:
    """The run and step of ``task_id`` if it names an approval, fan-out or sub-workflow step, else None."""
    run_id, _, step_id = task_id.rpartition("/")
    if not run_id:
        return None
    try:
        record = runtime.read(lambda backend: backend.run_record(run_id))
    except RunNotFoundError:
        return None
    step = record.spec.by_id.get(step_id)
    if step is None or not (step.approval is not None or step.fans_out or step.workflow is not None):
        return None
    return record, step
