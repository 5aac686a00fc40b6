"""Delays, fan-outs, approvals and sub-workflows used together: a fan-out waits for its delay, a delay where it
cannot apply is refused, and a re-run that would run a fan-out, an approval or a sub-workflow again is refused
and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator, WorkflowController
from pepper.errors import PepperError, WorkflowDefinitionError
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from pepper.workflow_file import parse_workflow_file
from tests.support import eventually

APPROVER = "approver@example.com"


def test_a_fan_out_starts_no_item_before_its_delay_has_passed(virtual: pepper.Runtime, clock: ManualClock):
    started: list[tuple[str, float]] = []

    @pepper.agent("worker", task_types=["scan", "doc"], capacity=4, runtime=virtual)
    def work(task: Any) -> Any:
        started.append((task.task_id.rpartition("/")[2], clock.now()))
        return ["api", "cli", "store"] if task.task_type == "scan" else task.inputs["module"]

    flow = WorkflowController("fan", virtual)
    flow.add_step("scan", "scan")
    flow.add_step("docs", "doc", dependencies=["scan"], for_each="${{ steps.scan.result }}", max_parallel=2,
                  inputs={"module": "${{ item }}"}, delay="10m")  # fmt: skip
    began = clock.now()
    run_id = flow.start()

    orchestrator = TaskOrchestrator(virtual)
    first = eventually(lambda: _status(orchestrator, f"{run_id}/docs[0]"), "the first item's task")
    assert first.not_before == pytest.approx(began + 600)
    assert first.state is TaskState.PENDING and [w.kind for w in first.waiting_on] == ["delay"]
    assert [name for name, _ in started] == ["scan"]

    clock.advance(600)
    result = flow.wait(run_id, timeout=30)
    assert result.status == "completed" and result["docs"].result == ["api", "cli", "store"]
    items = [(name, at) for name, at in started if name.startswith("docs[")]
    assert len(items) == 3 and all(at >= began + 600 for _, at in items)
    stored = virtual.store.get_tasks([f"{run_id}/docs[{i}]" for i in range(3)])
    assert all(r.task.not_before == pytest.approx(began + 600) for r in stored.values())


def _status(orchestrator: TaskOrchestrator, task_id: str) -> Any:
    try:
        return orchestrator.get_task_status(task_id)
    except PepperError:
        return None


# -- a delay where it cannot apply -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        ("  - id: gate\n    needs: build\n    delay: 10m\n    approval: {timeout: 1h}\n", "an approval"),
        ("  - id: gate\n    needs: build\n    delay: 10m\n    workflow: child.yaml\n", "a sub-workflow"),
    ],
    ids=["approval", "sub-workflow"],
)
def test_a_delay_on_an_approval_or_a_sub_workflow_step_is_refused_at_its_line(tmp_path: Path, step: str, kind: str):
    (tmp_path / "child.yaml").write_text("name: child\nsteps:\n  - id: write\n    type: t\n")
    path = tmp_path / "flow.yaml"
    path.write_text(f"name: flow\nsteps:\n  - id: build\n    type: t\n{step}")
    with pytest.raises(WorkflowDefinitionError) as caught:
        parse_workflow_file(path, with_agents=False)
    error = caught.value
    assert error.line == 7 and error.step_id == "gate" and error.field == "delay"
    assert f"step 'gate' is {kind} step" in str(error)
    assert "delay applies only to task steps and fan-outs (for_each)" in str(error)


def test_a_delay_on_an_approval_or_a_sub_workflow_step_is_refused_in_python(runtime: pepper.Runtime):
    child = WorkflowController("child", runtime)
    child.add_step("write", "t")
    flow = WorkflowController("flow", runtime)
    flow.add_step("build", "t")
    with pytest.raises(WorkflowDefinitionError, match=r"step 'gate' is an approval step.*delay applies only"):
        flow.add_step("gate", dependencies=["build"], approval={"timeout": "1h"}, delay="10m")
    with pytest.raises(WorkflowDefinitionError, match=r"step 'docs' is a sub-workflow step.*delay applies only"):
        flow.add_step("docs", dependencies=["build"], workflow=child, delay=30)
    assert [s.step_id for s in flow.spec.steps] == ["build"]  # nothing was added
    flow.add_step("later", "t", dependencies=["build"], delay="10m")  # a task step may wait
    flow.add_step("items", "t", dependencies=["build"], for_each=[1, 2], delay="10m")  # and a fan-out
