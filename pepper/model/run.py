"""What an agent receives: one attempt of one task."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pepper.errors import ValidationError, shown
from pepper.model.task import Task

ProgressSink = Callable[[str, int, float, "str | None"], None]
#: ``(task id, attempt, message, level)``: where ``task.log`` lines go.
LogSink = Callable[[str, int, str, str], None]
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


_MAX_PROGRESS_MESSAGE = 1000  # characters; a longer message is cut


class CancelFlag:
    """Set by the engine when an attempt is cancelled or times out."""

    __slots__ = ("is_set",)

    def __init__(self) -> None:
        self.is_set = False


def _no_progress(task_id: str, attempt: int, fraction: float, message: str | None) -> None:
    return None


def _no_log(task_id: str, attempt: int, message: str, level: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One attempt of a task on an agent.

    ``inputs`` are the task's own inputs; ``dependency_results`` maps each
    dependency's id (for a workflow step: its step id) to the result it completed with.
    """

    task: Task
    attempt: int
    agent_id: str
    dependency_results: Mapping[str, Any] = field(default_factory=dict)
    _progress: ProgressSink = field(default=_no_progress, repr=False, compare=False)
    _cancel: CancelFlag = field(default_factory=CancelFlag, repr=False, compare=False)
    _log: LogSink = field(default=_no_log, repr=False, compare=False)

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def task_type(self) -> str:
        return self.task.task_type

    @property
    def inputs(self) -> Any:
        return self.task.inputs

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.task.metadata

    @property
    def run_id(self) -> str | None:
        """The workflow run this task is a step of (None for a plain task)."""
        return self.task.metadata.get("pepper.run")

    @property
    def step_id(self) -> str | None:
        """Its step id in that workflow (``dependency_results`` are then keyed by step id too)."""
        return self.task.metadata.get("pepper.step")

    @property
    def cancelled(self) -> bool:
        """True once the attempt was cancelled or timed out; long sync agents may poll it."""
        return self._cancel.is_set

    def report_progress(self, fraction: float, message: str | None = None) -> None:
        """Tell pepper how far this attempt got (0.0 - 1.0); shown by ``get_task_status``."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or fraction != fraction:
            raise ValidationError(f"progress must be a number from 0.0 to 1.0, got {shown(fraction)}", field="fraction")
        if message is not None and not isinstance(message, str):
            raise ValidationError(f"a progress message must be text, got {type(message).__name__}", field="message")
        if message is not None and len(message) > _MAX_PROGRESS_MESSAGE:  # shown in status lines, not a log
            message = message[: _MAX_PROGRESS_MESSAGE - 1] + "…"
        self._progress(self.task.task_id, self.attempt, min(1.0, max(0.0, float(fraction))), message)

    def log(self, message: str, level: str = "INFO") -> None:
        """Add a line to this attempt's log (``pepper logs TASK``), whatever the logging configuration."""
        if not isinstance(message, str):
            raise ValidationError(f"a log message must be text, got {type(message).__name__}", field="message")
        name = level.upper() if isinstance(level, str) else level
        if name not in _LOG_LEVELS:
            raise ValidationError(f"unknown log level {shown(level)}; valid levels: {', '.join(_LOG_LEVELS)}",
                                  field="level")  # fmt: skip
        self._log(self.task.task_id, self.attempt, message, name)
