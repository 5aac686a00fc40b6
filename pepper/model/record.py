"""A task as stored: its spec plus how far it got, with ``from_row``/``to_row``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from operator import attrgetter
from typing import Any

from pepper.model import codec
from pepper.model.outcome import TaskOutcome
from pepper.model.recovery import NO_RECOVERY, RecoveryState
from pepper.model.slots import quick_init
from pepper.model.status import TaskError, TaskStatus, WaitReason
from pepper.model.task import Task, TaskState, read_dependencies, read_inputs, read_policy

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
        stored, so the row's spec columns are not decoded again). A ``task`` created at another time is not this
        row's: the id was pruned and submitted again, and the row's own spec is read."""
        make = _new_record if cls is TaskRecord else cls
        if task is not None and (task.task_id != row["task_id"] or task.created_at != row["created_at"]):
            task = None
        return make(  # by position, in field order: records are read by the hundred thousand
            task if task is not None else Task.from_row(row),
            _STATES[row["state"]],
            row["attempts"],
            row["failures"],
            row["agent_id"],
            row["owner"],
            row["ready_at"],
            row["started_at"],
            row["finished_at"],
            row["next_attempt_at"],
            codec.decode(row["result"]),
            row["result"],
            TaskError.from_dict(codec.decode(row["error"])),
            row["reason"],
            row["progress"],
            row["progress_message"],
            bool(row["cancel_requested"]),
            row["placement"],
            NO_RECOVERY if row["recovery"] is None else RecoveryState.from_data(codec.decode(row["recovery"])),
            row["parked_at"],
            TaskOutcome.of(row["outcome"]),
            row["version"],
        )

    def to_status(self, waiting_on: tuple[WaitReason, ...] = ()) -> TaskStatus:
        return task_status(self, waiting_on)


_new_record = quick_init(TaskRecord)

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


def _status_maker() -> Callable[[Any, tuple[WaitReason, ...]], TaskStatus]:
    """``task_status`` written out, one argument a field (statuses are made by the hundred thousand when many
    tasks are waited for; building dictionaries of the values to pass cost three times as much)."""
    sources = {name: f"progress.{name}" for name in _FROM_PROGRESS}
    sources.update({name: f"task.{name}" for name in _FROM_SPEC})
    sources["waiting_on"] = "waiting_on"
    sources["policy"] = "None if task.policy is None else str(task.policy)"
    namespace: dict[str, Any] = {"TaskStatus": quick_init(TaskStatus)}
    arguments = []
    for f in fields(TaskStatus):  # in order: positional arguments pass quicker than keywords
        if f.name not in sources:  # a field with no source: its default
            if f.default is MISSING:
                namespace[f"factory_{f.name}"] = f.default_factory
                sources[f.name] = f"factory_{f.name}()"
            else:
                namespace[f"default_{f.name}"] = f.default
                sources[f.name] = f"default_{f.name}"
        arguments.append(sources[f.name])
    body = f"task = progress.task\n    return TaskStatus({', '.join(arguments)})"
    exec(f"def make(progress, waiting_on):\n    {body}\n", namespace)
    make: Callable[[Any, tuple[WaitReason, ...]], TaskStatus] = namespace["make"]
    return make


_make_status = _status_maker()


def task_status(progress: Any, waiting_on: tuple[WaitReason, ...] = ()) -> TaskStatus:
    """The status of a task from how far it got: a ``TaskRecord``, or the engine's live task (both hold
    ``STORED_FIELDS`` and the task's spec as ``task``)."""
    return _make_status(progress, waiting_on)


#: The columns of the tasks table a status is read from by ``status_from_row``: a column for each field of
#: ``TaskStatus`` but ``waiting_on`` (the engine's to say), in field order.
STATUS_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TaskStatus) if f.name != "waiting_on")
#: How a column's stored value becomes its field's (``{}``: the value), as ``TaskRecord.from_row`` and
#: ``Task.from_row`` read it.
_COLUMN_READS = {
    "state": "_STATES[{}]",
    "dependencies": "read_dependencies({})",
    "inputs": "read_inputs({})",
    "result": "decode({})",
    "error": "TaskError.from_dict(decode({}))",
    "outcome": "TaskOutcome.of({})",
    "policy": "None if {0} is None else str(read_policy({0}))",
}


def _row_status_maker() -> Callable[..., TaskStatus]:
    """A function of the ``STATUS_COLUMNS`` of a row, by position, making its status without the task's record
    and spec (statuses of finished tasks are read by the hundred thousand when many are waited for)."""
    namespace: dict[str, Any] = {
        "TaskStatus": quick_init(TaskStatus),
        "_STATES": _STATES,
        "decode": codec.decode,
        "TaskError": TaskError,
        "TaskOutcome": TaskOutcome,
        "read_dependencies": read_dependencies,
        "read_inputs": read_inputs,
        "read_policy": read_policy,
    }
    values = [
        "()" if f.name == "waiting_on" else _COLUMN_READS.get(f.name, "{}").format(f.name) for f in fields(TaskStatus)
    ]
    exec(f"def make({', '.join(STATUS_COLUMNS)}):\n    return TaskStatus({', '.join(values)})\n", namespace)
    make: Callable[..., TaskStatus] = namespace["make"]
    return make


#: The status of a stored task from its ``STATUS_COLUMNS``: ``status_from_row(*row)``; the same as its record's
#: ``to_status()``.
status_from_row = _row_status_maker()


#: (Read from the class, an enum member costs a look-up through its metaclass: these are read once a task.)
_BLOCKED, _PENDING = TaskState.BLOCKED, TaskState.PENDING


def initial_state(task: Task) -> TaskState:
    """The state a task is stored with: ``blocked`` until an engine has checked its dependencies."""
    return _BLOCKED if task.dependencies else _PENDING
