"""Delays, fan-outs, approvals and sub-workflows used together: a fan-out waits for its delay, a delay where it
cannot apply is refused, and a re-run that would run a fan-out, an approval or a sub-workflow again is refused
and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator, WorkflowController
from pepper.errors import PepperError, RerunError, WorkflowDefinitionError
from pepper.model.task import TaskState
from pepper.model.workflow_run import RunState
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


# -- re-runs of the steps that are not plain tasks ---------------------------------------------------------


def _workers(runtime: pepper.Runtime, broken: set[str], calls: list[str]) -> None:
    @pepper.agent("worker", task_types=["t"], capacity=4, runtime=runtime)
    def work(task: Any) -> Any:
        calls.append(task.task_id.rpartition("/")[2])
        if task.step_id in broken or task.inputs.get("item") in broken:
            raise RuntimeError(f"{task.task_id} broke")
        return task.inputs.get("item", task.step_id)


def _unchanged(runtime: pepper.Runtime, run_id: str, before: Any, calls: list[str]) -> None:
    """The run is as it ended: same state and end, no step attempted again, nothing ran."""
    record = runtime.store.runs.get(run_id)
    assert record.state is before.status and record.finished_at == before.finished_at
    after = WorkflowController(record.workflow, runtime).status(run_id)
    assert {s: (r.state, r.attempts) for s, r in after.steps.items()} == {
        s: (r.state, r.attempts) for s, r in before.steps.items()
    }
    assert calls == []


def test_rerunning_a_failed_fan_out_is_refused_and_changes_nothing(runtime: pepper.Runtime):
    calls: list[str] = []
    broken = {"b"}
    _workers(runtime, broken, calls)
    flow = WorkflowController("fan", runtime)
    flow.add_step("prepare", "t")
    flow.add_step("docs", "t", dependencies=["prepare"], for_each=["a", "b", "c"], max_parallel=1,
                  inputs={"item": "${{ item }}"})  # fmt: skip
    flow.add_step("index", "t", dependencies=["docs"])
    first = flow.run(timeout=60)
    assert first.status == "failed" and first["docs"].state is TaskState.FAILED
    broken.clear()
    calls.clear()
    for ask in ({}, {"from_step": "docs"}, {"from_step": "prepare"}):
        with pytest.raises(RerunError) as caught:
            flow.rerun(first.run_id, timeout=30, **ask)
        message = str(caught.value)
        assert "step 'docs' is a fan-out (for_each)" in message, message
        assert "only task steps can run again" in message
    _unchanged(runtime, first.run_id, first, calls)
    assert flow.rerun(first.run_id, from_step="index", timeout=30).status == "failed"  # docs still failed


def test_rerunning_a_rejected_approval_is_refused_and_changes_nothing(runtime: pepper.Runtime):
    calls: list[str] = []
    _workers(runtime, set(), calls)
    flow = WorkflowController("release", runtime)
    flow.add_step("build", "t")
    flow.add_step("gate", dependencies=["build"], approval={"timeout": "1h", "approvers": [APPROVER]})
    flow.add_step("ship", "t", dependencies=["gate"])
    run_id = flow.start()
    eventually(lambda: any(a.waiting for a in runtime.store.approvals.of_run(run_id)), "the approval request")
    flow.approve(run_id, "gate", approve=False, by=APPROVER, reason="not now")
    first = flow.wait(run_id, timeout=60)
    assert first.status == "failed" and first["gate"].state is TaskState.FAILED
    calls.clear()
    approvals = runtime.store.approvals.of_run(run_id)
    for ask in ({}, {"from_step": "gate"}, {"from_step": "build"}):
        with pytest.raises(RerunError, match=r"step 'gate' is an approval.*only task steps can run again"):
            flow.rerun(run_id, timeout=30, **ask)
    _unchanged(runtime, run_id, first, calls)
    assert runtime.store.approvals.of_run(run_id) == approvals


def test_rerunning_a_failed_sub_workflow_is_refused_and_changes_nothing(runtime: pepper.Runtime):
    calls: list[str] = []
    broken = {"check"}
    _workers(runtime, broken, calls)
    child = WorkflowController("child", runtime)
    child.add_step("write", "t")
    child.add_step("check", "t", dependencies=["write"])
    flow = WorkflowController("parent", runtime)
    flow.add_step("prepare", "t")
    flow.add_step("docs", dependencies=["prepare"], workflow=child)
    first = flow.run(timeout=60)
    assert first.status == "failed" and first["docs"].state is TaskState.FAILED
    broken.clear()
    calls.clear()
    runs = {r.run_id: (r.state, r.finished_at) for r in runtime.store.runs.list()}
    for ask in ({}, {"from_step": "docs"}):
        with pytest.raises(RerunError, match=r"step 'docs' is a sub-workflow.*only task steps can run again"):
            flow.rerun(first.run_id, timeout=30, **ask)
    _unchanged(runtime, first.run_id, first, calls)
    assert {r.run_id: (r.state, r.finished_at) for r in runtime.store.runs.list()} == runs
    assert all(state is RunState.FAILED for state, _ in runs.values())


def test_a_stored_spec_with_a_delay_on_an_approval_still_loads_without_it():
    from pepper.model.workflow import WorkflowSpec

    stored = {"name": "old", "steps": [{"id": "build", "type": "t"},
                                       {"id": "gate", "type": "approval", "needs": ["build"], "delay": 600,
                                        "approval": {"timeout": 3600}}]}  # fmt: skip
    spec = WorkflowSpec.from_dict(stored)
    assert spec.by_id["gate"].approval is not None and spec.by_id["gate"].delay is None
