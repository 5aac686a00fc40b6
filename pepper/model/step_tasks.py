"""The tasks one run of a workflow becomes: run and task ids, a step's task with the run's inputs under its
own, and its inputs resolved against its dependencies' results when it starts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pepper.errors import ExpressionError
from pepper.model import codec, expressions
from pepper.model.task import Task

if TYPE_CHECKING:
    from pepper.model.workflow import Step

#: Metadata keys a step's task carries.
RUN_KEY, STEP_KEY = "pepper.run", "pepper.step"
REFS_KEY, INPUTS_KEY = "pepper.refs", "pepper.run_inputs"  # inputs resolved at start, and what they read


def new_run_id(name: str) -> str:
    """``docsite-3f2a9c1e0b`` for a run of workflow ``docsite``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "run"
    return f"{slug}-{uuid.uuid4().hex[:10]}"


#: What ``new_run_id`` makes: a slug of the workflow's name, then ten hexadecimal digits.
_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}-[0-9a-f]{10}")


def run_namespace(task_id: str) -> str | None:
    """The run id ``task_id`` would be a task of (``<run id>/...``) when its first part is shaped like one,
    else None. Whether that run exists is for the store to say."""
    run_id, slash, rest = task_id.partition("/")
    return run_id if slash and rest and _RUN_ID.fullmatch(run_id) else None


def task_id_of(run_id: str, step_id: str) -> str:
    return f"{run_id}/{step_id}"


def step_of(task_id: str) -> str:
    """The step id in a step's task id."""
    return task_id.rpartition("/")[2]


def step_task(
    step: Step, run_id: str, run_inputs: Mapping[str, Any], now: float, run_started: float | None = None
) -> Task:
    """The task of ``step`` in run ``run_id``: namespaced ids, the run's inputs under the step's own,
    references to the run's inputs resolved (those to dependencies' results wait until it starts). A step's
    ``delay`` counts from ``run_started`` (default ``now``)."""
    t = step.template
    try:
        own = expressions.resolve(dict(t.inputs or {}), {"inputs": run_inputs}, only=("inputs",))
    except ExpressionError as exc:  # said of the step, wherever the run was started from
        raise ExpressionError(f"step {step.step_id!r}: {exc}", expression=exc.expression) from None
    metadata = {**t.metadata, RUN_KEY: run_id, STEP_KEY: step.step_id}
    later = [key for key, value in own.items() if expressions.has_references(value)]
    if later:  # resolved when the step starts; the run's inputs go along if those references read them
        metadata[REFS_KEY] = later
        if any(e.reads_inputs for key in later for e in expressions.references(own[key])):
            metadata[INPUTS_KEY] = dict(run_inputs)
    inputs, inputs_json = codec.normalise({**run_inputs, **own}, "inputs")
    return replace(
        t,
        task_id=task_id_of(run_id, step.step_id),
        dependencies=tuple(task_id_of(run_id, d) for d in t.dependencies),
        inputs=inputs,
        inputs_json=inputs_json,
        metadata=metadata,
        created_at=now,
        not_before=None if step.delay is None else (now if run_started is None else run_started) + step.delay,
    )


def step_context_values(results: Mapping[str, Any], skipped: Iterable[str] = ()) -> dict[str, Any]:
    """The ``steps`` name of expressions: ``{id: {"result": ..., "skipped": ...}}`` (keys are step ids)."""
    skipped = frozenset(skipped)
    return {step_id: {"result": value, "skipped": step_id in skipped} for step_id, value in results.items()}


def start_inputs(task: Task, results: Mapping[str, Any], skipped: Iterable[str] = ()) -> Any:
    """A step's inputs as its agent receives them: references to dependencies' results (keyed by step id)
    resolved. Raises ``ExpressionError`` when a reference cannot be read."""
    keys = task.metadata.get(REFS_KEY)
    if not keys:
        return task.inputs
    context = {"steps": step_context_values(results, skipped), "inputs": task.metadata.get(INPUTS_KEY, {})}
    inputs = dict(task.inputs)
    for key in keys:
        inputs[key] = expressions.resolve(inputs[key], context)
    return inputs
