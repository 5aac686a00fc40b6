"""Workflows sent as documents (not files on this machine) and runs seen whole: what a server offers clients.

A workflow document is the content of a workflow file (see ``pepper.workflow_file``), as YAML text or as the
mapping it parses to. It may name agents but never define them: an ``agents:`` section would make this
process run code (a command, a function) it was sent, so it is refused with ``ForbiddenWorkflowError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pepper.core.runtime import Runtime
from pepper.core.workflow import WorkflowController
from pepper.errors import ForbiddenWorkflowError, ValidationError
from pepper.model.status import TaskStatus
from pepper.model.workflow import STEP_KEY
from pepper.model.workflow_run import RunRecord, WorkflowResult
from pepper.workflow_file import parse_workflow_text

#: What a document is called in its errors (``workflow:3: ...``).
SOURCE = "workflow"


def workflow_from_document(document: str | Mapping[str, Any], runtime: Runtime) -> WorkflowController:
    """A ``WorkflowController`` on ``runtime`` for a workflow document (YAML text or its mapping); its
    ``default_inputs`` are the document's ``inputs``. Only agents already registered (by workers) may run it."""
    if isinstance(document, Mapping):
        import yaml  # loaded by those who send documents

        try:
            text = yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            raise ValidationError(f"the workflow document cannot be read: {exc}", field="workflow") from None
    elif isinstance(document, str):
        text = document
    else:
        raise ValidationError(
            f"a workflow must be a mapping (or YAML text) with 'name' and 'steps', got {type(document).__name__}",
            field="workflow",
        )
    parsed = parse_workflow_text(text, SOURCE)
    if parsed.defines_agents:
        raise ForbiddenWorkflowError(
            "a workflow sent to a server may not define agents (its `agents:` section): the server would run "
            "code it was sent. Leave `agents:` out and name agents that workers already run (with `agent:` on a "
            "step, or by task type); start a worker with those agents on the server's side: "
            "`pepper worker --agents agents.yaml`"
        )
    spec = parsed.spec
    controller = WorkflowController(spec.name, runtime, fail_fast=spec.fail_fast, description=spec.description)
    controller.spec = spec
    controller.default_inputs = dict(parsed.inputs)
    return controller


@dataclass(frozen=True, slots=True)
class RunDetails:
    """A run as stored, the status of each of its steps' tasks (by step id), and, once it ended, its result."""

    record: RunRecord
    steps: Mapping[str, TaskStatus]
    result: WorkflowResult | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "steps": {step: status.to_dict() for step, status in self.steps.items()},
            "result": None if self.result is None else self.result.to_dict(),
        }


def run_details(runtime: Runtime, run_id: str) -> RunDetails:
    """Where run ``run_id`` stands, step by step (``RunNotFoundError`` if there is none)."""
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError(f"run_id must be a non-empty string, got {run_id!r}", field="run_id")
    store = runtime.store
    record = store.runs.get(run_id)
    tasks = sorted(store.runs.tasks(run_id).values(), key=lambda r: r.task.created_at)
    steps = {str(r.task.metadata.get(STEP_KEY, r.task.task_id)): r.to_status() for r in tasks}
    result = WorkflowController(runtime=runtime).status(run_id) if record.state.is_final else None
    return RunDetails(record, steps, result)
