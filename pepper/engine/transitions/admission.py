"""Taking tasks in, and their dependencies: admitting a task, counting its open dependencies, releasing
dependents when a task completes, taking back those its failure cancelled once it is recovered by hand.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.cancellation import cancel_and_cascade, cascade, cascade_reason
from pepper.engine.transitions.placement import offer, refill
from pepper.engine.transitions.turn import BLOCKED, CANCELLED, COMPLETED, FAILED, PENDING, Turn, move
from pepper.model import events as ev
from pepper.model.record import initial_state
from pepper.model.slots import new_tuple
from pepper.model.task import Task

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def on_added(s: EngineState, e: ev.TasksAdded) -> list[ev.Action]:
    """Tasks this process just stored: take them in, served by priority."""
    turn = Turn(e.at, e.cause)
    tasks: Sequence[Task] = e.tasks
    if len(tasks) > 1 and any(t.priority != tasks[0].priority for t in tasks):
        tasks = sorted(tasks, key=lambda t: -t.priority)  # a batch is served by priority, not by position
    for task in tasks:
        admit(s, LiveTask(task, initial_state(task)), turn)
    refill(s, turn)
    return turn.actions


def admit(s: EngineState, t: LiveTask, turn: Turn) -> None:
    """Take a task into memory and act on its state."""
    s.tasks[t.task.task_id] = t
    settle_admitted(s, t, turn)


def settle_admitted(s: EngineState, t: LiveTask, turn: Turn) -> None:
    """Act on the state of a task just taken into memory: link, offer, or release what waited on it."""
    task_id = t.task.task_id
    waiting = s.awaiting.pop(task_id, None)
    if t.state.is_final:
        s.finished.append(task_id)
        if waiting:
            t.dependents = waiting
            if t.state is COMPLETED:
                release(s, t, turn)
            else:
                cascade(s, t, turn)
        return
    if waiting:
        t.dependents = [*t.dependents, *waiting]
    if t.state is BLOCKED:
        link(s, t, turn)
    elif t.state is PENDING:
        offer(s, t, turn)


def link(s: EngineState, t: LiveTask, turn: Turn) -> None:
    """Count a blocked task's open dependencies; start it if none are open."""
    task_id = t.task.task_id
    tasks = s.tasks
    unmet = 0
    for dep in t.task.dependencies:
        d = tasks.get(dep)
        if d is None:
            s.awaiting.setdefault(dep, []).append(task_id)
            unmet += 1
        elif d.state is COMPLETED:
            continue
        elif d.state.is_final and dep not in s.cascades_unstored:  # (an end not stored yet may still lose)
            cancel_and_cascade(s, t, cascade_reason(dep, d.state), turn)
            return
        else:
            if d.dependents:
                d.dependents.append(task_id)
            else:
                d.dependents = [task_id]
            unmet += 1
    t.unmet = unmet
    if unmet == 0:
        move(t, PENDING)
        t.ready_at = turn.at
        turn.actions.append(ev.Save(task_id, turn.cause))
        offer(s, t, turn)


def release(s: EngineState, t: LiveTask, turn: Turn) -> None:
    """A task completed: its dependents lose one open dependency."""
    dependents, t.dependents = t.dependents, ()
    tasks = s.tasks
    for dep_id in dependents:
        d = tasks.get(dep_id)
        if d is not None and d.state is BLOCKED:
            d.unmet -= 1
            if d.unmet <= 0:
                move(d, PENDING)
                d.ready_at = turn.at
                turn.actions.append(new_tuple(ev.Save, (dep_id, turn.cause)))
                offer(s, d, turn)


def restore_dependents(s: EngineState, root: LiveTask, turn: Turn) -> None:
    """``root`` failed, and was recovered by hand (skipped, run again or parked): the tasks cancelled because
    one of their dependencies failed or was cancelled - ``root``'s dependents, and theirs - wait for their
    dependencies again once none of those is failed or cancelled any more, whichever dependency their reason
    names: the order in which a person recovers a task's failed dependencies does not matter.

    A task cancelled for any other reason (on request) stays cancelled, and so does whatever was cancelled
    through it, or has another dependency that is still failed or cancelled. The tasks in question must be in
    memory (the shell loads them).
    """
    tasks = s.tasks
    by_dependency: dict[str, list[LiveTask]] = {}
    for t in tasks.values():
        if t.state is CANCELLED:
            for dep in t.task.dependencies:
                by_dependency.setdefault(dep, []).append(t)
    root_id = root.task.task_id
    found: dict[str, LiveTask] = {}
    frontier = [root_id]
    while frontier:
        for t in by_dependency.get(frontier.pop(), ()):
            task_id = t.task.task_id
            if task_id not in found and cancelled_by_cascade(t.reason, t.task.dependencies):
                found[task_id] = t
                frontier.append(task_id)
    changed = True
    while changed:  # one that has another dependency failed or cancelled for good stays, and its own with it
        changed = False
        for task_id, t in list(found.items()):
            if any(_ended_badly(s, dep) for dep in t.task.dependencies if dep != root_id and dep not in found):
                del found[task_id]
                changed = True
    for t in found.values():
        move(t, BLOCKED)
        t.reason = t.finished_at = t.next_attempt_at = t.owner = None
        t.cancel_requested, t.qseq, t.unmet, t.dependents = False, 0, 0, ()
        turn.actions.append(ev.Save(t.task.task_id, turn.cause))
    for t in found.values():
        if t.state is BLOCKED:
            link(s, t, turn)


def cancelled_by_cascade(reason: str | None, dependencies: Sequence[str]) -> bool:
    """Whether ``reason`` says a task was cancelled because one of its ``dependencies`` failed or was cancelled
    (not on request)."""
    if reason is None or not reason.startswith("dependency "):
        return False
    return any(reason in (cascade_reason(dep, FAILED), cascade_reason(dep, CANCELLED)) for dep in dependencies)


def _ended_badly(s: EngineState, task_id: str) -> bool:
    d = s.tasks.get(task_id)
    return d is not None and d.state.is_final and d.state is not COMPLETED
