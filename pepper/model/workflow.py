"""Workflows: named DAGs of steps, each a task template.

A run of a workflow gets its own id; the task of step ``s`` in run ``r`` has
the id ``r/s``, so runs never collide with each other or with plain task ids.
A step's inputs are the run's inputs overlaid with its own; ``${{ ... }}``
references in them are resolved against the run's inputs when the run starts
and against its dependencies' results when it starts (``model/expressions``).

The tasks one run of a workflow becomes (ids, inputs) are ``model.step_tasks``, a fan-out step's own checks
``model.fan_out_checks``; their names are importable from here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pepper.errors import CycleError, ExpressionError, ValidationError, WorkflowDefinitionError, suggest
from pepper.model import expressions
from pepper.model.approval import ApprovalSpec
from pepper.model.dag import find_cycle, topological_order
from pepper.model.fan_out_checks import MAX_EXPECTED_ITEMS, check_fan_out
from pepper.model.requirements import Requirements
from pepper.model.step_kinds import IMPLIED_TYPE, check_kind, stored_kind_fields
from pepper.model.step_tasks import (
    INPUTS_KEY,
    REFS_KEY,
    RUN_KEY,
    STEP_KEY,
    new_run_id,
    start_inputs,
    step_context_values,
    step_of,
    step_task,
    task_id_of,
)
from pepper.model.submission import build_task
from pepper.model.task import Priority, Task
from pepper.model.timing import parse_delay

__all__ = [
    "INPUTS_KEY",
    "MAX_EXPECTED_ITEMS",
    "REFS_KEY",
    "RUN_KEY",
    "STEP_KEY",
    "ConditionFn",
    "Step",
    "StepContext",
    "WorkflowSpec",
    "check_fan_out",
    "make_step",
    "missing_conditions",
    "new_run_id",
    "start_inputs",
    "step_context_values",
    "step_of",
    "step_task",
    "task_id_of",
]

#: A condition in Python: called with the run's inputs and the dependencies' results (by step id).
ConditionFn = Callable[["StepContext"], Any]

_STEP_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a Python condition sees: the run's inputs and each dependency's result, by step id."""

    inputs: Mapping[str, Any]
    results: Mapping[str, Any]
    skipped: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a workflow: a task template with its dependencies (step ids) and an optional condition."""

    step_id: str
    template: Task  # validated fields; its task_id is the step id and its dependencies are step ids
    condition: str | None = None  # an expression (see ``model/expressions``)
    condition_fn: ConditionFn | None = field(default=None, compare=False)
    delay: float | None = None  # seconds after the run's start before which the step does not start
    for_each: Any = None  # fan-out: an expression giving a list, or a list; one task per item (None: one task)
    max_parallel: int | None = None  # fan-out: at most this many items at once (None: no limit)
    expected_items: int | None = None  # fan-out: how many items the planner assumes when it cannot know
    approval: ApprovalSpec | None = None  # it waits for a person instead of running on an agent
    workflow: WorkflowSpec | None = None  # a sub-workflow: it runs a child run, whose result is its result

    @property
    def task_type(self) -> str:
        return self.template.task_type

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.template.dependencies

    @property
    def agent(self) -> str | None:
        return self.template.agent

    @property
    def conditional(self) -> bool:
        return self.condition is not None or self.condition_fn is not None

    @property
    def fans_out(self) -> bool:
        return self.for_each is not None

    @property
    def deferred(self) -> bool:
        """Its task is not submitted with the run: it waits for its dependencies (a condition, a fan-out, an
        approval, a sub-workflow) and its driver decides what it becomes."""
        return self.conditional or self.fans_out or self.approval is not None or self.workflow is not None

    @property
    def runs_on_agent(self) -> bool:
        """Whether an agent runs it (an approval waits for a person; a sub-workflow's steps run instead)."""
        return self.approval is None and self.workflow is None

    def to_dict(self) -> dict[str, Any]:
        t = self.template
        data: dict[str, Any] = {"id": self.step_id, "type": t.task_type}
        if t.agent:
            data["agent"] = t.agent
        if t.dependencies:
            data["needs"] = list(t.dependencies)
        if t.inputs:
            data["inputs"] = t.inputs
        if t.priority != Priority.NORMAL:
            data["priority"] = t.priority
        if t.timeout is not None:
            data["timeout"] = t.timeout
        if t.max_retries:
            data["retries"] = t.max_retries
        if t.requirements != Requirements():
            data["requirements"] = t.requirements.to_dict()
        if t.metadata:
            data["metadata"] = dict(t.metadata)
        if t.policy is not None:
            data["recovery"] = t.policy.to_data()
        if self.delay:
            data["delay"] = self.delay
        if self.condition is not None:
            data["when"] = self.condition
        elif self.condition_fn is not None:
            data["when_python"] = _describe_callable(self.condition_fn)
        if self.for_each is not None:
            data["for_each"] = self.for_each
        if self.max_parallel is not None:
            data["max_parallel"] = self.max_parallel
        if self.expected_items is not None:
            data["expected_items"] = self.expected_items
        if self.approval is not None:
            data["approval"] = self.approval.to_data()
        if self.workflow is not None:
            data["workflow"] = self.workflow.to_dict()
        return data


def make_step(
    step_id: Any,
    task_type: Any,
    *,
    agent: Any = None,
    dependencies: Any = (),
    inputs: Any = None,
    priority: Any = "normal",
    timeout: Any = None,
    max_retries: Any = 0,
    requirements: Any = None,
    condition: Any = None,
    metadata: Any = None,
    recovery: Any = None,
    delay: Any = None,
    for_each: Any = None,
    max_parallel: Any = None,
    expected_items: Any = None,
    approval: Any = None,
    workflow: Any = None,
) -> Step:
    """A validated ``Step``; raises ``WorkflowDefinitionError`` naming the step and the bad field. ``delay``
    holds the step back until that long after its run started. ``workflow`` is a ``WorkflowSpec`` (read by
    the caller); ``task_type`` may be None for an approval or a sub-workflow."""
    if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
        raise WorkflowDefinitionError(
            f"step id must be 1-100 letters, digits, '_', '.' or '-' (not starting with '.' or '-'), got {step_id!r}",
            field="step_id",
        )
    if isinstance(dependencies, str):
        dependencies = [dependencies]
    kinds = [name for name, value in (("for_each", for_each), ("approval", approval), ("workflow", workflow))
             if value is not None]  # fmt: skip
    if len(kinds) > 1:
        raise WorkflowDefinitionError(
            f"step {step_id!r} has both {kinds[0]} and {kinds[1]}; a step is one of: a task, a fan-out "
            "(for_each), an approval or a sub-workflow (workflow)",
            step_id=step_id,
            field=kinds[1],
        )
    if delay is not None and (approval is not None or workflow is not None):
        what = "an approval" if approval is not None else "a sub-workflow"
        raise WorkflowDefinitionError(
            f"step {step_id!r} is {what} step, which cannot have a delay; delay applies only to task steps and "
            "fan-outs (for_each): give the delay to the step it depends on, or leave it out",
            step_id=step_id,
            field="delay",
        )
    given_type = task_type
    if task_type is None and (approval is not None or workflow is not None):
        task_type = IMPLIED_TYPE["approval" if approval is not None else "workflow"]
    if workflow is not None and not isinstance(workflow, WorkflowSpec):
        raise WorkflowDefinitionError(
            f"step {step_id!r}: workflow must be a workflow (a WorkflowController, or a workflow file's path in a "
            f"workflow file), got {type(workflow).__name__}",
            step_id=step_id,
            field="workflow",
        )
    try:
        gate = None if approval is None else ApprovalSpec.parse(approval)
        template = build_task(
            task_id=step_id, task_type=task_type, agent=agent, dependencies=dependencies, inputs=inputs,
            priority=priority, timeout=timeout, max_retries=max_retries, requirements=requirements,
            metadata=metadata, policy=recovery,
        )  # fmt: skip
        if inputs is not None and not isinstance(template.inputs, Mapping):
            raise ValidationError(f"inputs must be a mapping, got {type(inputs).__name__}", field="inputs")
        fan = check_fan_out(for_each, max_parallel, expected_items)
        for expression in expressions.references(template.inputs):
            _check_reads(step_id, expression, template.dependencies, "inputs")
            if expression.reads_item and for_each is None:
                raise ExpressionError(
                    f"inputs read {expression.text!r}, but 'item' and 'index' exist only in a step with "
                    "for_each (one task per item of a list)",
                    expression=expression.text,
                )
        if isinstance(for_each, str):
            _check_reads(step_id, expressions.parse(for_each), template.dependencies, "for_each")
        seconds = None if delay is None else parse_delay(delay) or None
        text, fn = None, None
        if callable(condition):
            fn = condition
        elif condition is not None:
            text = condition
            parsed = expressions.parse(condition)
            _check_reads(step_id, parsed, template.dependencies, "condition")
            if parsed.reads_item:
                raise ExpressionError(
                    f"the condition {condition!r} reads 'item' or 'index', which only a fanned-out step's "
                    "inputs can read",
                    expression=condition,
                )
    except WorkflowDefinitionError:
        raise
    except ValidationError as exc:
        raise WorkflowDefinitionError(f"step {step_id!r}: {exc}", step_id=step_id, field=exc.field) from None
    if step_id in template.dependencies:
        raise WorkflowDefinitionError(f"step {step_id!r} depends on itself", step_id=step_id, field="dependencies")
    if approval is not None or workflow is not None:
        kind = "approval" if approval is not None else "workflow"
        check_kind(step_id, kind, given_type, template.agent, template.policy, template.max_retries)
    return Step(step_id, template, text, fn, seconds, *fan, gate, workflow)


def _check_reads(step_id: str, expression: expressions.Expression, deps: Sequence[str], where: str) -> None:
    for read in sorted(expression.steps - set(deps)):
        raise ExpressionError(
            f"{where} reads steps.{read}, but step {step_id!r} does not depend on {read!r}; "
            f"add it to the step's dependencies (needs) so its result exists when {step_id!r} starts",
            expression=expression.text,
        )


def _describe_callable(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A named DAG of steps, in the order they were added."""

    name: str
    steps: tuple[Step, ...] = ()
    fail_fast: bool = False
    description: str | None = None
    source: str | None = None  # the file it was read from, if any
    #: The inputs its runs start from (a workflow file's ``inputs:``): what a sub-workflow step's child run
    #: starts from, under the parent run's inputs and the step's own.
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def by_id(self) -> dict[str, Step]:
        return {s.step_id: s for s in self.steps}

    def with_step(self, step: Step) -> WorkflowSpec:
        """This workflow with ``step`` added; a step id used twice is an error."""
        if any(s.step_id == step.step_id for s in self.steps):
            raise WorkflowDefinitionError(
                f"workflow {self.name!r} already has a step {step.step_id!r}; step ids must be unique",
                step_id=step.step_id,
                field="step_id",
            )
        return replace(self, steps=(*self.steps, step))

    def validate(self) -> list[str]:
        """Check the whole DAG (no steps, unknown dependencies, cycles); return the step ids in run order."""
        if not self.steps:
            raise WorkflowDefinitionError(f"workflow {self.name!r} has no steps; add one with add_step()")
        known = self.by_id
        for step in self.steps:
            for dep in step.dependencies:
                if dep not in known:
                    raise WorkflowDefinitionError(
                        f"step {step.step_id!r} depends on {dep!r}, which is not a step of workflow "
                        f"{self.name!r} (steps: {', '.join(known)}).{suggest(dep, known)}",
                        step_id=step.step_id,
                        field="dependencies",
                    )
        cycle = find_cycle(known, lambda s: known[s].dependencies)
        if cycle is not None:
            error = CycleError(cycle)
            raise WorkflowDefinitionError(
                f"workflow {self.name!r} has a dependency cycle: {' -> '.join(cycle)}; a step cannot (even "
                "indirectly) depend on itself",
                step_id=cycle[0],
                field="dependencies",
            ) from error
        return topological_order({s.step_id: s.dependencies for s in self.steps})

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "steps": [s.to_dict() for s in self.steps]}
        if self.fail_fast:
            data["fail_fast"] = True
        if self.description:
            data["description"] = self.description
        if self.source:
            data["source"] = self.source
        if self.inputs:
            data["inputs"] = dict(self.inputs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowSpec:
        """Rebuild a stored spec (Python conditions come back as names only: see ``python_conditions``)."""
        steps = []
        for raw in data["steps"]:
            # what an approval or a sub-workflow step was given before it was refused (a delay, a type, an
            # agent, a recovery but skip or abort) never applied: dropped
            delay = None if raw.get("approval") is not None or raw.get("workflow") is not None else raw.get("delay")
            step = make_step(
                raw["id"], dependencies=raw.get("needs", ()), inputs=raw.get("inputs"),
                priority=raw.get("priority", "normal"), timeout=raw.get("timeout"),
                requirements=raw.get("requirements"), condition=raw.get("when"), metadata=raw.get("metadata"),
                **stored_kind_fields(raw), delay=delay, for_each=raw.get("for_each"),
                max_parallel=raw.get("max_parallel"), expected_items=raw.get("expected_items"),
                approval=raw.get("approval"),
                workflow=None if raw.get("workflow") is None else WorkflowSpec.from_dict(raw["workflow"]),
            )  # fmt: skip
            if "when_python" in raw:
                step = replace(step, condition_fn=_MissingCondition(raw["when_python"]))
            steps.append(step)
        return cls(data["name"], tuple(steps), bool(data.get("fail_fast")), data.get("description"),
                   data.get("source"), dict(data.get("inputs") or {}))  # fmt: skip


class _MissingCondition:
    """Stands for a Python condition of a stored run, which only the process that defined it can call."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, context: StepContext) -> Any:
        raise WorkflowDefinitionError(
            f"the condition is the Python function {self.name}, which this process does not have; "
            "resume the run from Python with WorkflowController.resume(run_id) on the workflow that defines it"
        )


def missing_conditions(spec: WorkflowSpec) -> list[str]:
    """Steps whose Python condition this process cannot call (a stored run resumed elsewhere)."""
    return [s.step_id for s in spec.steps if isinstance(s.condition_fn, _MissingCondition)]
