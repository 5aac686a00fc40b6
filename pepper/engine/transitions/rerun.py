"""Running ended tasks again (the steps of a re-run workflow run): each starts a new life in the same row.

Its last attempt is written to the history (the row then describes the new one), its attempt count goes on,
and it is taken in again as if just submitted: blocked until its dependencies completed, else offered.
Pure: no I/O, and time comes with the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.admission import settle_admitted
from pepper.engine.transitions.placement import refill
from pepper.engine.transitions.turn import Turn
from pepper.model import events as ev
from pepper.model.record import initial_state

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def on_run_again(s: EngineState, e: ev.RunAgain) -> list[ev.Action]:
    """Start each ended task of ``e.task_ids`` again (tasks not ended, or not in memory, are left alone)."""
    turn = Turn(e.at, e.cause)
    for task_id in e.task_ids:
        old = s.tasks.get(task_id)
        if old is None or not old.state.is_final:
            continue
        if old.attempts:
            turn.actions.append(
                ev.RecordAttempt(task_id, old.attempts, old.agent_id, old.task.task_type, old.started_at,
                                 old.finished_at or e.at, old.state.value, old.error, turn.cause)
            )  # fmt: skip
        fresh = LiveTask(old.task, initial_state(old.task))
        fresh.attempts, fresh.placement = old.attempts, old.placement
        if fresh.ready_at is not None:
            fresh.ready_at = e.at
        s.tasks[task_id] = fresh
        turn.actions.append(ev.Save(task_id, turn.cause))
        settle_admitted(s, fresh, turn)
    refill(s, turn)
    return turn.actions
