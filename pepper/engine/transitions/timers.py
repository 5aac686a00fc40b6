"""Timers falling due: a lease of the pool expired, an agent that left a task to a better one looks again,
a retry's backoff is over, a delayed task's time came.

Pure: no I/O, and time comes with the event (the shell arms timers for ``WakeAt`` actions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.engine.transitions.agents import POOL_EXPIRY, pool_changed
from pepper.engine.transitions.placement import fill, offer
from pepper.engine.transitions.turn import PENDING, Turn
from pepper.model import events as ev

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def on_timer(s: EngineState, e: ev.TimerFired) -> list[ev.Action]:
    """A timer the state machine asked for (``WakeAt``) fell due."""
    if e.key == POOL_EXPIRY:
        return pool_changed(s, s.resources.refresh(e.at), Turn(e.at, e.cause))
    kind, name = e.key
    if kind == "fill":
        return _look_again(s, name, e)
    if kind == "retry":
        return _retry(s, name, e)
    if kind == "delay":
        return _delayed(s, name, e)
    return []


def _look_again(s: EngineState, agent_id: str, e: ev.TimerFired) -> list[ev.Action]:
    """An agent that left a task to a better one looks again."""
    turn = Turn(e.at, e.cause)
    agent = s.agents.get(agent_id)
    if agent is not None:
        fill(s, agent, turn)
    return turn.actions


def _retry(s: EngineState, task_id: str, e: ev.TimerFired) -> list[ev.Action]:
    """A retry's backoff is over: the task is offered again (if it still waits for that retry)."""
    t = s.tasks.get(task_id)
    if t is None or t.state is not PENDING or t.next_attempt_at is None:
        return []
    if t.next_attempt_at > e.at + 1e-9:
        return [ev.WakeAt(e.key, t.next_attempt_at, e.cause)]
    t.next_attempt_at = None
    turn = Turn(e.at, e.cause)
    offer(s, t, turn)
    return turn.actions


def _delayed(s: EngineState, task_id: str, e: ev.TimerFired) -> list[ev.Action]:
    """A delayed task's time came: it is offered (if it still waits, and not already queued)."""
    t = s.tasks.get(task_id)
    not_before = None if t is None else t.task.not_before
    if t is None or not_before is None or t.state is not PENDING or t.qseq:
        return []
    if not_before > e.at + 1e-9:
        return [ev.WakeAt(e.key, not_before, e.cause)]
    if t.ready_at is None or t.ready_at < not_before:
        t.ready_at = not_before  # it ages from its time, not from its submission
    turn = Turn(e.at, e.cause)
    offer(s, t, turn)
    return turn.actions
