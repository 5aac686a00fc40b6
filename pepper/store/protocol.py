"""What the engine and the public faces ask of a store: one ``Store`` protocol, its sub-logs and its write set.

Writes go in as typed records (a ``WriteSet``), reads come out as records: a caller never sees SQL, the
order of a statement's parameters, or the database driver's exceptions. A store reports a write that may
pass later as ``StoreBusyError`` and one that fails the same way every time as ``WriteRefusedError``.
SQLite (``pepper.store.sqlite``) implements it today; every implementation passes ``tests/contract``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from pepper.errors import DuplicateTaskError
from pepper.model.agent import AgentSpec
from pepper.model.events import RecordAttempt, RecordError
from pepper.model.feedback import TaskFeedback
from pepper.model.lease import Lease
from pepper.model.record import TaskRecord, stored_values
from pepper.model.recovery import ErrorRecord
from pepper.model.submission import Submission
from pepper.model.task import Task, TaskState
from pepper.model.workflow_run import RunRecord, RunState
from pepper.store.feedback import EndedAttempt, Outcome
from pepper.store.tokens import TokenRecord
from pepper.store.workers import RegisteredAgent, WorkerInfo

#: New tasks stored all or nothing.
SubmissionGroup = Sequence[Task]


class TaskSave(NamedTuple):
    """A task's row to write over ``version`` (the version the writer last read): the values of its stored
    fields, in ``STORED_FIELDS`` order (see model.record)."""

    task: Task
    version: int
    values: tuple[Any, ...]

    @classmethod
    def of(cls, record: Any, version: int) -> TaskSave:
        """The save of a ``TaskRecord`` (or anything with the stored fields as attributes) over ``version``."""
        return cls(record.task, version, stored_values(record))


class NewRun(NamedTuple):
    """A workflow run's row, stored with the submission group of its first steps (``group``: its index in
    ``WriteSet.submissions``): both or neither."""

    record: RunRecord
    group: int


class RunEnd(NamedTuple):
    """How a run ended, written to its row unless it had ended already."""

    run_id: str
    state: RunState
    reason: str | None
    at: float


@dataclass
class WriteSet:
    """Changes to commit together (group commit).

    ``submissions`` are groups of new tasks, each stored all-or-nothing. ``saves`` are task rows to
    write, each over the version the writer last read (a row written since by someone else is a
    conflict, and is left alone). ``attempts`` and ``errors`` are history, stored
    only with a save of their task that went through. ``lease_takes`` are task leases, granted only if
    the pool has room (the save claiming that task is dropped otherwise); ``lease_drops`` are lease ids
    to release. ``runs`` are new workflow runs (each with its submission group), ``finals`` tasks stored
    final from the start (a skipped workflow step; an id already stored is left alone) and ``run_ends``
    how runs ended.
    """

    submissions: list[SubmissionGroup] = field(default_factory=list)
    saves: list[TaskSave] = field(default_factory=list)
    attempts: list[RecordAttempt] = field(default_factory=list)
    lease_takes: list[Lease] = field(default_factory=list)
    lease_drops: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    runs: list[NewRun] = field(default_factory=list)
    finals: list[TaskRecord] = field(default_factory=list)
    run_ends: list[RunEnd] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.submissions or self.saves or self.attempts or self.lease_takes or self.lease_drops or self.errors
            or self.runs or self.finals or self.run_ends
        )  # fmt: skip


@dataclass
class CommitResult:
    """What happened to a ``WriteSet``.

    ``rejected`` maps a submission's index to why it was refused; ``existing`` holds tasks that were
    already stored with the same spec; ``conflicts`` the ids whose save lost to a write by another
    process (re-read them); ``refused`` the tasks whose lease the pool could not grant, with what was
    short; ``present`` the ``finals`` that were already stored (left alone).
    """

    change_seq: int
    rejected: dict[int, DuplicateTaskError] = field(default_factory=dict)
    existing: dict[str, Task] = field(default_factory=dict)
    conflicts: set[str] = field(default_factory=set)
    refused: dict[str, dict[str, float]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)


class LeaseLog(Protocol):
    """The resource pool and the leases taken from it, as seen from one host.

    ``host`` is the host leases are taken on: ``pool()`` is its machine pools plus the shared ones, and
    ``live()`` the leases that count there (its own in full, other hosts' for the shared pools only)."""

    host: str

    def pool(self) -> dict[str, float]: ...
    def shared(self) -> dict[str, float]: ...
    def largest(self) -> dict[str, float]: ...
    def ensure_pool(self, capacity: Mapping[str, float], replace: bool) -> dict[str, float]: ...
    def ensure_shared(self, capacity: Mapping[str, float]) -> dict[str, float]: ...
    def live(self, now: float) -> list[Lease]: ...
    def get(self, lease_id: str) -> Lease: ...
    def grant(self, lease: Lease, now: float) -> Lease: ...
    def grant_once(self, lease: Lease, now: float) -> bool: ...
    def release(self, lease_id: str, now: float) -> bool: ...
    def renew(self, lease_id: str, expires_at: float | None, now: float) -> Lease: ...
    def release_worker(self, worker_id: str, now: float) -> int: ...
    def reap_expired(self, now: float) -> int: ...


class UsageLog(Protocol):
    """Resource usage measured by workers, per agent."""

    def save(self, samples: Iterable[tuple[str, str, float, Mapping[str, Any]]]) -> None: ...
    def of_agent(self, agent_id: str) -> list[tuple[str, float, dict[str, Any]]]: ...


class AlertLog(Protocol):
    """Alerts that fired."""

    def record(self, row: tuple[Any, ...]) -> None: ...
    def recent(self, limit: int = 100) -> list[dict[str, Any]]: ...


class FeedbackLog(Protocol):
    """Ratings and comments given on finished tasks."""

    def add(self, feedback: TaskFeedback) -> TaskFeedback: ...
    def of_task(self, task_id: str) -> list[TaskFeedback]: ...
    def after(self, feedback_id: int) -> list[TaskFeedback]: ...
    def last_id(self) -> int: ...
    def ratings(self, since: float) -> list[tuple[str, int, float]]: ...


class AttemptHistory(Protocol):
    """How attempts ended: what performance is learned from."""

    def outcomes(self, since: float) -> list[Outcome]: ...
    def ended(self, since: float) -> list[EndedAttempt]: ...


class ErrorLog(Protocol):
    """The error history and the dead-letter queue."""

    def of_task(self, task_id: str) -> list[ErrorRecord]: ...
    def of_agent(self, agent_id: str, limit: int = 100) -> list[ErrorRecord]: ...
    def of_run(self, run_id: str) -> list[ErrorRecord]: ...
    def recent(self, limit: int = 100) -> list[ErrorRecord]: ...
    def parked(self) -> list[TaskRecord]: ...


class RunLog(Protocol):
    """Workflow runs, stored beside the tasks of their steps."""

    def get(self, run_id: str) -> RunRecord: ...
    def list(self, state: RunState | None = None, limit: int = 100, *, after: str | None = None) -> list[RunRecord]: ...
    def count_by_state(self) -> dict[str, int]: ...
    def tasks(self, run_id: str) -> dict[str, TaskRecord]: ...
    def request_cancel(self, run_id: str, reason: str) -> bool: ...
    def set_driver(self, run_id: str, driver: str) -> bool: ...


class WorkerLog(Protocol):
    """Worker processes and the agents registered in them."""

    def register(self, worker_id: str, hostname: str, pid: int, now: float) -> None: ...
    def heartbeat(self, worker_id: str, now: float) -> bool: ...
    def revive(self, worker_id: str, now: float) -> None: ...
    def stop(self, worker_id: str, now: float) -> bool: ...
    def live(self) -> list[WorkerInfo]: ...
    def agents(self, *, besides: str | None = None) -> list[RegisteredAgent]: ...
    def register_agent(self, spec: AgentSpec, worker_id: str, now: float) -> None: ...
    def unregister_agent(self, agent_id: str, worker_id: str) -> None: ...


class TokenLog(Protocol):
    """API tokens of the HTTP service: names, scopes and hashes of their secrets (never the secrets)."""

    def add(self, name: str, scope: str, secret_hash: str, now: float) -> TokenRecord: ...
    def by_hash(self, secret_hash: str) -> TokenRecord | None: ...
    def list(self) -> list[TokenRecord]: ...
    def revoke(self, name: str, now: float) -> bool: ...
    def touch(self, name: str, now: float) -> None: ...


class Store(Protocol):
    """Durable state: tasks, their history, the pool, workers, runs and API tokens.

    ``commit`` applies a ``WriteSet`` in one transaction; ``changes_since`` is how a process learns
    what others wrote (``data_version`` is a cheap check before it). Sub-logs are named for what they hold.
    """

    @property
    def workers(self) -> WorkerLog: ...
    @property
    def leases(self) -> LeaseLog: ...
    @property
    def usage(self) -> UsageLog: ...
    @property
    def alerts(self) -> AlertLog: ...
    @property
    def feedback(self) -> FeedbackLog: ...
    @property
    def history(self) -> AttemptHistory: ...
    @property
    def errors(self) -> ErrorLog: ...
    @property
    def runs(self) -> RunLog: ...
    @property
    def tokens(self) -> TokenLog: ...

    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

    # writes
    def commit(self, writes: WriteSet, writer: str, now: float = 0.0) -> CommitResult: ...
    def submit(self, tasks: Sequence[Task], writer: str) -> Submission: ...
    def set_placements(self, placements: Mapping[str, str | None], writer: str) -> int: ...

    # change polling
    def data_version(self) -> int: ...
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None] | None: ...
    def current_change_seq(self) -> int: ...
    def changes_since(
        self, change_seq: int, writer: str, known: Callable[[str], Task | None] | None = None
    ) -> tuple[list[TaskRecord], int]: ...

    # task reads
    def get_tasks(self, task_ids: Collection[str]) -> dict[str, TaskRecord]: ...
    def unfinished(self) -> list[TaskRecord]: ...
    def list_tasks(
        self,
        state: TaskState | None = None,
        limit: int = 1000,
        *,
        task_type: str | None = None,
        after: str | None = None,
    ) -> list[TaskRecord]: ...
    def count_by_state(self) -> dict[str, int]: ...
    def counts_by_state_and_type(self) -> list[tuple[str, str, int]]: ...
    def awaited(self, task_ids: Collection[str]) -> bool: ...
    def blocked_dependents(self, task_ids: Collection[str]) -> list[TaskRecord]: ...
    def ready_ahead(
        self, task_id: str, key: float, rate: float, now: float
    ) -> list[tuple[str, str | None, frozenset[str], int]]: ...
    def ready_tasks(self, now: float) -> list[TaskRecord]: ...
    def ready_routes(self, now: float) -> list[tuple[str, str | None, frozenset[str], int]]: ...
    def unfinished_count(self) -> int: ...
    def running_tasks(self) -> list[tuple[str, str, float]]: ...
    def running_by_agent(self) -> dict[str, int]: ...
    def attempts(self, task_id: str) -> list[dict[str, Any]]: ...
