"""Which steps of an ended workflow run a re-run starts again. Pure: the steps' states come in."""

from __future__ import annotations

from collections.abc import Mapping

from pepper.errors import RerunError, suggest
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.task import TaskState
from pepper.model.workflow import Step, WorkflowSpec, step_of, task_id_of
from pepper.model.workflow_run import RunRecord

#: The states a re-run of the failed steps starts again.
UNFINISHED = frozenset({TaskState.FAILED, TaskState.CANCELLED, TaskState.PARKED})


def rerun_plan(
    record: RunRecord, stored: Mapping[str, TaskRecord], from_step: str | None, *, driven: bool = False
) -> list[str]:
    """The task ids a re-run of the run ``record`` starts again, from its ``stored`` tasks. Raises ``RerunError``
    for a sub-workflow's run, a run that has not ended (or is ``driven`` by the process asking), an unknown step,
    or nothing to run again (a step skipped by its condition keeps that decision)."""
    run_id = record.run_id
    if record.parent is not None:
        parent_run, step = record.parent.rsplit("/", 1)
        raise RerunError(run_id, f"run {run_id!r} is the sub-workflow run of step {step!r} of run {parent_run!r}, "
                                 "which would not follow it again; start a new run of the parent's workflow "
                                 "instead (its step starts a new child run)")  # fmt: skip
    if not record.state.is_final or driven:
        raise RerunError(run_id, f"run {run_id!r} has not ended yet; wait for it (or cancel it) before re-running")
    chosen = steps_to_rerun(run_id, record.spec, {step_of(t): r.state for t, r in stored.items()}, from_step)
    again = [task_id_of(run_id, s) for s in chosen]
    again = [t for t in again if t in stored and stored[t].outcome is not TaskOutcome.SKIPPED]
    if not again:
        raise RerunError(run_id, f"the steps of run {run_id!r} to run again ({', '.join(chosen)}) were skipped "
                                 "by their conditions, which keep their decisions")  # fmt: skip
    return again


def steps_to_rerun(
    run_id: str, spec: WorkflowSpec, states: Mapping[str, TaskState | None], from_step: str | None = None
) -> list[str]:
    """The step ids to run again, dependencies first: ``from_step`` and every step downstream of it, or (without
    it) the steps that failed or were cancelled. Raises ``RerunError`` for an unknown step, when there is
    nothing to run again, or when a step to run again is a fan-out, an approval or a sub-workflow (their items,
    requests and child runs are not made again)."""
    order = spec.validate()
    if from_step is not None:
        if from_step not in spec.by_id:
            raise RerunError(
                run_id,
                f"run {run_id!r} has no step {from_step!r}; its steps: {', '.join(order)}.{suggest(from_step, order)}",
            )
        chosen = {from_step}
        for step_id in order:  # dependencies come first, so one pass finds everything downstream
            if any(dep in chosen for dep in spec.by_id[step_id].dependencies):
                chosen.add(step_id)
    else:
        chosen = {step_id for step_id in order if states.get(step_id) in UNFINISHED}
        if not chosen:
            raise RerunError(
                run_id,
                f"run {run_id!r} has no failed or cancelled step to run again; give a step to run again from "
                "(from_step, or --from STEP) to run completed steps again",
            )
    steps = [step_id for step_id in order if step_id in chosen]
    for step_id in steps:
        kind = step_kind(spec.by_id[step_id])
        if kind is not None:
            start = f"from step {from_step!r}" if from_step is not None else "its failed and cancelled steps"
            raise RerunError(
                run_id,
                f"run {run_id!r} cannot run {start} again: step {step_id!r} is {kind}, and only task steps can run "
                "again (steps with a type, without for_each, approval or workflow); start a new run of the workflow "
                "instead",
            )
    return steps


def step_kind(step: Step) -> str | None:
    """What a step that is not a plain task is (``"a fan-out (for_each)"``, ...); None for a task step."""
    if step.fans_out:
        return "a fan-out (for_each)"
    if step.approval is not None:
        return "an approval"
    if step.workflow is not None:
        return "a sub-workflow (workflow)"
    return None
