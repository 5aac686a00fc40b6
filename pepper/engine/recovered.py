"""What taking back a recovered task's cancelled dependents must know, read from the store.

A task that failed cancelled its dependents (and theirs); once a person recovers it
(``transitions.admission.restore_dependents``), those come back. An engine keeps every
unfinished task in memory, but not every finished one: the cancelled dependents may have been
forgotten, or cancelled by another worker. Their rows are read here, by id, never the backlog.
"""

from __future__ import annotations

from pepper.engine.transitions.cancellation import cascade_reason
from pepper.model.record import TaskRecord
from pepper.model.task import TaskState
from pepper.store.protocol import Store


def cancelled_by_failure(store: Store, task_id: str) -> list[TaskRecord]:
    """The tasks cancelled because ``task_id`` failed (transitively), then the dependencies of those not read
    yet: dependencies first, as the engine takes records in."""
    found: dict[str, TaskRecord] = {}
    frontier = {task_id: TaskState.FAILED}
    while frontier:
        reasons = {cascade_reason(parent, state) for parent, state in frontier.items()}
        fresh = [
            r for r in store.cancelled_dependents(list(frontier))
            if r.task.task_id not in found and r.task.task_id != task_id and r.reason in reasons
        ]  # fmt: skip
        found.update((r.task.task_id, r) for r in fresh)
        frontier = {r.task.task_id: TaskState.CANCELLED for r in fresh}
    needed = {d for r in found.values() for d in r.task.dependencies} - found.keys() - {task_id}
    return [*store.get_tasks(needed).values(), *found.values()] if found else []
