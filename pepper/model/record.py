"""A task as stored: its spec plus how far it got, with ``from_row``/``to_row``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from pepper.model import codec
from pepper.model.outcome import TaskOutcome
from pepper.model.recovery import NO_RECOVERY, RecoveryState
from pepper.model.status import TaskError, TaskStatus, WaitReason
from pepper.model.task import Task, TaskState

_STATES = {state.value: state for state in TaskState}  # quicker than calling the enum, row after row


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One row of the tasks table. ``version`` grows by one with every write."""

    task: Task
    state: TaskState
    attempts: int = 0
    failures: int = 0
    agent_id: str | None = None
    owner: str | None = None
    ready_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    result: Any = None
    result_json: str | None = None
    error: TaskError | None = None
    reason: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    cancel_requested: bool = False
    placement: str | None = None
    recovery: RecoveryState = NO_RECOVERY  # where it stands in its recovery policy
    parked_at: float | None = None  # when it was parked in the dead-letter queue (None: it is not)
    outcome: TaskOutcome | None = None  # skipped or aborted (a final task only)
    version: int = 1

    @classmethod
    def from_row(cls, row: codec.Row, task: Task | None = None) -> TaskRecord:
        """The record of a stored row; ``task``: its spec, if already known (a task's spec never changes once
        stored, so the row's spec columns are not decoded again)."""
        return cls(
            task=task if task is not None and task.task_id == row["task_id"] else Task.from_row(row),
            state=_STATES[row["state"]],
            attempts=row["attempts"],
            failures=row["failures"],
            agent_id=row["agent_id"],
            owner=row["owner"],
            ready_at=row["ready_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            next_attempt_at=row["next_attempt_at"],
            result=codec.decode(row["result"]),
            result_json=row["result"],
            error=TaskError.from_dict(codec.decode(row["error"])),
            reason=row["reason"],
            progress=row["progress"],
            progress_message=row["progress_message"],
            cancel_requested=bool(row["cancel_requested"]),
            placement=row["placement"],
            recovery=NO_RECOVERY if row["recovery"] is None else RecoveryState.from_data(codec.decode(row["recovery"])),
            parked_at=row["parked_at"],
            outcome=TaskOutcome.of(row["outcome"]),
            version=row["version"],
        )

    def to_status(self, waiting_on: tuple[WaitReason, ...] = ()) -> TaskStatus:
        return task_status(self, waiting_on)


#: How far a task got: every field of ``TaskRecord`` but its spec and version, in declaration order. The one
#: list of them: the engine's live slots and the store's task saves are derived from it.
STORED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TaskRecord) if f.name not in ("task", "version"))
#: The values of the stored fields, in ``STORED_FIELDS`` order, of a ``TaskRecord`` or the engine's live task.
stored_values: Callable[[Any], tuple[Any, ...]] = attrgetter(*STORED_FIELDS)


_SHOWN = frozenset(f.name for f in fields(TaskStatus))
#: What a status shows of how far the task got, and of its spec (its ``policy`` is shown as text): each field of
#: ``TaskStatus`` is read from the one that has it, so a field added to the record shows without another list.
_FROM_PROGRESS = tuple(name for name in STORED_FIELDS if name in _SHOWN)
_FROM_SPEC = tuple(f.name for f in fields(Task) if f.name in _SHOWN and f.name not in (*_FROM_PROGRESS, "policy"))
_progress_values: Callable[[Any], tuple[Any, ...]] = attrgetter(*_FROM_PROGRESS)
_spec_values: Callable[[Any], tuple[Any, ...]] = attrgetter(*_FROM_SPEC)


def task_status(progress: Any, waiting_on: tuple[WaitReason, ...] = ()) -> TaskStatus:
    """The status of a task from how far it got: a ``TaskRecord``, or the engine's live task (both hold
    ``STORED_FIELDS`` and the task's spec as ``task``)."""
    task = progress.task
    return TaskStatus(
        **dict(zip(_FROM_SPEC, _spec_values(task), strict=True)),
        **dict(zip(_FROM_PROGRESS, _progress_values(progress), strict=True)),
        waiting_on=waiting_on,
        policy=None if task.policy is None else str(task.policy),
    )


def initial_state(task: Task) -> TaskState:
    """The state a task is stored with: ``blocked`` until an engine has checked its dependencies."""
    return TaskState.BLOCKED if task.dependencies else TaskState.PENDING
