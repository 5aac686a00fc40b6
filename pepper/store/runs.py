"""Reads and writes of workflow runs (the ``runs`` table) and of the tasks of their steps."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pepper.errors import RunNotFoundError
from pepper.model import codec
from pepper.model.record import TaskRecord
from pepper.model.workflow_run import RunRecord, RunState
from pepper.store.protocol import RunEnd, TaskSave

if TYPE_CHECKING:
    from pepper.store.sql_store import Connection, SqlStore


class RunLog:
    """Runs of workflows, stored beside the tasks of their steps."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def insert_in(self, conn: Connection, runs: Sequence[RunRecord]) -> None:
        """Within an open write transaction: store new runs (the store's commit does, with their first steps)."""
        params = [
            (run.run_id, run.spec.name, codec.encode(run.spec.to_dict()), codec.encode(dict(run.inputs)),
             run.created_at, run.driver, None if run.plan is None else codec.encode(run.plan), run.schedule,
             run.parent)
            for run in runs
        ]  # fmt: skip
        conn.executemany(self._store.statement("insert_run"), params)

    def finals_in(self, conn: Connection, records: Sequence[TaskRecord], writer: str) -> set[str]:
        """Within an open write transaction: store tasks that are final from the start (a skipped step, a step
        that can no longer run); returns the ids that were already stored (those are left alone)."""
        store = self._store
        present = store.insert_tasks(conn, [record.task for record in records], writer)
        store.save_in(conn, [TaskSave.of(r, 1) for r in records if r.task.task_id not in present], writer)
        return present

    def finish_in(self, conn: Connection, ends: Sequence[RunEnd]) -> None:
        """Within an open write transaction: record how runs ended (a run that had ended is left alone)."""
        conn.executemany(self._store.statement("finish_run"), [(e.state.value, e.reason, e.at, e.run_id) for e in ends])

    def get(self, run_id: str) -> RunRecord:
        rows = self._store.query("run_by_id", (run_id,))
        if not rows:
            raise RunNotFoundError(run_id)
        return RunRecord.from_row(rows[0])

    def among(self, run_ids: Iterable[str]) -> set[str]:
        """Those of ``run_ids`` that are stored runs."""
        return {run_id for run_id in run_ids if self._store.query("run_exists", (run_id,))}

    def list(
        self, state: RunState | None = None, limit: int = 100, *, after: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        """Most recent first; ``after``: only runs older than that one (the next page); ``workflow``: only the
        runs of the workflow of that name."""
        params = {"state": None if state is None else state.value, "after": after, "limit": limit, "workflow": workflow}
        return [RunRecord.from_row(r) for r in self._store.query("list_runs", params)]

    def count_by_state(self) -> dict[str, int]:
        return {row["state"]: row["n"] for row in self._store.query("count_runs_by_state")}

    def tasks(self, run_id: str) -> dict[str, TaskRecord]:
        """The stored tasks of a run's steps, by task id."""
        rows = self._store.query("run_tasks", (f"{run_id}/", f"{run_id}0"))
        return {row["task_id"]: TaskRecord.from_row(row) for row in rows}

    def children(self, parent: str) -> builtins.list[RunRecord]:
        """The runs the step ``parent`` (its task id, ``run/step``) started, oldest first."""
        return [RunRecord.from_row(r) for r in self._store.query("runs_of_parent", (parent,))]

    def children_of_run(self, run_id: str) -> builtins.list[RunRecord]:
        """The runs started by steps of ``run_id`` (its sub-workflows), oldest first."""
        return [RunRecord.from_row(r) for r in self._store.query("runs_of_parent_run", (f"{run_id}/", f"{run_id}0"))]

    def request_cancel(self, run_id: str, reason: str) -> bool:
        return self._store.execute("request_run_cancel", (reason, run_id)) == 1

    def reopen(self, run_id: str, driver: str) -> bool:
        """Make an ended run running again, driven by ``driver`` (a re-run); False if it had not ended."""
        return self._store.execute("reopen_run", (driver, run_id)) == 1

    def set_driver(self, run_id: str, driver: str) -> bool:
        """Make ``driver`` (a worker id) the process that advances the run."""
        return self._store.execute("set_run_driver", (driver, run_id)) == 1
