"""The sub-workflow steps of a driven run: starting or following their child runs, and settling the step when
its child ends (``ChildRuns``, a part of ``RunDriver``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pepper.engine.subruns import SubRuns, child_inputs, parent_record
from pepper.model.record import TaskRecord
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from pepper.model.workflow import WorkflowSpec, task_id_of
from pepper.model.workflow_run import RunRecord, RunState

if TYPE_CHECKING:
    from pepper.engine.runs import _Run
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine.runs")


def log_refusal(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("released workflow steps could not be stored: %s", future.exception())


class ChildRuns:
    """``RunDriver``'s part for sub-workflow steps; every method runs on the engine loop."""

    engine: Engine
    runs: dict[str, _Run]
    subruns: SubRuns

    if TYPE_CHECKING:  # the driver's own

        def _begin(
            self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None,
            parent: str | None = None, schedule: str | None = None,
        ) -> tuple[str, asyncio.Future[Any]]: ...  # fmt: skip
        def resume(self, run_id: str, spec: WorkflowSpec | None = None) -> RunRecord: ...
        def cancel(self, run_id: str, reason: str) -> bool: ...
        def _advance(self, run_id: str) -> None: ...
        def _store(self, run: _Run, settled: list[TaskRecord], submit: list[Task]) -> None: ...
        def _settled(
            self, run: _Run, step_id: str, state: TaskState, now: float, reason: str | None = None,
            error: TaskError | None = None,
        ) -> TaskRecord: ...  # fmt: skip

    def _start_child(
        self, run: _Run, step: Any, results: Mapping[str, Any], skipped: set[str], now: float,
        settled: list[TaskRecord],
    ) -> None:  # fmt: skip
        """Start the child run of a sub-workflow step, or follow the one it started before a restart."""
        parent = task_id_of(run.record.run_id, step.step_id)
        earlier = self.engine.store.runs.children(parent)
        if earlier:
            child = earlier[-1]
            if child.state.is_final:
                done = self._stored_results(child) if child.state is RunState.COMPLETED else {}
                settled.append(parent_record(step, run.record, child, done, now, run.cancelled))
                return
            self.subruns.follow(parent, child.run_id)
            if child.run_id not in self.runs:
                self.resume(child.run_id)
            return
        try:
            inputs = child_inputs(step, run.record.inputs, results, skipped)
            child_id, submission = self._begin(step.workflow, inputs, None, parent=parent)
        except Exception as exc:  # noqa: BLE001 - a child that cannot start fails its step, not the engine
            error = TaskError(type(exc).__name__, f"the sub-workflow could not start: {exc}")
            settled.append(self._settled(run, step.step_id, TaskState.FAILED, now, error=error))
            return
        self.subruns.follow(parent, child_id)
        submission.add_done_callback(log_refusal)

    def _stored_results(self, child: RunRecord) -> dict[str, Any]:
        stored = self.engine.store.runs.tasks(child.run_id)
        ids = {task_id_of(child.run_id, s.step_id): s.step_id for s in child.spec.steps}
        return {sid: stored[tid].result for tid, sid in ids.items() if tid in stored}

    def _child_ended(self, child: RunRecord, results: Mapping[str, Any]) -> None:
        parent = self.subruns.drop(child.run_id)
        if parent is None:
            return
        run_id, _, step_id = parent.rpartition("/")
        run = self.runs.get(run_id)
        if run is None or step_id in run.final:
            return  # not driven here any more: its next driver finds the child ended
        record = parent_record(run.spec.by_id[step_id], run.record, child, results, self.engine.clock.now(),
                               run.cancelled or run.stopped)  # fmt: skip
        self._store(run, [record], [])
        self._advance(run_id)

    def _cancel_child(self, child_id: str, why: str) -> None:
        try:
            self.cancel(child_id, why)
        except Exception:
            log.exception("could not cancel sub-workflow run %s", child_id)
