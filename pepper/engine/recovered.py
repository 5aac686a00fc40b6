"""What taking back a recovered task's cancelled dependents must know, read from the store.

A task that failed cancelled its dependents (and theirs); once a person recovers it
(``transitions.admission.restore_dependents``), those come back. An engine keeps every
unfinished task in memory, but not every finished one: the cancelled dependents may have been
forgotten, or cancelled by another worker. Their rows are read here, by id, never the backlog.
"""

from __future__ import annotations

from pepper.engine.transitions.admission import cancelled_by_cascade
from pepper.errors import FanOutStepError, RunEndedError, RunNotFoundError
from pepper.model.fan_out import parse_item_id
from pepper.model.record import TaskRecord
from pepper.model.recovery_policy import Abort, Policy, Skip
from pepper.model.step_tasks import RUN_KEY, STEP_KEY
from pepper.model.task import Task, TaskState
from pepper.store.protocol import Store


def refuse_ended_run(store: Store, task: Task) -> None:
    """Refuse (``RunEndedError``) to recover by hand a step of a workflow run that has ended: its dependents
    would run while the run stays recorded as ended. ``pepper rerun`` runs an ended run's steps again."""
    run_id = task.metadata.get(RUN_KEY)
    if not isinstance(run_id, str):
        return
    try:
        run = store.runs.get(run_id)
    except RunNotFoundError:  # its run is gone (retention): a task like any other
        return
    if run.state.is_final:
        step_id = task.metadata.get(STEP_KEY)
        raise RunEndedError(task.task_id, run_id, run.state.value, step_id if isinstance(step_id, str) else None)


def refuse_fan_out_step(store: Store, task_id: str, policy: Policy | None = None) -> None:
    """Refuse (``FanOutStepError``) a replay (``policy`` None), or a recovery by hand, of the own task of a
    fan-out step of a run still going: no agent runs it (its template reads ``${{ item }}``), its items are what
    runs, and what a person replays, skips or drops; the step follows them. Only ``skip`` and ``abort`` apply to
    the step itself, once its task is stored (it is stored when its items have all ended). A failed item is
    refused too: the step failed with it, and does not take it back."""
    if (item := parse_item_id(task_id)) is not None:
        _refuse_failed_item(store, task_id, *item)
        return
    run_id, _, step_id = task_id.rpartition("/")
    if not run_id:
        return
    try:
        run = store.runs.get(run_id)
    except RunNotFoundError:
        return
    step = run.spec.by_id.get(step_id)
    if step is None or not step.fans_out or run.state.is_final:  # an ended run: RunEndedError says what to do
        return
    stored = task_id in store.get_tasks([task_id])
    if stored and policy is not None and all(isinstance(s, (Skip, Abort)) for s in policy.strategies):
        return
    items = ((parse_item_id(tid), tid) for tid, r in store.runs.tasks(run_id).items() if r.state is TaskState.PARKED)
    parked = [tid for _, tid in sorted((item[2], tid) for item, tid in items if item and item[1] == step_id)]
    what = "replayed" if policy is None else f"recovered by hand with {str(policy)!r}"
    if parked:
        shown = ", ".join(repr(t) for t in parked[:5]) + (f" and {len(parked) - 5} more" if len(parked) > 5 else "")
        todo = (
            f"Recover its parked item{'s' if len(parked) > 1 else ''} instead: {shown} (`pepper dlq replay "
            f"{parked[0]}`, or skip or drop it); the step follows its items"
        )
    else:
        todo = f"Recover its items instead ({task_id}[0], ...: `pepper show {run_id}`); the step follows its items"
    if stored:
        todo += ". Skip or abort apply to the step itself"
    raise FanOutStepError(
        f"task {task_id!r} is step {step_id!r} of workflow run {run_id!r}, which fans out over its items: no agent "
        f"runs the step's own task, so it is not {what}. {todo}. Nothing was changed",
        task_id=task_id, run_id=run_id, step_id=step_id, parked=parked,
    )  # fmt: skip


def _refuse_failed_item(store: Store, task_id: str, run_id: str, step_id: str, index: int) -> None:
    """Refuse to recover by hand a failed item of a fan-out step of a run still going: its step failed with it
    (or will, once its other items stop), and a step does not take back an item once it has failed."""
    record = store.get_tasks([task_id]).get(task_id)
    if record is None or record.state is not TaskState.FAILED or record.task.metadata.get(RUN_KEY) != run_id:
        return
    try:
        run = store.runs.get(run_id)
    except RunNotFoundError:
        return
    if run.state.is_final:  # RunEndedError says what to do
        return
    step = f"{run_id}/{step_id}"
    raise FanOutStepError(
        f"task {task_id!r} is item {index} of step {step_id!r} of workflow run {run_id!r}, and it failed: the step "
        f"failed with it, and a step does not take back an item that failed, so the item is not recovered by hand. "
        f"Skip or abort the step itself ({step!r}) once it has ended, or start a new run. Nothing was changed",
        task_id=task_id, run_id=run_id, step_id=step_id,
    )  # fmt: skip


def cancelled_by_failure(store: Store, task_id: str) -> list[TaskRecord]:
    """The tasks cancelled because a dependency failed or was cancelled, from the dependents of ``task_id``
    on (transitively), whichever dependency their reason names; then the dependencies of those not read yet
    (whether each may come back depends on them): dependencies first, as the engine takes records in."""
    found: dict[str, TaskRecord] = {}
    frontier = [task_id]
    while frontier:
        fresh = [
            r for r in store.cancelled_dependents(frontier)
            if r.task.task_id not in found and r.task.task_id != task_id
            and cancelled_by_cascade(r.reason, r.task.dependencies)
        ]  # fmt: skip
        found.update((r.task.task_id, r) for r in fresh)
        frontier = [r.task.task_id for r in fresh]
    needed = {d for r in found.values() for d in r.task.dependencies} - found.keys() - {task_id}
    return [*store.get_tasks(needed).values(), *found.values()] if found else []
