"""The error history (the ``errors`` table) and the dead-letter queue (parked tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.model.record import TaskRecord
from pepper.model.recovery import ErrorRecord

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore


class ErrorLog:
    """Reads of the error history; errors are written with the task saves that decide on them."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def of_task(self, task_id: str) -> list[ErrorRecord]:
        """Every error of a task, oldest first."""
        return [ErrorRecord.from_row(r) for r in self._store.query("errors_of_task", (task_id,))]

    def of_agent(self, agent_id: str, limit: int = 100) -> list[ErrorRecord]:
        """The latest errors on an agent, newest first."""
        return [ErrorRecord.from_row(r) for r in self._store.query("errors_of_agent", (agent_id, limit))]

    def of_run(self, run_id: str) -> list[ErrorRecord]:
        """Every error of the steps of a workflow run, oldest first."""
        return [ErrorRecord.from_row(r) for r in self._store.query("errors_of_run", (f"{run_id}/", f"{run_id}0"))]

    def recent(self, limit: int = 100) -> list[ErrorRecord]:
        """The latest errors, newest first."""
        return [ErrorRecord.from_row(r) for r in self._store.query("recent_errors", (limit,))]

    def parked(self) -> list[TaskRecord]:
        """The dead-letter queue: tasks parked for a person, oldest first."""
        return [TaskRecord.from_row(r) for r in self._store.query("parked_tasks")]

    def parked_page(self, after: tuple[float, str] | None, limit: int) -> list[TaskRecord]:
        """Up to ``limit`` parked tasks after the place ``after`` (when parked, then id; None: from the first),
        oldest first: only their rows are read."""
        at, task_id = after if after is not None else (-1.0, "")
        return [TaskRecord.from_row(r) for r in self._store.query("parked_page", (at, at, task_id, limit))]

    def parked_ids(self) -> list[str]:
        """The ids of the parked tasks, oldest first (their rows are not read)."""
        return [r["task_id"] for r in self._store.query("parked_task_ids")]
