"""Cancelling: one task on request, and transitively everything that depends on a task that failed or was cancelled.

A cancel (or a failure) decided here is written over the version of the row this engine last read, and another
process may have written the row since (claimed the task, finished it, taken it over). So what depends on the task
is cancelled only once its end is stored (``on_ends_stored``), never in the same commit: an end that loses leaves
its dependents as they were. A cancel that lost is decided again on the row read back (``adoption.take``); a
failure that lost was not the task's end.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.placement import abort, refill
from pepper.engine.transitions.turn import CANCELLED, FAILED, IN_PROGRESS, Turn, move, save_and_settle
from pepper.model import events as ev
from pepper.model.task import TaskState

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def on_cancel(s: EngineState, e: ev.CancelRequested) -> list[ev.Action]:
    """Someone asked to cancel a task: it and its dependents are cancelled (or asked to stop)."""
    t = s.tasks.get(e.task_id)
    if t is None or t.state.is_final:
        return []
    turn = Turn(e.at, e.cause)
    cancel_and_cascade(s, t, e.reason, turn)
    refill(s, turn)
    return turn.actions


def cancel_one(s: EngineState, t: LiveTask, reason: str, turn: Turn) -> bool:
    """Cancel one task; False when another worker runs it (it is asked to stop instead)."""
    task_id = t.task.task_id
    if t.state is IN_PROGRESS:
        if t.owner != s.worker_id:
            t.cancel_requested, t.reason = True, reason
            turn.actions.append(ev.Save(task_id, turn.cause))
            return False
        abort(s, t, reason, turn)
    move(t, CANCELLED)
    t.reason, t.finished_at, t.owner, t.qseq, t.next_attempt_at = reason, turn.at, None, 0, None
    save_and_settle(task_id, turn)
    s.finished.append(task_id)
    return True


def cancel_and_cascade(s: EngineState, t: LiveTask, reason: str, turn: Turn) -> None:
    """Cancel a task and, once its cancel is stored (``on_ends_stored``), everything that depends on it."""
    was = t.state
    if cancel_one(s, t, reason, turn):
        s.cascades_unstored[t.task.task_id] = (was, reason)


def cascade_once_stored(s: EngineState, t: LiveTask, was: TaskState) -> None:
    """``t`` just failed here (it was ``was``): what depends on it is cancelled once that failure is stored
    (``on_ends_stored``). A failure whose write loses (another worker took the task over meanwhile) is not the
    task's end, and its dependents wait for the end the row tells."""
    s.cascades_unstored[t.task.task_id] = (was, None)


def on_ends_stored(s: EngineState, e: ev.EndsStored) -> list[ev.Action]:
    """Cancels and failures decided here are stored: everything that depends on those tasks is cancelled now."""
    turn = Turn(e.at, e.cause)
    for task_id in e.task_ids:
        if s.cascades_unstored.pop(task_id, None) is None:
            continue
        t = s.tasks.get(task_id)
        if t is not None and t.state in (CANCELLED, FAILED):
            cascade(s, t, turn)
    refill(s, turn)
    return turn.actions


def cascade_reason(dependency_id: str, state: TaskState) -> str:
    """Why a task was cancelled because its dependency ``dependency_id`` ended ``state`` (failed or cancelled)."""
    return f"dependency {dependency_id!r} {state.value}"


def cascade(s: EngineState, root: LiveTask, turn: Turn) -> None:
    """A task failed or was cancelled: cancel everything that depends on it, transitively."""
    stack = [root]
    tasks = s.tasks
    while stack:
        parent = stack.pop()
        reason = cascade_reason(parent.task.task_id, parent.state)
        dependents, parent.dependents = parent.dependents, ()
        for dep_id in dependents:
            d = tasks.get(dep_id)
            if d is not None and not d.state.is_final and cancel_one(s, d, reason, turn):
                stack.append(d)
