"""The actions the engine's state machine answers events with (``pepper.model.events``): what the shell must
now do. Named tuples, like the events; each carries the ``cause`` of the event that produced it.
"""

from __future__ import annotations

from typing import NamedTuple

from pepper.model.lease import Lease
from pepper.model.status import TaskError

__all__ = [
    "Abort",
    "Action",
    "Decided",
    "DropLease",
    "Forget",
    "RecordAttempt",
    "RecordError",
    "Save",
    "Settled",
    "Start",
    "TakeLease",
    "WakeAt",
]


class Save(NamedTuple):
    """Write the task's current state to the store."""

    task_id: str
    cause: str = ""


class Start(NamedTuple):
    """Run the attempt on the agent, once the save that claims it is committed."""

    task_id: str
    attempt: int
    agent_id: str
    cause: str = ""


class Abort(NamedTuple):
    """Stop a running attempt (cancelled, or taken over elsewhere)."""

    task_id: str
    attempt: int
    reason: str
    cause: str = ""


class Settled(NamedTuple):
    """The task reached a final state, or was parked: wake whoever waits, once committed."""

    task_id: str
    cause: str = ""


class WakeAt(NamedTuple):
    """Deliver ``TimerFired(key)`` at time ``at``."""

    key: tuple[str, str]
    at: float
    cause: str = ""


class RecordAttempt(NamedTuple):
    """Append an attempt the task outlived (retried, interrupted) to the history.

    The last attempt is described by the task row itself (agent, start, end,
    state, error), so a task that succeeds first time writes no history row.
    """

    task_id: str
    attempt: int
    agent_id: str | None
    task_type: str
    started_at: float | None
    ended_at: float
    outcome: str
    error: TaskError | None
    cause: str = ""


class RecordError(NamedTuple):
    """Append an error to the task's error history, with what its recovery policy decided."""

    task_id: str
    attempt: int
    agent_id: str | None
    task_type: str
    at: float
    error: TaskError
    strategy: str
    action: str
    detail: str
    cause: str = ""


class TakeLease(NamedTuple):
    """Store the pool lease of a starting task (granted only if the pool still has room)."""

    lease: Lease
    attempt: int = 0  # the claim it belongs to: stored only while that claim still stands
    cause: str = ""


class DropLease(NamedTuple):
    """Give a task's pool lease back."""

    lease_id: str
    cause: str = ""


class Forget(NamedTuple):
    """The task left memory (it stays in the store)."""

    task_id: str
    cause: str = ""


class Decided(NamedTuple):
    """What a task's recovery policy decided after a failure (or an error handled by hand).

    The shell hands it to whoever asked for the decision (``handle_error``); nobody needs to for an
    attempt that failed by itself (its ``RecordError`` keeps the decision in the error history).
    """

    task_id: str
    action: str
    strategy: str
    message: str
    cause: str = ""


Action = (
    Save | Start | Abort | Settled | WakeAt | RecordAttempt | RecordError | TakeLease | DropLease | Forget | Decided
)
