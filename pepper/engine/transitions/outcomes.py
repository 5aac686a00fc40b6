"""How local attempts end: succeeded, interrupted, failed (recovery decides), refused a lease, or reported
progress on the way.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.admission import release
from pepper.engine.transitions.placement import enqueue, free_slot, offer, refill
from pepper.engine.transitions.recovery import fail_attempt
from pepper.engine.transitions.turn import COMPLETED, IN_PROGRESS, PENDING, Turn, attempt_record, move
from pepper.model import events as ev
from pepper.model.slots import new_tuple

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def _ours(s: EngineState, task_id: str, attempt: int) -> LiveTask | None:
    """The task if ``attempt`` is its current attempt, running here; None for a late report."""
    t = s.tasks.get(task_id)
    if t is None or t.state is not IN_PROGRESS or t.owner != s.worker_id or t.attempts != attempt:
        return None
    return t


def on_attempt_ended(s: EngineState, e: ev.AttemptEnded) -> list[ev.Action]:
    """An attempt of ours ended: the task completes, runs again (interrupted) or its recovery decides."""
    t = s.tasks.get(e.task_id)  # (the hot path: ``_ours`` inlined)
    if t is None or t.state is not IN_PROGRESS or t.owner != s.worker_id or t.attempts != e.attempt:
        return []  # a late report of an attempt that was cancelled or taken over
    turn = Turn(e.at, e.cause)
    free_slot(s, t, turn)
    if e.started_at is not None:
        t.started_at = e.started_at
    if not e.requeue and t.agent_id is not None:
        took = e.at - t.started_at if t.started_at is not None else None
        s.performance.record(t.agent_id, t.task.task_type, e.ok, took, e.at)
    if e.ok:
        move(t, COMPLETED)
        t.result, t.result_json, t.error, t.finished_at, t.owner = e.result, e.result_json, None, e.at, None
        turn.actions += (new_tuple(ev.Save, (e.task_id, e.cause)), new_tuple(ev.Settled, (e.task_id, e.cause)))
        s.finished.append(e.task_id)
        refill(s, turn)  # tasks already waiting go before newly ready ones
        release(s, t, turn)
    elif e.requeue:
        move(t, PENDING)
        t.owner, t.ready_at, t.error = None, e.at, e.error
        turn.actions += (ev.Save(e.task_id, e.cause), attempt_record(t, turn, "interrupted", e.error))
        offer(s, t, turn)
    else:
        refill(s, turn)
        fail_attempt(s, t, e.error, turn)
    refill(s, turn)
    return turn.actions


def on_claim_refused(s: EngineState, e: ev.ClaimRefused) -> list[ev.Action]:
    """The pool had no room for a starting task's lease after all: the claim is undone and the task queues."""
    t = _ours(s, e.task_id, e.attempt)
    if t is None:
        return []
    turn = Turn(e.at, e.cause)
    free_slot(s, t, turn, claimed=False)  # the shell reloads the leases next, then refills
    move(t, PENDING)
    t.attempts -= 1
    t.owner = t.started_at = None
    turn.actions.append(ev.Save(e.task_id, e.cause))  # the row may still show an earlier attempt of ours as running
    enqueue(s, t, e.at)
    return turn.actions


def on_progress(s: EngineState, e: ev.ProgressReported) -> list[ev.Action]:
    """A running attempt of ours reported how far it got."""
    t = _ours(s, e.task_id, e.attempt)
    if t is None:
        return []
    t.progress, t.progress_message = e.fraction, e.message
    return [ev.Save(e.task_id, e.cause)]
