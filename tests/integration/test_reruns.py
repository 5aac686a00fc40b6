"""Re-runs: an ended run's failed (or from-a-step) steps run again in the same run, history kept."""

from __future__ import annotations

import pytest

import pepper
from pepper.core import WorkflowController
from pepper.errors import RerunError, RunNotFoundError, ValidationError
from pepper.model.task import TaskState
from pepper.model.workflow_run import RunState
from tests.integration.test_workflows import FAST


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "r.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def _flow(runtime, calls: list[str], broken: set[str]) -> WorkflowController:
    """fetch -> (build, docs) -> publish; a step in ``broken`` fails (no retries)."""

    @pepper.agent("worker", task_types=["work"], capacity=4, runtime=runtime)
    def work(task):
        calls.append(task.step_id)
        if task.step_id in broken:
            raise RuntimeError(f"{task.step_id} broke")
        return task.step_id

    flow = WorkflowController("release", runtime=runtime)
    flow.add_step("fetch", "work")
    flow.add_step("build", "work", dependencies=["fetch"])
    flow.add_step("docs", "work", dependencies=["fetch"])
    flow.add_step("publish", "work", dependencies=["build", "docs"])
    return flow


def _states(result) -> dict[str, TaskState]:
    return {sid: step.state for sid, step in result.steps.items()}


def test_rerun_of_the_failed_steps_keeps_completed_ones_and_every_attempt(runtime):
    calls: list[str] = []
    broken = {"build"}
    flow = _flow(runtime, calls, broken)
    first = flow.run()
    assert first.status is RunState.FAILED
    assert _states(first)["publish"] is TaskState.CANCELLED
    run_id = first.run_id
    broken.clear()  # the cause is fixed
    calls.clear()
    assert flow.start_rerun(run_id) == ["build", "publish"]
    again = flow.wait(run_id, timeout=30)
    assert again.run_id == run_id and again.status is RunState.COMPLETED
    assert sorted(calls) == ["build", "publish"]  # fetch and docs were not run again
    assert again.steps["build"].attempts == 2
    history = runtime.store.attempts(f"{run_id}/build")
    assert [(h["attempt"], h["outcome"]) for h in history] == [(1, "failed")]
    assert "build broke" in history[0]["error"]
    assert [r.run_id for r in runtime.store.runs.list()] == [run_id]  # the same run, no new one


def test_rerun_from_a_step_runs_it_and_everything_downstream(runtime):
    calls: list[str] = []
    flow = _flow(runtime, calls, set())
    first = flow.run()
    assert first.status is RunState.COMPLETED
    calls.clear()
    again = flow.rerun(first.run_id, from_step="docs", timeout=30)
    assert again.status is RunState.COMPLETED and sorted(calls) == ["docs", "publish"]
    outcomes = [h["outcome"] for h in runtime.store.attempts(f"{first.run_id}/docs")]
    assert outcomes == ["completed"]


def test_bad_reruns_are_refused_and_change_nothing(runtime):
    calls: list[str] = []
    flow = _flow(runtime, calls, set())
    first = flow.run()
    with pytest.raises(RunNotFoundError):
        flow.rerun("no-such-run")
    with pytest.raises(RerunError, match=r"no step 'doc'.*Did you mean 'docs'"):
        flow.rerun(first.run_id, from_step="doc")
    with pytest.raises(RerunError, match="no failed or cancelled step"):
        flow.rerun(first.run_id)
    record = runtime.store.runs.get(first.run_id)
    assert record.state is RunState.COMPLETED and record.finished_at == first.finished_at
    assert all(step.attempts == 1 for step in flow.status(first.run_id).steps.values())


@pytest.mark.parametrize("timeout", [-1, 0, float("nan"), "soon"])
def test_a_rerun_with_a_bad_timeout_is_refused_before_the_run_is_touched(runtime, timeout):
    calls: list[str] = []
    flow = _flow(runtime, calls, {"build"})
    first = flow.run()
    assert first.status is RunState.FAILED
    calls.clear()
    with pytest.raises(ValidationError, match="timeout"):
        flow.rerun(first.run_id, timeout=timeout)
    record = runtime.store.runs.get(first.run_id)
    assert record.state is RunState.FAILED and record.finished_at == first.finished_at
    assert calls == [] and flow.status(first.run_id).steps["build"].attempts == 1


def test_a_run_that_has_not_ended_cannot_be_rerun(runtime):
    import threading

    gate = threading.Event()

    @pepper.agent("slow", task_types=["slow"], runtime=runtime)
    def slow(task):
        gate.wait(30)
        return "ok"

    flow = WorkflowController("slow", runtime=runtime)
    flow.add_step("only", "slow")
    run_id = flow.start()
    try:
        with pytest.raises(RerunError, match="has not ended"):
            flow.rerun(run_id, from_step="only")
    finally:
        gate.set()
    assert flow.wait(run_id, timeout=30).status is RunState.COMPLETED
    assert flow.status(run_id).steps["only"].attempts == 1
