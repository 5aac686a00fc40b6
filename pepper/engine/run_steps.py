"""Where the steps of a driven run stand: their states, their results and how they ended, and what the agent of a
step receives (``RunSteps``, a part of ``RunDriver``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pepper.engine.task_statuses import completed_results
from pepper.model import codec
from pepper.model.outcome import TaskOutcome
from pepper.model.recovery import ABORTED
from pepper.model.task import Task, TaskState
from pepper.model.workflow import RUN_KEY, start_inputs, step_of, task_id_of

if TYPE_CHECKING:
    from pepper.engine.approvals import Approvals
    from pepper.engine.fan_out import FanOuts
    from pepper.engine.runs import _Run
    from pepper.engine.shell import Engine
    from pepper.engine.subruns import SubRuns


def skipped_steps(endings: Mapping[str, tuple[TaskOutcome | None, str | None]]) -> set[str]:
    """The step ids among ``endings`` (by task id) that were skipped."""
    return {step_of(tid) for tid, (outcome, _) in endings.items() if outcome is TaskOutcome.SKIPPED}


class RunSteps:
    """The reads of ``RunDriver`` over its runs' steps; every method runs on the engine loop."""

    engine: Engine
    fans: FanOuts
    approvals: Approvals
    subruns: SubRuns

    def _states(self, run: _Run) -> dict[str, TaskState | None]:
        engine = self.engine
        run_id = run.record.run_id
        states: dict[str, TaskState | None] = {}
        missing: dict[str, str] = {}
        fanning = self.fans.of(run_id).keys() | self.approvals.of(run_id).keys() | self.subruns.of(run_id).keys()
        for step in run.spec.steps:
            sid = step.step_id
            t = engine.state.tasks.get(task_id_of(run_id, sid))
            if sid in run.final and (t is None or t.state is run.final[sid]):  # (else recovered by hand since)
                states[sid] = run.final[sid]
            elif sid in run.held:
                states[sid] = None
            elif sid in fanning:
                states[sid] = TaskState.IN_PROGRESS  # items, a child run or a person: its task is stored after
            else:
                if t is not None:
                    states[sid] = t.state
                elif task_id_of(run_id, sid) in engine.pending:
                    states[sid] = TaskState.PENDING  # not committed yet
                else:
                    missing[task_id_of(run_id, sid)] = sid
        if missing:
            stored = engine.store.get_tasks(list(missing))
            for tid, sid in missing.items():
                record = stored.get(tid)
                states[sid] = record.state if record is not None else TaskState.PENDING  # not committed yet
        newly_failed = [sid for sid, st in states.items() if st is TaskState.FAILED and sid not in run.final]
        for sid, st in states.items():
            if st is not None and st.is_final:
                run.final[sid] = st
            else:
                run.final.pop(sid, None)  # a failed step skipped, replayed or retried by hand goes on
        if newly_failed and run.stopped is None:
            endings = self._endings([task_id_of(run_id, sid) for sid in newly_failed])
            for tid, (outcome, why) in endings.items():
                if outcome is TaskOutcome.ABORTED:
                    run.stopped = f"step {step_of(tid)!r} aborted the run ({(why or '').removeprefix(ABORTED)})"
                    break
        return states

    def _results(self, run: _Run, step_ids: Sequence[str]) -> tuple[dict[str, Any], set[str]]:
        """Results of the given steps (by step id), and which of them were skipped."""
        task_ids = [task_id_of(run.record.run_id, s) for s in step_ids]
        by_task = completed_results(self.engine, task_ids)
        results = {step_of(tid): value for tid, value in by_task.items()}
        results.update({s: run.decided[s] for s in step_ids if s in run.decided})
        return results, skipped_steps(self._endings(task_ids))

    def _endings(self, task_ids: Sequence[str]) -> dict[str, tuple[TaskOutcome | None, str | None]]:
        """How each of ``task_ids`` ended beyond its state, with its reason; from memory or the store."""
        tasks = self.engine.state.tasks
        found = {tid: (tasks[tid].outcome, tasks[tid].reason) for tid in task_ids if tid in tasks}
        missing = [tid for tid in task_ids if tid not in found]
        if missing:
            found.update({tid: (r.outcome, r.reason) for tid, r in self.engine.store.get_tasks(missing).items()})
        return found

    def prepare(self, task: Task, results: Mapping[str, Any]) -> tuple[Task, Mapping[str, Any]]:
        """What the agent of a workflow step receives (any task that is not a step is left as it is): its
        dependencies' results by step id, and its inputs with ``${{ steps... }}`` references resolved (raises
        ``ExpressionError`` if one cannot be read)."""
        if RUN_KEY not in task.metadata:
            return task, results
        by_step = {step_of(tid): value for tid, value in results.items()}
        inputs = start_inputs(task, by_step, skipped_steps(self._endings(task.dependencies)))
        if inputs is not task.inputs:
            task = replace(task, inputs=inputs, inputs_json=codec.normalise(inputs, "inputs")[1])
        return task, by_step
