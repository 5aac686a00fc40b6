"""Events into the engine's state machine, and the actions it answers with.

``EngineState.handle(event) -> list[action]`` is the only way scheduling state
changes. Events say what happened (with the time it happened, ``at``); actions
say what the shell must now do. Both are named tuples: cheap to make on the
hot path, immutable, and printable in logs.

Every event carries a ``cause``: a short id of what set it off (``"submit:<task>"``,
``"attempt:<task>:<n>"``, ``"timer:<kind>:<key>"``, ``"load:<why>"``, ``"cancel:<task>"``
...). Every action produced while handling an event carries the same cause, so a
log line of the shell says why the state changed. It defaults to ``""`` (not given).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pepper.model.actions import *  # noqa: F403 - the actions answering these events, importable from here too
from pepper.model.agent import AgentSpec
from pepper.model.lease import Lease
from pepper.model.record import TaskRecord
from pepper.model.recovery import Policy
from pepper.model.resources import OffHost
from pepper.model.status import TaskError
from pepper.model.task import Task

# --- events ------------------------------------------------------------------------


class TasksAdded(NamedTuple):
    """Tasks newly stored by this process."""

    tasks: tuple[Task, ...]
    at: float
    cause: str = ""


class TasksLoaded(NamedTuple):
    """Task rows read from the store: at start-up, changed by another process, or after a lost write."""

    records: tuple[TaskRecord, ...]
    at: float
    source: str = "store"  # why they were read: "store", "conflict", "offline"...
    cause: str = ""


class AttemptEnded(NamedTuple):
    """An attempt finished. ``requeue`` means it was interrupted and runs again without counting as a failure."""

    task_id: str
    attempt: int
    at: float
    ok: bool
    result: Any = None
    result_json: str | None = None
    error: TaskError | None = None
    started_at: float | None = None
    requeue: bool = False
    cause: str = ""


class CallHeld(NamedTuple):
    """A synchronous agent's call outlived attempt ``attempt`` of ``task_id`` (a timeout or cancel its thread
    cannot obey) and still runs: its agent's slot stays taken until ``CallReturned``."""

    agent_id: str
    task_id: str
    attempt: int
    at: float
    cause: str = ""


class CallReturned(NamedTuple):
    """A call that outlived its attempt (``CallHeld``) returned, or an aborted attempt's call stopped: its
    agent's slot is free again. An empty ``agent_id``: the attempt never started here (whichever agent holds
    its slot)."""

    agent_id: str
    task_id: str
    attempt: int
    at: float
    cause: str = ""


class CancelRequested(NamedTuple):
    task_id: str
    at: float
    reason: str
    cause: str = ""


class EndsStored(NamedTuple):
    """The cancels of ``task_ids`` decided here are stored: what depends on them may now be cancelled too."""

    task_ids: tuple[str, ...]
    at: float
    cause: str = ""


class AgentAdded(NamedTuple):
    """An agent joined. ``waiting_for`` says why it cannot take tasks yet (its budget is not granted);
    ``off_host``, for an agent on Ray, how it finds resources (None: it runs on this host)."""

    spec: AgentSpec
    at: float
    waiting_for: str | None = None
    cause: str = ""
    off_host: OffHost | None = None


class AgentReady(NamedTuple):
    """An agent that was waiting for its budget got it."""

    agent_id: str
    at: float
    cause: str = ""


class AgentRemoved(NamedTuple):
    agent_id: str
    at: float
    cause: str = ""


class WorkersLost(NamedTuple):
    """Workers found dead; their running tasks must run again."""

    worker_ids: frozenset[str]
    at: float
    cause: str = ""


class TimerFired(NamedTuple):
    key: tuple[str, str]
    at: float
    cause: str = ""


class ProgressReported(NamedTuple):
    task_id: str
    attempt: int
    fraction: float
    message: str | None
    at: float
    cause: str = ""


class LeasesLoaded(NamedTuple):
    """The pool's capacity and every live lease, as the store has them now."""

    capacity: Mapping[str, float]
    leases: tuple[Lease, ...]
    at: float
    cause: str = ""


class ClaimRefused(NamedTuple):
    """The pool had no room for a starting task's lease after all (another process took it)."""

    task_id: str
    attempt: int
    at: float
    cause: str = ""


class HistoryLoaded(NamedTuple):
    """Past outcomes to learn from: ``(agent, task type, ok, duration, at)`` and ``(agent, rating, at)``."""

    outcomes: tuple[tuple[str, str, bool, float | None, float], ...]
    ratings: tuple[tuple[str, int, float], ...]
    at: float
    cause: str = ""


class PeersChanged(NamedTuple):
    """The agents of the other live workers sharing the database (recovery may move a task to one of them),
    and ``takers``: ``(task type, worker id)`` of each of them (which workers may claim a task of a type)."""

    agents: tuple[AgentSpec, ...]
    at: float
    cause: str = ""
    takers: tuple[tuple[str, str], ...] = ()


class Rated(NamedTuple):
    """Someone rated the work of an agent (1-5)."""

    agent_id: str
    rating: int
    at: float
    cause: str = ""


class HealthChanged(NamedTuple):
    """An agent's health check started or stopped failing."""

    agent_id: str
    healthy: bool
    at: float
    cause: str = ""


class PlacementSet(NamedTuple):
    """A workload plan placed a waiting task on an agent (``None`` lifts the placement)."""

    task_id: str
    agent_id: str | None
    at: float
    cause: str = ""


class ErrorHandled(NamedTuple):
    """Someone applies ``policy`` to ``error`` of a task by hand (``ErrorHandler.handle_error``)."""

    task_id: str
    error: TaskError
    policy: Policy
    at: float
    cause: str = ""


class Replayed(NamedTuple):
    """A parked (dead-lettered) or failed task is to run again, on ``agent_id`` if given."""

    task_id: str
    agent_id: str | None
    at: float
    cause: str = ""


class RunAgain(NamedTuple):
    """Ended tasks (the steps of a re-run workflow run) start a new life: they wait for their dependencies
    again, and their last attempt goes to the history. ``task_ids`` come dependencies first."""

    task_ids: tuple[str, ...]
    at: float
    cause: str = ""


class Dropped(NamedTuple):
    """A parked task is given up: it fails, and its dependents are cancelled."""

    task_id: str
    reason: str
    at: float
    cause: str = ""


class WriteRefused(NamedTuple):
    """The store refused this task's changes for good (a value it cannot hold, a broken constraint).

    Nothing of them was written; the task ends failed with ``error`` so that it never waits for a write
    that will not happen, and the rest of the batch was committed without it.
    """

    task_id: str
    error: TaskError
    at: float
    cause: str = ""


class Draining(NamedTuple):
    """Stop starting tasks (shutdown); running ones may finish."""

    at: float
    cause: str = ""


class Pruned(NamedTuple):
    """A prune deleted the rows of these tasks, by id with when each was created: the ids are free again, and
    memory of those tasks goes (a task held under such an id but created at another time is another task)."""

    tasks: tuple[tuple[str, float], ...]
    at: float
    cause: str = ""


class Trim(NamedTuple):
    """Everything is committed: finished tasks beyond the memory budget may be forgotten."""

    at: float
    cause: str = ""


Event = (
    TasksAdded
    | TasksLoaded
    | AttemptEnded
    | CallHeld
    | CallReturned
    | CancelRequested
    | EndsStored
    | AgentAdded
    | AgentReady
    | AgentRemoved
    | WorkersLost
    | TimerFired
    | ProgressReported
    | LeasesLoaded
    | ClaimRefused
    | HistoryLoaded
    | PeersChanged
    | Rated
    | HealthChanged
    | PlacementSet
    | ErrorHandled
    | Replayed
    | RunAgain
    | Dropped
    | WriteRefused
    | Draining
    | Pruned
    | Trim
)
