"""What taking back a recovered task's cancelled dependents must know, read from the store.

A task that failed cancelled its dependents (and theirs); once a person recovers it
(``transitions.admission.restore_dependents``), those come back. An engine keeps every
unfinished task in memory, but not every finished one: the cancelled dependents may have been
forgotten, or cancelled by another worker. Their rows are read here, by id, never the backlog.
"""

from __future__ import annotations

from pepper.engine.transitions.admission import cancelled_by_cascade
from pepper.errors import RunEndedError, RunNotFoundError
from pepper.model.record import TaskRecord
from pepper.model.step_tasks import RUN_KEY, STEP_KEY
from pepper.model.task import Task
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
