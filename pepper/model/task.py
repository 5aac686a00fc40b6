"""The task record, its states and the table of legal transitions, and priorities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

from pepper.errors import InvalidPriorityError, InvalidTransitionError
from pepper.model import codec
from pepper.model.requirements import NO_REQUIREMENTS, Requirements
from pepper.model.slots import quick_init

if TYPE_CHECKING:
    from pepper.model.recovery import Policy


class TaskState(StrEnum):
    """Where a task is in its life. ``completed``, ``failed`` and ``cancelled`` are final.

    ``parked`` is not final (a person may replay it) but nothing happens to it without one:
    waiting for tasks returns once each is final or parked (``is_settled``).
    """

    BLOCKED = "blocked"  # waiting for dependencies (possibly not submitted yet)
    PENDING = "pending"  # ready; waiting for an agent, resources or its retry time
    IN_PROGRESS = "in_progress"  # an agent is running it
    PARKED = "parked"  # in the dead-letter queue: waits for a person to replay, drop or cancel it
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_settled(self) -> bool:
        """Final, or parked: nothing more happens to it unless a person acts."""
        return self in SETTLED_STATES

    def __str__(self) -> str:
        return self.value


FINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
SETTLED_STATES = FINAL_STATES | {TaskState.PARKED}

#: Every legal (from, to) change, with what causes it. Anything else is refused.
TRANSITIONS: Mapping[tuple[TaskState, TaskState], str] = {
    (TaskState.BLOCKED, TaskState.PENDING): "all its dependencies completed",
    (TaskState.BLOCKED, TaskState.CANCELLED): "cancelled, or a dependency failed or was cancelled",
    (TaskState.PENDING, TaskState.IN_PROGRESS): "an agent claimed it",
    (TaskState.PENDING, TaskState.CANCELLED): "cancelled before it started",
    (TaskState.IN_PROGRESS, TaskState.COMPLETED): "its agent returned a result",
    (TaskState.IN_PROGRESS, TaskState.FAILED): "its agent failed and no retry is left",
    (TaskState.IN_PROGRESS, TaskState.PENDING): "retried after a failure, or re-queued after its worker stopped",
    (TaskState.IN_PROGRESS, TaskState.CANCELLED): "cancelled while running",
    (TaskState.PENDING, TaskState.COMPLETED): "skipped by hand (ErrorHandler)",
    (TaskState.PENDING, TaskState.FAILED): "failed by hand (ErrorHandler)",
    (TaskState.FAILED, TaskState.PENDING): "run again by hand (ErrorHandler, or a replay)",
    (TaskState.BLOCKED, TaskState.COMPLETED): "skipped by hand (ErrorHandler) before it could run",
    (TaskState.BLOCKED, TaskState.FAILED): "failed by hand (ErrorHandler) before it could run",
    (TaskState.IN_PROGRESS, TaskState.PARKED): "its attempt failed and its recovery policy parked it",
    (TaskState.PENDING, TaskState.PARKED): "parked by hand (ErrorHandler)",
    (TaskState.FAILED, TaskState.PARKED): "parked by hand (ErrorHandler)",
    (TaskState.FAILED, TaskState.COMPLETED): "skipped by hand (ErrorHandler)",
    (TaskState.PARKED, TaskState.PENDING): "replayed from the dead-letter queue, or retried by hand",
    (TaskState.PARKED, TaskState.FAILED): "dropped from the dead-letter queue, or failed by hand",
    (TaskState.PARKED, TaskState.COMPLETED): "skipped by hand (ErrorHandler)",
    (TaskState.PARKED, TaskState.CANCELLED): "cancelled while parked",
    (TaskState.CANCELLED, TaskState.BLOCKED): "the failed dependency that alone cancelled it was recovered by hand",
}


def check_transition(task_id: str, source: TaskState, target: TaskState) -> None:
    """Raise ``InvalidTransitionError`` unless ``source -> target`` is in ``TRANSITIONS``."""
    if (source, target) not in TRANSITIONS:
        allowed = [dst.value for (src, dst) in TRANSITIONS if src is source]
        raise InvalidTransitionError(task_id, source.value, target.value, allowed)


class Priority(IntEnum):
    """Named priority levels; any integer works too (higher runs first)."""

    LOW = 0
    NORMAL = 10
    MEDIUM = 10  # alias of NORMAL
    HIGH = 20
    CRITICAL = 30

    @classmethod
    def parse(cls, value: Any) -> int:
        """The integer priority for a name (``"high"``), a ``Priority`` or an int."""
        if isinstance(value, bool):
            raise InvalidPriorityError(value, PRIORITY_NAMES)
        if isinstance(value, int):
            if abs(value) > 1_000_000:
                raise InvalidPriorityError(value, PRIORITY_NAMES)
            return int(value)
        if isinstance(value, str):
            number = _BY_NAME.get(value) or _BY_NAME.get(value.strip().lower())
            if number is not None:
                return number
        raise InvalidPriorityError(value, PRIORITY_NAMES)

    @staticmethod
    def label(value: int) -> str:
        """``"high"`` for 20, ``"15"`` for 15."""
        try:
            return Priority(value).name.lower()
        except ValueError:
            return str(value)


PRIORITY_NAMES = ("critical", "high", "medium", "normal", "low")
_BY_NAME = {name: int(Priority[name.upper()]) for name in PRIORITY_NAMES}


@dataclass(frozen=True, slots=True)
class Task:
    """A submitted unit of work: what to run, not how far it got (see ``TaskStatus``)."""

    task_id: str
    task_type: str
    priority: int = int(Priority.NORMAL)
    dependencies: tuple[str, ...] = ()
    inputs: Any = field(default_factory=dict)
    agent: str | None = None
    requirements: Requirements = NO_REQUIREMENTS
    timeout: float | None = None
    max_retries: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    inputs_json: str = field(default="{}", repr=False, compare=False)
    policy: Policy | None = None  # its own recovery policy (else its agent's, else the runtime's)
    #: Not started before this time (seconds since the epoch; None: as soon as it is ready). Not a field
    #: ``spec_differences`` compares: a re-submission with a relative delay keeps the first time.
    not_before: float | None = None

    SPEC_FIELDS = (
        "task_type",
        "priority",
        "dependencies",
        "inputs",
        "agent",
        "requirements",
        "timeout",
        "max_retries",
        "metadata",
        "policy",
    )

    def spec_differences(self, other: Task) -> list[str]:
        """Names of the specification fields where ``other`` differs from this task."""
        diffs = []
        for name in self.SPEC_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "dependencies":
                mine, theirs = frozenset(mine), frozenset(theirs)
            if name in _JSON_FIELDS:
                if not codec.same(mine, theirs):  # True, 1 and 1.0 are equal in Python, not in a spec
                    diffs.append(name)
            elif mine != theirs:
                diffs.append(name)
        return diffs

    def to_row(self) -> tuple[Any, ...]:
        """Values for the specification columns, in ``SPEC_COLUMNS`` order."""
        return (
            self.task_id,
            self.task_type,
            self.priority,
            codec.encode_ids(self.dependencies),
            self.inputs_json,
            self.agent,
            "{}" if self.requirements is NO_REQUIREMENTS else codec.encode(self.requirements.to_dict()),
            self.timeout,
            self.max_retries,
            codec.encode(dict(self.metadata)) if self.metadata else "{}",
            self.created_at,
            None if self.policy is None else codec.encode(self.policy.to_data()),
            self.not_before,
        )

    @classmethod
    def from_row(cls, row: codec.Row) -> Task:
        """Rebuild a task from a stored row (see ``SPEC_COLUMNS``)."""
        make = _new_task if cls is Task else cls
        return make(  # by position, in field order: rows are read by the hundred thousand
            row["task_id"],
            row["task_type"],
            row["priority"],
            read_dependencies(row["dependencies"]),
            read_inputs(row["inputs"]),
            row["agent"],
            _requirements(row["requirements"]),
            row["timeout"],
            row["max_retries"],
            _metadata(row["metadata"]),
            row["created_at"],
            row["inputs"],
            None if row["policy"] is None else read_policy(row["policy"]),
            row["not_before"],
        )


#: The fields holding JSON given by the user: compared by type as well as by value.
_JSON_FIELDS = frozenset({"inputs", "metadata"})

# Rows are read by the thousand (every worker reads every task), and most hold the same few texts in these
# columns: those are not decoded again.
_requirements_read: dict[str | None, Requirements] = {None: NO_REQUIREMENTS, "{}": NO_REQUIREMENTS}


def _requirements(text: str | None) -> Requirements:
    found = _requirements_read.get(text)
    if found is None:
        found = Requirements.parse(codec.decode(text))
        if len(_requirements_read) < 256:  # frozen: one value serves every task stored with this text
            _requirements_read[text] = found
    return found


def read_dependencies(text: str) -> tuple[str, ...]:
    """The ``dependencies`` column's ids."""
    return () if text == "[]" else tuple(codec.decode(text))


def read_inputs(text: str | None) -> Any:
    """The ``inputs`` column's value."""
    return {} if text == "{}" else codec.decode(text)


def _metadata(text: str | None) -> Any:
    return {} if text == "{}" else codec.decode(text)


def read_policy(text: str) -> Policy:
    """The ``policy`` column's recovery policy (not NULL)."""
    from pepper.model.recovery_policy import stored_policy  # recovery -> status -> task: imported when first needed

    return stored_policy(codec.decode(text))


_new_task = quick_init(Task)

#: The specification columns of the ``tasks`` table, in ``to_row`` order (``policy`` and ``not_before`` came
#: last, with their migrations).
SPEC_COLUMNS = (
    "task_id",
    *(name for name in Task.SPEC_FIELDS if name != "policy"),
    "created_at",
    "policy",
    "not_before",
)
