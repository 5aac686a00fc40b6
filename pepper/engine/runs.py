"""The run driver: starts workflow runs and moves them on as their steps settle.

A run's steps without a condition are submitted through the engine's batch like
any task, with the run's row in the same commit; the engine runs them like any
task, and the driver prepares each step's attempt (``prepare``, an engine
preparer: results by step id, references resolved). It listens (as an engine hook)
for the steps of the runs it drives to settle, asks ``scheduling.progression``
what comes next and acts: it decides conditions, stores the steps that were
waiting on one (or their skip), cancels, and records how the run ended. The
process that starts a run drives it; after a crash, ``resume`` makes another
process the driver, and completed steps are not run again.

Steps that become something else at run time hand their part to ``engine/fan_out`` (items),
``engine/approvals`` (a person's decision) and ``engine/subruns`` (a child run).

The driver's parts live beside it: where a run's steps stand (``engine/run_steps``), its sub-workflow steps
(``engine/run_children``) and the requests made of runs (``engine/run_requests``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pepper.engine.approvals import Approvals
from pepper.engine.fan_out import FanOuts
from pepper.engine.hooks import EngineHook
from pepper.engine.run_children import ChildRuns, log_refusal
from pepper.engine.run_requests import RunRequests
from pepper.engine.run_steps import RunSteps
from pepper.engine.subruns import SubRuns
from pepper.errors import RerunError, WorkflowDefinitionError
from pepper.model import codec, expressions
from pepper.model.events import CancelRequested, RunAgain
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.status import TaskError
from pepper.model.submission import prepare as check_new
from pepper.model.task import Task, TaskState
from pepper.model.workflow import (
    StepContext,
    WorkflowSpec,
    missing_conditions,
    new_run_id,
    step_context_values,
    step_of,
    step_task,
    task_id_of,
)
from pepper.model.workflow_run import SKIPPED, RunRecord, RunState
from pepper.scheduling.progression import advance
from pepper.scheduling.rerun import rerun_plan
from pepper.store.protocol import RunEnd

if TYPE_CHECKING:
    from pepper.engine.shell import Engine


@dataclass(eq=False)
class _Run:
    """A run this process drives."""

    record: RunRecord
    done: asyncio.Future[RunRecord]
    held: set[str] = field(default_factory=set)  # conditional steps with no task yet
    final: dict[str, TaskState] = field(default_factory=dict)  # steps known final (they stay final)
    cancelled: str | None = None
    stopped: str | None = None  # a step's recovery policy aborted the run
    stored: bool = True  # False until the run's row is committed: it does not advance before
    decided: dict[str, Any] = field(default_factory=dict)  # results of steps it stored final (maybe not committed)

    @property
    def spec(self) -> WorkflowSpec:
        return self.record.spec


class RunDriver(RunSteps, ChildRuns, RunRequests, EngineHook):
    """Drives the workflow runs started or resumed by this process. Every method runs on the engine loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.runs: dict[str, _Run] = {}
        self._due: set[str] = set()
        self.fans = FanOuts(engine)
        self.approvals = Approvals(engine, self.poke)
        self.subruns = SubRuns()
        engine.preparers.append(self.prepare)

    # -- starting and resuming ----------------------------------------------------------------

    async def start(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None = None,
        schedule: str | None = None,
    ) -> str:  # fmt: skip
        """Store a new run of ``spec`` (validated by the caller) with its first steps, and its predicted timeline
        if there is one, in one commit; return its id once that is durable. ``schedule``: the schedule whose
        tick started it."""
        run_id, submission = self._begin(spec, inputs, plan, schedule=schedule)
        await asyncio.shield(submission)
        return run_id

    def _begin(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None, parent: str | None = None,
        schedule: str | None = None,
    ) -> tuple[str, asyncio.Future[Any]]:  # fmt: skip
        """Queue a new run (``parent``: the task id of the step it is a sub-workflow of); its id, and the
        future of its first commit."""
        engine = self.engine
        now = engine.clock.now()
        # given by a caller (a sub-workflow's are made of its parent's inputs and results)
        codec.normalise(dict(inputs), "inputs", depth=codec.MAX_DEPTH if parent is None else codec.STORED_DEPTH)
        run_id = new_run_id(spec.name)
        tasks = [step_task(s, run_id, inputs, now) for s in spec.steps if not s.deferred]
        check_new(tasks, _NewRun(), engine.state.resources.capacity)
        record = RunRecord(run_id, spec, dict(inputs), RunState.RUNNING, now, driver=engine.worker_id, plan=plan,
                           schedule=schedule, parent=parent)  # fmt: skip
        run = self._drive(record, held={s.step_id for s in spec.steps if s.deferred})
        run.stored = False

        def committed(future: asyncio.Future[Any]) -> None:  # even if the caller stopped waiting
            if future.cancelled() or future.exception() is not None:
                self._drop(run)
            else:
                run.stored = True
                self._advance(run_id)

        submission = engine.submit_group(tasks, record)
        submission.add_done_callback(committed)
        return run_id, submission

    def resume(self, run_id: str, spec: WorkflowSpec | None = None) -> RunRecord:
        """Drive a stored run from this process (after its driver stopped); ``spec`` brings back Python
        conditions. Completed steps are not run again."""
        engine = self.engine
        record = engine.store.runs.get(run_id)
        if record.state.is_final or run_id in self.runs:
            return record
        if spec is not None:
            if [s.step_id for s in spec.steps] != [s.step_id for s in record.spec.steps]:
                raise WorkflowDefinitionError(
                    f"run {run_id!r} is a run of workflow {record.spec.name!r} with steps "
                    f"{', '.join(s.step_id for s in record.spec.steps)}; the workflow given to resume it has "
                    f"{', '.join(s.step_id for s in spec.steps) or 'no steps'}"
                )
            record = replace(record, spec=spec)
        engine.adopt_run(run_id)
        stored = engine.store.runs.tasks(run_id)
        held = {s.step_id for s in record.spec.steps if task_id_of(run_id, s.step_id) not in stored}
        unfinished = [tid for tid, r in stored.items() if not r.state.is_final and tid not in engine.state.tasks]
        run = self._drive(record, held)
        if record.cancel_requested:
            run.cancelled = record.reason or "cancelled on request"
        if unfinished:
            engine.load(unfinished, cause="resumed run")
        self._advance(run_id)
        return record

    def rerun(self, run_id: str, from_step: str | None = None) -> list[str]:
        """Run an ended run's failed and cancelled steps again (or ``from_step`` and everything downstream of it)
        in the same run, driven from here; completed steps are kept, and every earlier attempt stays in the
        history. A step with a condition keeps its decision: one that was skipped stays skipped. Returns the
        step ids run again; raises ``RunNotFoundError`` or ``RerunError`` (nothing changed), the latter also for
        a sub-workflow's run (its parent's step does not follow it again)."""
        engine = self.engine
        record = engine.store.runs.get(run_id)
        stored = engine.store.runs.tasks(run_id)
        again = rerun_plan(record, stored, from_step, driven=run_id in self.runs)
        if not engine.store.runs.reopen(run_id, engine.worker_id):
            raise RerunError(run_id, f"run {run_id!r} is running again already (re-run or resumed elsewhere)")
        missing = [r for t, r in stored.items() if t not in engine.state.tasks]  # the steps and what they need
        if missing:
            engine.ingest(missing, "rerun")
        engine.dispatch(RunAgain(tuple(again), engine.clock.now(), f"rerun:{run_id}"))
        reopened = replace(record, state=RunState.RUNNING, finished_at=None, reason=None, cancel_requested=False,
                           driver=engine.worker_id)  # fmt: skip
        self._drive(reopened, {s.step_id for s in record.spec.steps if task_id_of(run_id, s.step_id) not in stored})
        self._advance(run_id)
        return [step_of(t) for t in again]

    def adopt_orphans(self, live_workers: set[str]) -> list[str]:
        """Drive the runs whose driver process is gone (called after each sweep for dead workers).

        Runs with Python conditions are left for ``resume`` from the process that has them.
        """
        adopted = []
        for record in self.engine.store.runs.list(RunState.RUNNING, limit=1000):
            if record.run_id in self.runs or record.driver in live_workers or missing_conditions(record.spec):
                continue
            if record.parent is not None:  # a sub-workflow's run: the driver of its parent follows it
                continue
            self.resume(record.run_id)
            adopted.append(record.run_id)
        return adopted

    def _drive(self, record: RunRecord, held: set[str]) -> _Run:
        run = _Run(record, self.engine.loop.create_future(), held)
        self.runs[record.run_id] = run
        if self not in self.engine.hooks:
            self.engine.hooks.append(self)
        return run

    def _drop(self, run: _Run) -> None:
        del self.runs[run.record.run_id]
        self.fans.forget(run.record.run_id)
        self.approvals.forget(run.record.run_id)
        self.subruns.forget(run.record.run_id)
        if not self.runs and self in self.engine.hooks:
            self.engine.hooks.remove(self)

    # -- following the steps --------------------------------------------------------------------

    def on_settled(self, task_id: str, state: TaskState) -> None:
        self.poke(self.fans.settled(task_id, state) or task_id.rpartition("/")[0])

    def poke(self, run_id: str) -> None:
        """Advance ``run_id`` soon, if it is driven here (once, however many times it is poked before)."""
        if run_id in self.runs and run_id not in self._due:
            self._due.add(run_id)
            self.engine.loop.call_soon(self._advance, run_id)

    def _advance(self, run_id: str) -> None:
        self._due.discard(run_id)
        run = self.runs.get(run_id)
        if run is None or not run.stored:
            return
        for _ in range(len(run.spec.steps) + 2):  # each pass settles at least one step, or stops
            if self.fans.of(run_id) or self.approvals.of(run_id):
                ready: list[TaskRecord] = []
                items: list[Task] = []
                now = self.engine.clock.now()
                self.fans.pump(run_id, run.record.inputs, now, ready, items)
                if self.approvals.of(run_id):
                    ready += self.approvals.poll(run_id, run.spec.by_id, run.record.inputs, now)
                self._store(run, ready, items)
            states = self._states(run)
            waiting = run.held or self.approvals.of(run_id)  # (a person's wait has no task to cancel)
            if run.cancelled is None and (waiting or all(s is not None and s.is_final for s in states.values())):
                stored = self.engine.store.runs.get(run_id)  # cancelled from another process?
                if stored.cancel_requested:
                    run.cancelled = stored.reason or "cancelled on request"
            move = advance(run.spec, states, cancelled=run.cancelled, stopped=run.stopped)
            if not move:
                return
            if move.finished is not None:
                self._finish(run, move.finished, move.reason)
                return
            now = self.engine.clock.now()
            fanning, children = self.fans.of(run_id), self.subruns.of(run_id)
            settled: list[TaskRecord] = []
            submit: list[Task] = []
            for sid, why in move.cancel.items():
                if sid in fanning:
                    self.fans.stop(run_id, sid, why)
                elif self.approvals.stop(run_id, sid):
                    settled.append(self._settled(run, sid, TaskState.CANCELLED, now, reason=why))
                elif sid in children:
                    self.engine.loop.call_soon(self._cancel_child, children[sid], why)
                else:
                    self.engine.dispatch(CancelRequested(task_id_of(run_id, sid), now, why, f"cancel:run:{run_id}"))
            for sid, why in move.doom.items():
                settled.append(self._settled(run, sid, TaskState.CANCELLED, now, reason=why))
            for sid in move.release:
                self._decide(run, sid, now, settled, submit)
            self.fans.pump(run_id, run.record.inputs, now, settled, submit)
            self._store(run, settled, submit)
            if not (settled or submit):
                return  # only cancellations: their settling brings the next pass

    def _decide(self, run: _Run, step_id: str, now: float, settled: list[TaskRecord], submit: list[Task]) -> None:
        """A deferred step whose dependencies completed: run it (fan it out), or skip it."""
        step = run.spec.by_id[step_id]
        results, skipped = self._results(run, step.dependencies)
        try:
            if not step.conditional:
                verdict = True
            elif step.condition_fn is not None:
                verdict = step.condition_fn(StepContext(run.record.inputs, results, frozenset(skipped)))
            else:
                context = {"inputs": run.record.inputs, "steps": step_context_values(results, skipped)}
                verdict = expressions.parse(step.condition).evaluate(context)
        except Exception as exc:  # noqa: BLE001 - a condition that raises fails its step, not the engine
            error = TaskError(type(exc).__name__, f"the step's condition could not be decided: {exc}")
            settled.append(self._settled(run, step_id, TaskState.FAILED, now, error=error))
            return
        if verdict and step.fans_out:
            run.held.discard(step_id)
            self.fans.begin(run.record.run_id, run.record.inputs, step, results, skipped, now, settled,
                            run.record.created_at)  # fmt: skip
        elif verdict and step.approval is not None:
            run.held.discard(step_id)
            self.approvals.begin(run.record.run_id, step, now)
        elif verdict and step.workflow is not None:
            run.held.discard(step_id)
            self._start_child(run, step, results, skipped, now, settled)
        elif verdict:
            submit.append(step_task(step, run.record.run_id, run.record.inputs, now, run.record.created_at))
        else:
            what = step.condition if step.condition is not None else "the Python condition"
            skip = self._settled(run, step_id, TaskState.COMPLETED, now, reason=f"{SKIPPED}{what} was false")
            settled.append(replace(skip, outcome=TaskOutcome.SKIPPED))

    def _settled(
        self, run: _Run, step_id: str, state: TaskState, now: float, reason: str | None = None,
        error: TaskError | None = None,
    ) -> TaskRecord:  # fmt: skip
        task = step_task(run.spec.by_id[step_id], run.record.run_id, run.record.inputs, now)
        return TaskRecord(task, state, finished_at=now, reason=reason, error=error)

    def _store(self, run: _Run, settled: list[TaskRecord], submit: list[Task]) -> None:
        """Queue decided steps for the engine's next commit: final ones as they are, released ones as new tasks."""
        engine = self.engine
        if settled:
            engine.store_final(settled)
            for record in settled:
                run.held.discard(step_of(record.task.task_id))
                run.final[step_of(record.task.task_id)] = record.state
                if record.state is TaskState.COMPLETED:
                    run.decided[step_of(record.task.task_id)] = record.result
        if submit:
            check_new(submit, _NewRun(), engine.state.resources.capacity)
            engine.submit_group(submit).add_done_callback(log_refusal)
            for task in submit:
                run.held.discard(step_of(task.task_id))

    def _finish(self, run: _Run, state: RunState, reason: str | None) -> None:
        engine = self.engine
        now = engine.clock.now()
        record = replace(run.record, state=state, reason=reason, finished_at=now)
        if record.run_id in self.subruns.parents:
            results = self._results(run, [s.step_id for s in run.spec.steps])[0] if state is RunState.COMPLETED else {}
            engine.loop.call_soon(self._child_ended, record, results)
        self._drop(run)

        def ended(_: object) -> None:
            if not run.done.done():
                run.done.set_result(record)

        engine.end_run(RunEnd(record.run_id, state, reason, now)).add_done_callback(ended)


class _NewRun:
    """``StoredTasks`` for the steps of one run: their ids are new, and only they depend on each other."""

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        return {}

    def awaited(self, task_ids: Collection[str]) -> bool:
        return False

    def deps_of(self, task_id: str) -> Iterable[str]:
        return ()

    def runs_among(self, run_ids: Collection[str]) -> Collection[str]:
        return ()  # the run's own ids are its own
