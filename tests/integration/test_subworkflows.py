"""Sub-workflows on a real engine and SQLite file: a step that runs a child run (from Python or a workflow file),
its result, failure through the recovery policy, cancel reaching the child, and the stored parent link."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import pepper
from pepper.core import WorkflowController, load_workflow
from pepper.errors import RerunError, WorkflowDefinitionError
from pepper.model.workflow_run import RunState
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "s.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def agents(runtime, fail=(), hold=None):
    @pepper.agent("worker", task_types=["t"], capacity=4, runtime=runtime)
    def work(task):
        if hold is not None:
            hold.wait(30)
        if task.step_id in fail:
            raise RuntimeError(f"{task.step_id} broke")
        return {"step": task.step_id, "page": task.inputs.get("page"), "got": sorted(task.dependency_results)}


def child_workflow(runtime):
    child = WorkflowController("child", runtime)
    child.add_step("write", "t", inputs={"page": "${{ inputs.page }}"})
    child.add_step("check", "t", dependencies=["write"])
    return child


def test_a_child_run_result_becomes_the_step_result_and_the_runs_are_linked(runtime):
    agents(runtime)
    parent = WorkflowController("parent", runtime)
    parent.add_step("prepare", "t")
    parent.add_step("docs", dependencies=["prepare"], workflow=child_workflow(runtime), inputs={"page": "api.md"})
    parent.add_step("publish", "t", dependencies=["docs"])

    result = parent.run(timeout=60)

    assert result.status == "completed", result.reason
    assert result["docs"].result["write"]["page"] == "api.md"
    assert result["docs"].result["check"]["got"] == ["write"]
    assert result["publish"].result["got"] == ["docs"]
    (child,) = runtime.store.runs.children(f"{result.run_id}/docs")
    assert child.parent == f"{result.run_id}/docs" and child.state is RunState.COMPLETED
    assert child.workflow == "child"


def test_a_failed_child_fails_the_step_and_skip_in_its_policy_lets_the_run_go_on(runtime):
    agents(runtime, fail={"check"})
    parent = WorkflowController("parent", runtime)
    parent.add_step("docs", workflow=child_workflow(runtime), inputs={"page": "a.md"})
    parent.add_step("after", "t", dependencies=["docs"])
    result = parent.run(timeout=60)
    assert result.status == "failed"
    assert result["docs"].status == "failed" and "sub-workflow run" in result["docs"].error.message
    assert result["after"].status == "cancelled"

    lenient = WorkflowController("lenient", runtime)
    lenient.add_step("docs", workflow=child_workflow(runtime), recovery="skip", inputs={"page": "a.md"})
    lenient.add_step("after", "t", dependencies=["docs"])
    result = lenient.run(timeout=60)
    assert result.status == "completed"
    assert result["docs"].status == "skipped" and result["after"].status == "completed"


def test_a_child_run_is_not_rerun_on_its_own_and_stays_as_its_parent_saw_it(runtime):
    broken = {"check"}
    agents(runtime, fail=broken)
    child = child_workflow(runtime)
    parent = WorkflowController("parent", runtime)
    parent.add_step("docs", workflow=child, inputs={"page": "a.md"})
    first = parent.run(timeout=60)
    (child_run,) = runtime.store.runs.children(f"{first.run_id}/docs")
    broken.clear()  # the cause is fixed

    for args in ({}, {"from_step": "write"}):
        with pytest.raises(RerunError, match=rf"sub-workflow run of step 'docs' of run '{first.run_id}'"):
            child.rerun(child_run.run_id, **args)
    with pytest.raises(RerunError, match="step 'docs' is a sub-workflow"):
        parent.rerun(first.run_id)

    again = runtime.store.runs.get(child_run.run_id)
    assert again.state is RunState.FAILED and again.finished_at == child_run.finished_at
    assert child.status(child_run.run_id)["check"].attempts == 1
    assert parent.status(first.run_id)["docs"].status == "failed"


def test_cancelling_the_parent_cancels_the_child(runtime):
    hold = threading.Event()
    agents(runtime, hold=hold)
    parent = WorkflowController("parent", runtime)
    parent.add_step("docs", workflow=child_workflow(runtime), inputs={"page": "a.md"})
    run_id = parent.start()
    try:
        child = eventually(lambda: next(iter(runtime.store.runs.children(f"{run_id}/docs")), None), "the child run")
        parent.cancel(run_id)
        result = parent.wait(run_id, timeout=60)
    finally:
        hold.set()
    assert result.status == "cancelled"
    assert eventually(lambda: runtime.store.runs.get(child.run_id).state.is_final, "the child ended")
    assert runtime.store.runs.get(child.run_id).state is RunState.CANCELLED


def test_a_workflow_file_names_its_sub_workflow_by_a_path_relative_to_it(tmp_path, runtime):
    agents(runtime)
    folder = tmp_path / "flows"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "child.yaml").write_text(
        "name: child\nsteps:\n  - id: write\n    type: t\n    inputs: {page: '${{ inputs.page }}'}\n"
    )
    (folder / "parent.yaml").write_text(
        "name: parent\nsteps:\n  - id: docs\n    workflow: parts/child.yaml\n    inputs: {page: index.md}\n"
        "  - id: after\n    type: t\n    needs: docs\n"
    )
    workflow = load_workflow(folder / "parent.yaml", runtime)
    result = workflow.run(timeout=60)
    assert result.status == "completed"
    assert result["docs"].result == {"write": {"step": "write", "page": "index.md", "got": []}}


def test_a_sub_workflow_starts_from_its_own_default_inputs_under_the_run_and_the_step(tmp_path, runtime):
    agents(runtime)
    (tmp_path / "child.yaml").write_text(
        "name: child\ninputs: {page: default.md}\nsteps:\n  - id: write\n    type: t\n"
        "    inputs: {page: '${{ inputs.page }}'}\n"
    )
    (tmp_path / "parent.yaml").write_text(
        "name: parent\nsteps:\n  - id: plain\n    workflow: child.yaml\n"
        "  - id: given\n    workflow: child.yaml\n    inputs: {page: given.md}\n"
    )
    from_file = load_workflow(tmp_path / "parent.yaml", runtime)
    python_child = WorkflowController("python-child", runtime)
    python_child.add_step("write", "t", inputs={"page": "${{ inputs.page }}"})
    python_child.default_inputs = {"page": "python.md"}
    from_python = WorkflowController("python-parent", runtime)
    from_python.add_step("plain", workflow=python_child)

    first, second = from_file.run(timeout=60), from_python.run(timeout=60)
    overridden = from_python.run(inputs={"page": "run.md"}, timeout=60)

    assert first.status == "completed" and second.status == "completed", (first.reason, second.reason)
    assert first["plain"].result["write"]["page"] == "default.md"
    assert first["given"].result["write"]["page"] == "given.md"
    assert second["plain"].result["write"]["page"] == "python.md"
    assert overridden["plain"].result["write"]["page"] == "run.md"
    (child,) = runtime.store.runs.children(f"{first.run_id}/plain")
    assert child.inputs == {"page": "default.md"}


def test_a_missing_or_looping_sub_workflow_file_is_refused_at_its_line(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nsteps:\n  - id: b\n    workflow: b.yaml\n")
    (tmp_path / "b.yaml").write_text("name: b\nsteps:\n  - id: a\n    workflow: a.yaml\n")
    (tmp_path / "c.yaml").write_text("name: c\nsteps:\n  - id: x\n    workflow: nowhere.yaml\n")
    with pytest.raises(WorkflowDefinitionError, match=r"b\.yaml:4: .*cycle: a\.yaml -> b\.yaml -> a\.yaml"):
        load_workflow(tmp_path / "a.yaml")
    with pytest.raises(WorkflowDefinitionError, match=r"c\.yaml:4: workflow: no such workflow file 'nowhere\.yaml'"):
        load_workflow(Path(tmp_path / "c.yaml"))


def test_after_a_restart_the_parent_follows_the_child_it_started_instead_of_starting_another(tmp_path):
    db, home = str(tmp_path / "r.db"), str(tmp_path / "home")

    def build(runtime):
        agents(runtime)
        child = WorkflowController("child", runtime)
        child.add_step("gate", approval={"timeout": "1h"})
        child.add_step("write", "t", dependencies=["gate"])
        parent = WorkflowController("parent", runtime)
        parent.add_step("docs", workflow=child)
        parent.add_step("after", "t", dependencies=["docs"])
        return parent

    first = pepper.Runtime(db=db, home=home, **FAST)
    run_id = build(first).start()
    child = eventually(lambda: next(iter(first.store.runs.children(f"{run_id}/docs")), None), "the child run")
    eventually(lambda: first.store.approvals.get(f"{child.run_id}/gate") is not None, "the child's approval")
    first.close()

    with pepper.Runtime(db=db, home=home, **FAST) as second:
        parent = build(second)
        WorkflowController(runtime=second).approve(child.run_id, "gate")
        result = parent.resume(run_id, timeout=60)
        assert result.status == "completed", result.reason
        assert [r.run_id for r in second.store.runs.children(f"{run_id}/docs")] == [child.run_id]
        assert result["docs"].result["write"]["step"] == "write"
