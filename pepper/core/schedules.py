"""Schedules: start a workflow on its own, by a cron expression or an interval (``pepper.schedule``).

The schedule is stored in the database, so every worker on it sees it; each tick starts one run, from
whichever worker claims it first (see ``pepper.engine.ticks``). Its steps run on the agents of the workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pepper.core.default import resolve
from pepper.core.runtime import Runtime
from pepper.core.workflow import WorkflowController
from pepper.errors import ExpressionError, InvalidScheduleError, ValidationError
from pepper.model import codec, expressions
from pepper.model.schedule import ScheduleRecord, ScheduleSpec, check_name, check_timing
from pepper.model.workflow import WorkflowSpec, missing_conditions
from pepper.workflow_file import parse_workflow_file


def schedule(
    name: str,
    workflow: str | Path | WorkflowController,
    *,
    cron: str | None = None,
    every: float | str | None = None,
    inputs: Mapping[str, Any] | None = None,
    catch_up: bool | None = None,
    timezone: str | None = None,
    runtime: Runtime | None = None,
) -> ScheduleRecord:
    """Store (or replace) the schedule ``name``: a run of ``workflow`` (a workflow file or a
    ``WorkflowController``) at each tick of ``cron`` (five fields, read in ``timezone``, default UTC) or
    ``every`` (``"10m"``, or seconds). A workflow file's own ``schedule:`` gives what is not passed here.

    ``catch_up`` (default False) says what happens to ticks missed while no worker ran: False skips them and
    waits for the next tick; True starts one run for each missed tick, oldest first. Raises
    ``InvalidScheduleError`` (nothing stored) for a bad name, cron, interval or time zone, or for both or neither
    of ``cron`` and ``every``.
    """
    rt = resolve(runtime)
    check_name(name)
    spec, defaults, timing = _workflow(workflow)
    if cron is None and every is None:
        cron, every = timing.get("cron"), timing.get("every")
    timezone = timezone if timezone is not None else timing.get("timezone", "UTC")
    catch_up = catch_up if catch_up is not None else bool(timing.get("catch_up", False))
    if not isinstance(catch_up, bool):
        raise InvalidScheduleError(f"catch_up must be True or False, got {catch_up!r}", field="catch_up")
    cron, every, timezone = check_timing(cron, every, timezone)
    if inputs is not None and not isinstance(inputs, Mapping):
        raise InvalidScheduleError(
            f"inputs must be a mapping of names to values (e.g. {{'day': 'monday'}}), got {type(inputs).__name__}",
            field="inputs",
        )
    merged = {**defaults, **dict(inputs or {})}
    codec.normalise(merged, "inputs", depth=codec.MAX_DEPTH)
    _refuse_missing_inputs(spec, merged)
    record = rt.store.schedules.put(
        ScheduleSpec(name, spec.name, spec.to_dict(), cron, every, timezone, catch_up, merged), rt.clock.now()
    )
    rt.schedules_changed()
    return record


def _refuse_missing_inputs(spec: WorkflowSpec, inputs: Mapping[str, Any]) -> None:
    """Refuse a schedule whose runs could never start: a first step reads an input it does not give."""
    for step in spec.steps:
        if step.deferred:  # resolved when it starts, with what the run has by then
            continue
        try:
            expressions.resolve(dict(step.template.inputs or {}), {"inputs": dict(inputs)}, only=("inputs",))
        except ExpressionError as exc:
            raise InvalidScheduleError(
                f"step {step.step_id!r} of workflow {spec.name!r}: {exc}; each run would fail to start. Give the "
                "schedule that input (inputs=...), or the workflow a default",
                field="inputs",
            ) from None


def _workflow(workflow: Any) -> tuple[WorkflowSpec, dict[str, Any], dict[str, Any]]:
    """The workflow's spec, its default inputs and its file's ``schedule:`` (empty if none)."""
    if isinstance(workflow, WorkflowController):
        workflow.spec.validate()
        spec, defaults, timing = workflow.spec, dict(workflow.default_inputs or {}), {}
    elif isinstance(workflow, (str, Path)):
        parsed = parse_workflow_file(Path(workflow), with_agents=False)
        spec, defaults, timing = parsed.spec, dict(parsed.inputs), dict(parsed.schedule or {})
    else:
        raise ValidationError(
            f"workflow must be a workflow file's path or a WorkflowController, got {type(workflow).__name__}",
            field="workflow",
        )
    python = [s.step_id for s in spec.steps if s.condition_fn is not None] or missing_conditions(spec)
    if python:
        raise InvalidScheduleError(
            f"step(s) {', '.join(python)} have a Python condition, which a stored schedule cannot keep; write it as "
            "a `when` expression",
            field="workflow",
        )
    return spec, defaults, timing


def schedules(runtime: Runtime | None = None) -> list[ScheduleRecord]:
    """Every stored schedule, by name, with its next tick."""
    return resolve(runtime).store.schedules.list()


def pause_schedule(name: str, runtime: Runtime | None = None) -> ScheduleRecord:
    """Stop a schedule's ticks until it is resumed (``ScheduleNotFoundError`` for an unknown name)."""
    rt = resolve(runtime)
    record = rt.store.schedules.set_paused(name, True, rt.clock.now())
    rt.schedules_changed()
    return record


def resume_schedule(name: str, runtime: Runtime | None = None) -> ScheduleRecord:
    """Start a paused schedule again from its next tick in the future (ticks while paused never run)."""
    rt = resolve(runtime)
    record = rt.store.schedules.set_paused(name, False, rt.clock.now())
    rt.schedules_changed()
    return record


def delete_schedule(name: str, runtime: Runtime | None = None) -> None:
    """Remove a schedule; runs it started are kept (``ScheduleNotFoundError`` for an unknown name)."""
    rt = resolve(runtime)
    rt.store.schedules.delete(name)
    rt.schedules_changed()
