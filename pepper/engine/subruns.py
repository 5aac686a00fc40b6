"""The run driver's sub-workflows: a step that runs a child run, whose result becomes the step's result.

When a ``workflow`` step is released, ``begin`` starts a child run of its workflow (or, for a resumed
parent, finds the child it started before and follows it). The child's row names the parent step's task
(``parent``), so the link survives restarts and shows in ``pepper runs`` and ``pepper show``. When the
child ends, ``ended`` gives the parent step's final task: completed with the child's results by step id,
or failed (through the step's recovery policy: ``skip`` or ``abort`` apply) or cancelled as the child was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pepper.model import codec, expressions
from pepper.model.approval import ending
from pepper.model.fan_out import item_context
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.recovery import ABORTED
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from pepper.model.workflow import Step, step_of, step_task, task_id_of
from pepper.model.workflow_run import SKIPPED, RunRecord, RunState


def child_inputs(
    step: Step, run_inputs: Mapping[str, Any], results: Mapping[str, Any], skipped: set[str]
) -> dict[str, Any]:
    """The inputs of a sub-workflow's run: its workflow's own (a file's ``inputs:``) under the parent run's, under
    the step's own (references resolved)."""
    own = expressions.resolve(dict(step.template.inputs or {}), item_context(run_inputs, results, skipped))
    defaults = step.workflow.inputs if step.workflow is not None else {}
    return dict(codec.normalise({**defaults, **run_inputs, **own}, "inputs")[0])


class SubRuns:
    """The child runs started by steps of the runs one driver drives."""

    def __init__(self) -> None:
        self.parents: dict[str, str] = {}  # child run id -> the parent step's task id
        self.children: dict[str, str] = {}  # the parent step's task id -> child run id

    def follow(self, parent_task: str, child_run: str) -> None:
        self.parents[child_run] = parent_task
        self.children[parent_task] = child_run

    def of(self, run_id: str) -> dict[str, str]:
        """The steps of ``run_id`` waiting for a child run: step id -> child run id."""
        prefix = f"{run_id}/"
        return {step_of(t): c for t, c in self.children.items() if t.startswith(prefix) and "/" not in t[len(prefix) :]}

    def drop(self, child_run: str) -> str | None:
        """Stop following ``child_run``; the parent step's task id (None: not a child of ours)."""
        parent = self.parents.pop(child_run, None)
        if parent is not None:
            self.children.pop(parent, None)
        return parent

    def forget(self, run_id: str) -> None:
        for step_id in self.of(run_id):
            child = self.children.pop(task_id_of(run_id, step_id), None)
            if child is not None:
                self.parents.pop(child, None)


def parent_record(
    step: Step, run: RunRecord, child: RunRecord, results: Mapping[str, Any], now: float, cancelled: str | None
) -> TaskRecord:
    """The parent step's task, final as its child run ended (``results``: the child's, by step id)."""
    task = step_task(step, run.run_id, run.inputs, now)
    base = TaskRecord(task, TaskState.COMPLETED, started_at=child.created_at, finished_at=now)
    if child.state is RunState.COMPLETED:
        value, text = codec.normalise(dict(results), "result")
        return replace(base, result=value, result_json=text)
    what = f"sub-workflow run {child.run_id} {child.state.value}" + (f": {child.reason}" if child.reason else "")
    if child.state is RunState.CANCELLED or cancelled is not None:
        return replace(base, state=TaskState.CANCELLED, reason=cancelled or what)
    then = ending(task.policy)
    if then == "skip":
        return replace(base, reason=f"{SKIPPED}{what}", outcome=TaskOutcome.SKIPPED)
    error = TaskError("SubWorkflowFailed", what)
    if then == "abort":
        return replace(
            base, state=TaskState.FAILED, error=error, reason=f"{ABORTED}{what}", outcome=TaskOutcome.ABORTED
        )
    return replace(base, state=TaskState.FAILED, error=error, reason=what)
