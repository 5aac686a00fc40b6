"""``TaskSequencer``: tasks plus a dependency map, run as a workflow (on the same engine, with the same
results)."""

from __future__ import annotations

import collections.abc as abc
from dataclasses import dataclass
from typing import Any

from pepper.core.runtime import Runtime
from pepper.core.workflow_runs import WorkflowRuns, check_timeout
from pepper.engine.portal import on_engine_loop
from pepper.errors import ValidationError, WorkflowDefinitionError, suggest
from pepper.model.task_spec import STEP, task_arguments
from pepper.model.workflow import Step, WorkflowSpec, make_step
from pepper.model.workflow_run import WorkflowResult


@dataclass(frozen=True, slots=True)
class Sequence:
    """Tasks and their dependencies, checked: ``order`` is a topological order of the task ids."""

    spec: WorkflowSpec
    order: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tasks(self) -> tuple[Step, ...]:
        return self.spec.steps

    def __len__(self) -> int:
        return len(self.spec.steps)


class TaskSequencer(WorkflowRuns):
    """Runs a list of tasks with a dependency map, on the same engine and with the same results as a workflow."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        super().__init__(runtime)
        self.run_id: str | None = None

    def create_sequence(
        self,
        tasks: abc.Iterable[abc.Mapping[str, Any]],
        dependencies: abc.Mapping[str, abc.Iterable[str]] | None = None,
        *,
        name: str = "sequence",
        fail_fast: bool = False,
    ) -> Sequence:
        """Check ``tasks`` (``{"id", "type", ...}`` mappings) and ``dependencies`` (id -> ids it needs first)."""
        if isinstance(tasks, (str, bytes, abc.Mapping)) or not isinstance(tasks, abc.Iterable):
            raise ValidationError(
                "tasks must be a list of mappings such as {'id': 'a', 'type': 'review'}", field="tasks"
            )
        if dependencies is not None and not isinstance(dependencies, abc.Mapping):
            raise ValidationError("dependencies must map a task id to the ids it depends on", field="dependencies")
        spec = WorkflowSpec(name, (), fail_fast)
        extra = {k: list(v) if not isinstance(v, str) else [v] for k, v in (dependencies or {}).items()}
        for item in tasks:
            fields = _task_fields(item)
            step_id = fields.pop("step_id")
            deps = fields.pop("dependencies", None) or ()
            fields["dependencies"] = [*([deps] if isinstance(deps, str) else deps), *extra.get(step_id, ())]
            spec = spec.with_step(make_step(step_id, fields.pop("task_type"), **fields))
        known = spec.by_id
        for task_id in extra:
            if task_id not in known:
                raise WorkflowDefinitionError(
                    f"dependencies name task {task_id!r}, which is not among the tasks "
                    f"({', '.join(known)}).{suggest(task_id, known)}",
                    field="dependencies",
                )
        return Sequence(spec, tuple(spec.validate()))

    @on_engine_loop
    async def execute_sequence(
        self, sequence: Sequence, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """Run the sequence to its end (each call is a new run) and return how each task went."""
        if not isinstance(sequence, Sequence):
            raise ValidationError("execute_sequence() takes what create_sequence() returned", field="sequence")
        check_timeout(timeout)
        run_id = await self._start(sequence.spec, inputs)
        return await self._wait(run_id, timeout, limit=True)

    def run_sequence(
        self, sequence: Sequence, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """``execute_sequence`` for code without asyncio."""
        return self._portal().call(self.execute_sequence(sequence, inputs, timeout))


def _task_fields(item: Any) -> dict[str, Any]:
    """``make_step``'s arguments from a task mapping, read through the one task-spec schema."""
    if not isinstance(item, abc.Mapping):
        raise ValidationError(f"each task must be a mapping such as {{'id': 'a', 'type': 'review'}}, got {item!r}")
    try:
        fields = task_arguments(item, STEP)
    except ValidationError as exc:
        raise WorkflowDefinitionError(str(exc), field=exc.field) from None
    if "policy" in fields:
        fields["recovery"] = fields.pop("policy")
    fields["step_id"] = fields.pop("task_id", None)
    return fields
