"""Taking tasks in, and their dependencies: admitting a task, counting its open dependencies, releasing
dependents when a task completes.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.cancellation import cancel_and_cascade, cascade
from pepper.engine.transitions.placement import offer, refill
from pepper.engine.transitions.turn import BLOCKED, COMPLETED, PENDING, Turn, move
from pepper.model import events as ev
from pepper.model.record import initial_state
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
        elif d.state.is_final:
            cancel_and_cascade(s, t, f"dependency {dep!r} {d.state.value}", turn)
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
                turn.actions.append(ev.Save(dep_id, turn.cause))
                offer(s, d, turn)
