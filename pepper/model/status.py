"""What callers read back about a task: its status, its error, and why it waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pepper.model.outcome import TaskOutcome
from pepper.model.task import Priority, TaskState


@dataclass(frozen=True, slots=True)
class TaskError:
    """An error an attempt ended with.

    ``kind`` is ``error`` (the agent raised), ``timeout``, ``crash`` (its process
    died), ``interrupted`` (its worker stopped), or ``cancelled``. ``types`` names the
    classes of an exception, its own first, then those it inherits from (``ConnectionError``,
    ``OSError``, ``Exception``, ``BaseException``): a policy's ``retry_on`` / ``never_retry``
    match any of them. Empty when only ``type`` is known.
    """

    type: str
    message: str
    traceback: str | None = None
    kind: str = "error"
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # An agent's message may carry text that is not valid Unicode (a file name from os.listdir), shown escaped,
        # or NUL characters (binary output), shown as U+FFFD as in logs: the error itself can always be stored (on
        # either database alike) and printed.
        for name in ("type", "message", "traceback"):
            text = getattr(self, name)
            if isinstance(text, str):
                object.__setattr__(self, name, storable_text(text))
        object.__setattr__(self, "types", tuple(str(t) for t in self.types)[:_MOST_TYPES])

    @property
    def names(self) -> tuple[str, ...]:
        """The names a policy matches the error by: ``types``, else ``type`` alone."""
        return self.types or (self.type,)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "kind": self.kind,
        }
        if self.types:
            data["types"] = list(self.types)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TaskError | None:
        if not data:
            return None
        types = tuple(data.get("types") or ())
        return cls(data["type"], data["message"], data.get("traceback"), data.get("kind", "error"), types)

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


#: The most class names an error keeps (an exception's classes rarely number more than a handful).
_MOST_TYPES = 32


def storable_text(text: str) -> str:
    """``text`` as every store can hold it: what is not valid Unicode escaped (``\\udcff``), NUL characters as
    U+FFFD (PostgreSQL's text cannot hold them); the same text when it holds neither."""
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def error_types(exc: BaseException) -> tuple[str, ...]:
    """The names of ``exc``'s classes, its own first, as ``TaskError.types`` keeps them."""
    return tuple(c.__name__ for c in type(exc).__mro__ if c is not object)


@dataclass(frozen=True, slots=True)
class WaitReason:
    """One reason a task is not running yet, plain enough to show a person.

    ``kind`` is a stable code (``dependency``, ``dependency_missing``, ``no_agent``,
    ``agent_missing``, ``capacity``, ``queue``, ``retry``, ``delay``, ...); ``subject`` the id it
    is about; ``details`` the numbers behind the message.
    """

    kind: str
    message: str
    subject: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "subject": self.subject, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaitReason:
        return cls(data["kind"], data["message"], data.get("subject"), dict(data.get("details") or {}))


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A snapshot of one task: its state, who runs it, its outcome, and ``waiting_on``."""

    task_id: str
    task_type: str
    state: TaskState
    priority: int
    dependencies: tuple[str, ...] = ()
    agent_id: str | None = None
    attempts: int = 0
    max_retries: int = 0
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: TaskError | None = None
    reason: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    next_attempt_at: float | None = None
    waiting_on: tuple[WaitReason, ...] = ()
    inputs: Any = None
    #: When it was parked in the dead-letter queue (state ``parked``: it waits for a person to replay or drop it).
    parked_at: float | None = None
    #: Its own recovery policy, as text (None: its agent's or the runtime's, else ``max_retries`` retries).
    policy: str | None = None
    #: Skipped or aborted (a final task that ended so; None otherwise).
    outcome: TaskOutcome | None = None
    #: The time before which it does not start (its delay; None: as soon as it is ready).
    not_before: float | None = None

    @property
    def parked(self) -> bool:
        """In the dead-letter queue, waiting for a person (``pepper dlq``)."""
        return self.state is TaskState.PARKED

    @property
    def priority_name(self) -> str:
        return Priority.label(self.priority)

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def duration(self) -> float | None:
        """Seconds the last attempt ran, once it finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by ``--json``)."""
        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "state": self.state.value,
            "priority": self.priority,
            "priority_name": self.priority_name,
            "dependencies": list(self.dependencies),
            "agent_id": self.agent_id,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "reason": self.reason,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "next_attempt_at": self.next_attempt_at,
            "waiting_on": [w.to_dict() for w in self.waiting_on],
            "inputs": self.inputs,
            "parked_at": self.parked_at,
            "policy": self.policy,
            "outcome": None if self.outcome is None else self.outcome.value,
            "not_before": self.not_before,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskStatus:
        """The status ``to_dict`` gave (an HTTP answer's); keys that are not fields (``duration``...) are derived."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["state"] = TaskState(data["state"])
        values["dependencies"] = tuple(data.get("dependencies") or ())
        values["error"] = TaskError.from_dict(data.get("error"))
        values["waiting_on"] = tuple(WaitReason.from_dict(w) for w in data.get("waiting_on") or ())
        values["outcome"] = TaskOutcome.of(data.get("outcome"))
        return cls(**values)
