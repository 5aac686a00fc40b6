"""Letting go of tasks whose rows a prune deleted: their ids are free again.

A prune deletes finished tasks' rows (``pepper prune``, the API, a worker's background retention). An engine
that still holds such a task must not act on it any more: not refuse or swallow a new submission of its id,
not hand its result to a task that depends on that id, not mix its spec with a new row of the same id.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.placement import abort, refill
from pepper.engine.transitions.turn import Turn
from pepper.model import events as ev
from pepper.model.task import TaskState

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def on_pruned(s: EngineState, e: ev.Pruned) -> list[ev.Action]:
    """Rows deleted by a prune: the tasks held in memory as those rows are forgotten."""
    turn = Turn(e.at, e.cause)
    tasks = s.tasks
    gone = [task_id for task_id, created_at in e.tasks
            if task_id in tasks and tasks[task_id].task.created_at == created_at]  # fmt: skip
    for task_id in gone:
        drop(s, s.tasks[task_id], "its row was deleted by a prune", turn)
        turn.actions.append(ev.Forget(task_id, e.cause))
    forget_finished(s, gone)
    refill(s, turn)
    return turn.actions


def drop(s: EngineState, t: LiveTask, reason: str, turn: Turn) -> None:
    """Take a task whose row no longer exists out of memory; an attempt of this worker still running on it is
    stopped (its outcome has no row to go to)."""
    if t.state is TaskState.IN_PROGRESS and t.owner == s.worker_id:
        abort(s, t, reason, turn)
    t.qseq = 0  # any queue ticket of it is stale
    del s.tasks[t.task.task_id]


def forget_finished(s: EngineState, task_ids: Collection[str]) -> None:
    """Take ``task_ids`` out of the list of finished tasks kept in memory."""
    if not task_ids:
        return
    ids = set(task_ids)
    kept = [task_id for task_id in s.finished if task_id not in ids]
    if len(kept) != len(s.finished):
        s.finished.clear()
        s.finished.extend(kept)
