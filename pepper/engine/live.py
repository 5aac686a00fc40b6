"""The state machine's private, mutable view of one task (records outside it stay frozen)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pepper.model.outcome import TaskOutcome
from pepper.model.record import STORED_FIELDS, TaskRecord, task_status
from pepper.model.recovery import NO_RECOVERY
from pepper.model.status import TaskError, TaskStatus, WaitReason
from pepper.model.task import Task, TaskState

_STORED = STORED_FIELDS
_PENDING = TaskState.PENDING  # (read from the class, a member costs a look-up through its metaclass)


def _assignments(fields: tuple[str, ...]) -> Callable[[Any, Any], None]:
    """A function setting each of ``fields`` of its first argument from its second: written out, one statement a
    field, as dataclasses do (rows are taken by the thousand; a loop of setattr costs seven times as much)."""
    namespace: dict[str, Any] = {}
    exec("def copy(to, source):\n" + "\n".join(f"    to.{name} = source.{name}" for name in fields), namespace)
    copy: Callable[[Any, Any], None] = namespace["copy"]
    return copy


_copy_stored = _assignments(_STORED)


class LiveTask:
    """Mutable bookkeeping for a task in memory.

    Only ``EngineState`` changes it; the shell reads it to build rows. ``unmet``
    counts dependencies not completed yet, ``dependents`` are the ids waiting on
    this task, ``qseq`` is its ready-queue ticket (0 when not queued) and
    ``route`` its scheduling route.
    """

    __slots__ = (*_STORED, "task", "unmet", "dependents", "qseq", "route")

    def __init__(self, task: Task, state: TaskState) -> None:
        self.task = task
        self.state = state
        self.attempts = 0
        self.failures = 0
        self.agent_id: str | None = None
        self.owner: str | None = None
        self.ready_at: float | None = task.created_at if state is _PENDING else None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.next_attempt_at: float | None = None
        self.result: Any = None
        self.result_json: str | None = None
        self.error: TaskError | None = None
        self.reason: str | None = None
        self.progress: float | None = None
        self.progress_message: str | None = None
        self.cancel_requested = False
        self.placement: str | None = None
        self.recovery = NO_RECOVERY
        self.parked_at: float | None = None
        self.outcome: TaskOutcome | None = None
        self.unmet = 0
        self.dependents: list[str] | tuple[()] = ()  # a list once something depends on it
        self.qseq = 0
        self.route: Any = None

    @classmethod
    def from_record(cls, record: TaskRecord) -> LiveTask:
        live = cls(record.task, record.state)
        live.copy_from(record)
        return live

    def copy_from(self, record: TaskRecord) -> None:
        """Take every stored field from ``record`` (the store is the truth)."""
        _copy_stored(self, record)

    def to_record(self, version: int = 0) -> TaskRecord:
        return TaskRecord(self.task, version=version, **{name: getattr(self, name) for name in _STORED})

    def to_status(self, waiting_on: tuple[WaitReason, ...] = ()) -> TaskStatus:
        return task_status(self, waiting_on)
