"""Outcomes: a task or run that failed, was cancelled, or was not done in time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pepper.errors.base import PepperError


class TaskFailedError(PepperError, RuntimeError):
    """The task ended ``failed``; ``error`` holds what the agent raised."""

    def __init__(self, task_id: str, error: Any) -> None:
        detail = f"{error.type}: {error.message}" if error is not None else "no error recorded"
        super().__init__(f"task {task_id!r} failed: {detail}")
        self.task_id = task_id
        self.error = error


class TaskParkedError(TaskFailedError):
    """The task is parked in the dead-letter queue: it has no result, and waits for a person to replay or drop
    it. A ``TaskFailedError``, so code that handles failures handles it too."""

    def __init__(self, task_id: str, error: Any) -> None:
        super().__init__(task_id, error)
        detail = f"{error.type}: {error.message}" if error is not None else "no error recorded"
        self.args = (
            f"task {task_id!r} is parked in the dead-letter queue ({detail}); `pepper dlq replay {task_id}` runs "
            f"it again, `pepper dlq drop {task_id}` gives it up",
        )


class TaskCancelledError(PepperError, RuntimeError):
    """The task ended ``cancelled``; ``reason`` says why."""

    def __init__(self, task_id: str, reason: str | None) -> None:
        super().__init__(f"task {task_id!r} was cancelled: {reason or 'no reason given'}")
        self.task_id = task_id
        self.reason = reason


class WaitTimeoutError(PepperError, TimeoutError):
    """``wait`` returned before the tasks finished; ``pending`` lists those still open."""

    def __init__(self, pending: Sequence[str], timeout: float) -> None:
        shown = ", ".join(repr(t) for t in pending[:5])
        more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
        super().__init__(
            f"timed out after {timeout:g}s waiting for {shown}{more}; `pepper status TASK` says why a task is waiting"
        )
        self.pending = tuple(pending)
        self.timeout = timeout


class WorkflowTimeoutError(WaitTimeoutError):
    """A workflow run did not finish within its timeout; it was cancelled. ``result`` is where it stood."""

    def __init__(self, run_id: str, timeout: float, unfinished: Sequence[str], result: Any = None) -> None:
        PepperError.__init__(
            self,
            f"workflow run {run_id!r} did not finish within {timeout:g}s and was cancelled; "
            f"unfinished steps: {', '.join(unfinished) or 'none'}",
        )
        self.pending = tuple(unfinished)
        self.timeout = timeout
        self.run_id = run_id
        self.result = result
