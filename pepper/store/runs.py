"""Reads and writes of workflow runs (the ``runs`` table) and of the tasks of their steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.errors import RunNotFoundError
from pepper.model import codec
from pepper.model.record import TaskRecord
from pepper.model.submission import Submission
from pepper.model.task import Task
from pepper.model.workflow_run import RunRecord, RunState
from pepper.store.connection import transaction
from pepper.store.protocol import TaskSave

if TYPE_CHECKING:
    from pepper.store.sqlite import SQLiteStore


class RunLog:
    """Runs of workflows, stored beside the tasks of their steps."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def create(self, run: RunRecord, tasks: Sequence[Task], writer: str) -> Submission:
        """Store a new run and the tasks of its first steps, all or nothing."""
        store = self._store
        params = (run.run_id, run.spec.name, codec.encode(run.spec.to_dict()), codec.encode(dict(run.inputs)),
                  run.created_at, run.driver, None if run.plan is None else codec.encode(run.plan))  # fmt: skip
        with store.lock, transaction(store.conn) as conn:
            submission = store.submit_in(conn, tasks, writer)
            conn.execute(store.statement("insert_run"), params)
        return submission

    def add_settled(self, records: Sequence[TaskRecord], writer: str) -> list[str]:
        """Store tasks that are final from the start (a skipped step, a step that can no longer run);
        returns the ids stored (an id already present is left alone)."""
        store = self._store
        with store.lock, transaction(store.conn) as conn:
            store.begin_change(conn)
            present = store.insert_tasks(conn, [record.task for record in records], writer)
            fresh = [TaskSave.of(record, 1) for record in records if record.task.task_id not in present]
            store.save_in(conn, fresh, writer)
        return [save.task.task_id for save in fresh]

    def get(self, run_id: str) -> RunRecord:
        rows = self._store.query("run_by_id", (run_id,))
        if not rows:
            raise RunNotFoundError(run_id)
        return RunRecord.from_row(rows[0])

    def list(self, state: RunState | None = None, limit: int = 100) -> list[RunRecord]:
        """Most recent first."""
        if state is None:
            rows = self._store.query("list_runs", (limit,))
        else:
            rows = self._store.query("list_runs_in_state", (state.value, limit))
        return [RunRecord.from_row(r) for r in rows]

    def count_by_state(self) -> dict[str, int]:
        return {row["state"]: row["n"] for row in self._store.query("count_runs_by_state")}

    def tasks(self, run_id: str) -> dict[str, TaskRecord]:
        """The stored tasks of a run's steps, by task id."""
        rows = self._store.query("run_tasks", (f"{run_id}/", f"{run_id}0"))
        return {row["task_id"]: TaskRecord.from_row(row) for row in rows}

    def finish(self, run_id: str, state: RunState, reason: str | None, at: float) -> bool:
        """Record how a run ended; False if it had already ended."""
        return self._store.execute("finish_run", (state.value, reason, at, run_id)) == 1

    def request_cancel(self, run_id: str, reason: str) -> bool:
        return self._store.execute("request_run_cancel", (reason, run_id)) == 1

    def set_driver(self, run_id: str, driver: str) -> bool:
        """Make ``driver`` (a worker id) the process that advances the run."""
        return self._store.execute("set_run_driver", (driver, run_id)) == 1
