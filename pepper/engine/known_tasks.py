"""The tasks an engine knows, as a submission is checked against them (``model.submission.prepare``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from pepper.model.task import Task

if TYPE_CHECKING:
    from pepper.engine.shell import Engine


class KnownTasks:
    """``StoredTasks`` for ``prepare``: memory first, then not-yet-committed submissions, then the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        # Tasks only in the store are not looked up here: the insert itself detects them and compares specs
        # (see Store.commit). Nor are finished ones held in memory: a prune (here or in another process) may
        # have deleted their rows since, and then the id is free; the insert tells.
        tasks, pending = self._engine.state.tasks, self._engine.pending
        found: dict[str, Task] = {}
        for tid in task_ids:
            live = tasks.get(tid)
            if live is not None and not live.state.is_final:
                found[tid] = live.task
            elif tid in pending:
                found[tid] = pending[tid]
        return found

    def awaited(self, task_ids: Collection[str]) -> bool:
        # Every unfinished task is in memory, so memory knows who waits for what.
        awaiting = self._engine.state.awaiting
        if any(tid in awaiting for tid in task_ids):
            return True
        wanted = set(task_ids)
        return any(dep in wanted for p in self._engine.pending.values() for dep in p.dependencies)

    def deps_of(self, task_id: str) -> Iterable[str]:
        engine = self._engine
        if task_id in engine.state.tasks:
            return engine.state.tasks[task_id].task.dependencies
        if task_id in engine.pending:
            return engine.pending[task_id].dependencies
        record = engine.store.get_tasks([task_id]).get(task_id)
        return record.task.dependencies if record else ()

    def runs_among(self, run_ids: Collection[str]) -> Collection[str]:
        driven = self._engine.runs.runs
        found = {run_id for run_id in run_ids if run_id in driven}
        return found | self._engine.store.runs.among([run_id for run_id in run_ids if run_id not in found])
