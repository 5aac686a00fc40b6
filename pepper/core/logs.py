"""``TaskLogs``: what attempts wrote (a command's stderr, a Python agent's log records), read or followed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pepper.core.default import default_runtime
from pepper.core.runtime import Runtime
from pepper.errors import ValidationError
from pepper.model.task_log import TaskLog


class TaskLogs:
    """Reads the logs pepper keeps of each attempt: the first and the last part of what it wrote, within the
    runtime's ``task_log_limit`` (the middle is shown as ``... N bytes cut ...``)."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime or default_runtime()

    def get(self, task_id: str, attempt: int | None = None, *, after: int = 0) -> TaskLog:
        """The log of one attempt of ``task_id`` (its latest by default), from chunk ``after`` on."""
        if not isinstance(task_id, str) or not task_id:
            raise ValidationError(f"a task id must be non-empty text, got {task_id!r}", field="task_id")
        return self.runtime.read(lambda backend: backend.task_log(task_id, attempt, after))

    def follow(
        self, task_id: str, attempt: int | None = None, *, wait: Callable[[float], Any] | None = None,
        poll: float = 0.2,
    ) -> Iterator[TaskLog]:  # fmt: skip
        """The attempt's log as it is written: each new part, until the attempt ended (for an attempt not given,
        the one running or next to run). ``wait(seconds)`` pauses between looks (``time.sleep`` by default)."""
        import time

        pause = wait or time.sleep
        part = self.get(task_id, attempt)
        while part.attempt == 0 and not part.ended:  # not started yet: its first attempt is the one to follow
            pause(poll)
            part = self.get(task_id, attempt)
        chosen = part.attempt
        while True:
            if part.chunks or part.ended:
                yield part
            if part.ended:
                return
            pause(poll)
            part = self.get(task_id, chosen, after=part.next_seq)
