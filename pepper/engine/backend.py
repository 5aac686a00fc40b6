"""The one protocol the public faces ask their questions through.

Two implementations answer it today: ``EngineService`` (an engine runs in this
process and owns the live state; every answer is computed on its thread) and
``StoreBackend`` (no engine here: answers come from the store, reading only the
rows a question needs). A remote client will be a third. The faces in
``pepper.core`` and the CLI depend on this protocol only, never on the engine's
internals (``tests/unit/test_layers.py`` keeps it so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pepper.model.feedback import TaskFeedback
from pepper.model.recovery import Policy, RecoveryOutcome
from pepper.model.status import TaskError, TaskStatus
from pepper.model.task import Task, TaskState
from pepper.monitoring.window import Observation


class Backend(Protocol):
    """Submit, follow, wait for, cancel and recover tasks; rate them; read recent performance."""

    async def submit(self, tasks: Sequence[Task]) -> list[Task]:
        """Validate and store ``tasks`` (all or none); returns once they are durable."""
        ...

    async def status(self, task_id: str) -> TaskStatus:
        """The task's status, with the reasons it waits."""
        ...

    async def wait(self, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
        """Wait until every task is final or parked; their statuses, in order."""
        ...

    async def cancel(self, task_id: str, reason: str) -> bool:
        """Cancel a task and its dependents; False if it had already finished."""
        ...

    async def list_tasks(self, state: TaskState | None, limit: int) -> list[TaskStatus]:
        """Tasks, most recently submitted first."""
        ...

    async def add_feedback(self, feedback: TaskFeedback) -> TaskFeedback:
        """Store a rating of a finished task."""
        ...

    async def handle_error(self, task_id: str, error: TaskError, policy: Policy) -> RecoveryOutcome:
        """Apply a recovery policy to an error of a task by hand."""
        ...

    async def replay(self, task_id: str, agent_id: str | None) -> bool:
        """Run a parked (or failed) task again; False if it is neither."""
        ...

    async def drop(self, task_id: str, reason: str) -> bool:
        """Give up a parked task; False if it is not parked."""
        ...

    async def place(self, placements: Mapping[str, str | None]) -> None:
        """Pin waiting tasks to agents; ``None`` lifts a placement."""
        ...

    async def observations(self, since: float) -> tuple[list[Observation], str]:
        """Attempts that ended after ``since``, and where they were read (this process, or the database)."""
        ...
