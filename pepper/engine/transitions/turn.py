"""The turn of one event: what every transition function works in.

A ``Turn`` is made by the ``on_*`` function that handles an event and handed
down to every move it makes: it carries the event's time and cause (which every
action it produces carries too), the actions so far, and the agents that freed
a slot and should look for work before the turn ends.
"""

from __future__ import annotations

from pepper.engine.live import LiveTask
from pepper.model import events as ev
from pepper.model.status import TaskError
from pepper.model.task import TaskState, check_transition
from pepper.scheduling.load import AgentLoad

BLOCKED, PENDING, IN_PROGRESS, PARKED = TaskState.BLOCKED, TaskState.PENDING, TaskState.IN_PROGRESS, TaskState.PARKED
COMPLETED, FAILED, CANCELLED = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED


class Turn:
    """Handling one event: its time ``at`` and ``cause``, the ``actions`` so far, the agents ``freed``.

    ``gathering``: tasks that other workers may also claim are only queued while the event is handled, and
    the freed agents take the best of them at its end (a batch read from the store is offered in its order
    of rows, which is every worker's order: each would start the same first ones)."""

    __slots__ = ("actions", "at", "cause", "freed", "gathering")

    def __init__(self, at: float, cause: str, gathering: bool = False) -> None:
        self.at = at
        self.cause = cause
        self.actions: list[ev.Action] = []
        self.freed: list[AgentLoad] = []
        self.gathering = gathering


def move(t: LiveTask, target: TaskState) -> None:
    """Change a task's state along the transition table (``InvalidTransitionError`` otherwise)."""
    check_transition(t.task.task_id, t.state, target)
    t.state = target


def attempt_record(t: LiveTask, turn: Turn, outcome: str, error: TaskError | None) -> ev.RecordAttempt:
    """History of an attempt the task outlives (the last attempt's facts stay on the task itself)."""
    return ev.RecordAttempt(
        t.task.task_id, t.attempts, t.agent_id, t.task.task_type, t.started_at, turn.at, outcome, error, turn.cause
    )


def save_and_settle(task_id: str, turn: Turn) -> None:
    """The task reached a final state (or was parked): write it, then wake whoever waits."""
    turn.actions += (ev.Save(task_id, turn.cause), ev.Settled(task_id, turn.cause))
