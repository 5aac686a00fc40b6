"""Workflows end to end on a real engine and SQLite file: parallelism, data flow, skips, failures, cancel."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import pepper
from pepper.core import TaskSequencer, WorkflowController
from pepper.errors import RunNotFoundError, WorkflowDefinitionError, WorkflowTimeoutError
from pepper.model.task import TaskState

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "w.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def sleeper(runtime, agent_id, task_types, seconds=0.2, capacity=4):
    @pepper.agent(agent_id, task_types=task_types, capacity=capacity, runtime=runtime)
    def run(task):
        time.sleep(task.inputs.get("sleep", seconds))
        return {"step": task.step_id, "got": dict(task.dependency_results), "inputs": dict(task.inputs)}

    return run


def test_a_wide_diamond_runs_its_middle_in_parallel_and_passes_results_by_step_id(runtime):
    sleeper(runtime, "worker", ["t"], capacity=4)
    workflow = WorkflowController("diamond", runtime)
    workflow.add_step("start", "t", inputs={"sleep": 0.01})
    for i in range(4):
        workflow.add_step(f"mid{i}", "t", dependencies=["start"])
    workflow.add_step("end", "t", dependencies=[f"mid{i}" for i in range(4)],
                      inputs={"first": "${{ steps.mid0.result.step }}", "sleep": 0.01})  # fmt: skip

    result = workflow.run(inputs={"site": "docs"}, timeout=30)

    assert result.status == "completed" and result.succeeded and result.run_id == workflow.run_id
    middle = [result[f"mid{i}"] for i in range(4)]
    assert max(s.started_at for s in middle) < min(s.finished_at for s in middle)  # all four overlapped
    assert all(s.started_at >= result["start"].finished_at for s in middle)
    end = result["end"].result
    assert sorted(end["got"]) == ["mid0", "mid1", "mid2", "mid3"] and end["got"]["mid0"]["step"] == "mid0"
    assert end["inputs"]["first"] == "mid0" and end["inputs"]["site"] == "docs"
    assert [s.agent_id for s in result] == ["worker"] * 6


def test_conditions_skip_steps_and_dependents_of_a_skipped_step_still_run(runtime):
    sleeper(runtime, "worker", ["t"], seconds=0.0)
    seen = []

    def only_big(ctx):
        seen.append((dict(ctx.inputs), sorted(ctx.results)))
        return ctx.inputs["size"] > 10

    workflow = WorkflowController("conditional", runtime)
    workflow.add_step("measure", "t")
    workflow.add_step("compress", "t", dependencies=["measure"], condition=only_big)
    workflow.add_step("announce", "t", dependencies=["measure"], condition="steps.measure.result.step == 'measure'")
    workflow.add_step("publish", "t", dependencies=["compress", "announce"],
                      condition="steps.compress.skipped and not steps.announce.skipped")  # fmt: skip

    result = workflow.run(inputs={"size": 3}, timeout=30)

    assert result.status == "completed"
    assert [(s.step_id, s.status) for s in result] == [
        ("measure", "completed"), ("compress", "skipped"), ("announce", "completed"), ("publish", "completed")
    ]  # fmt: skip
    assert result["compress"].result is None and "Python condition was false" in result["compress"].reason
    assert result["publish"].result["got"]["compress"] is None
    assert seen == [({"size": 3}, ["measure"])]
    assert "compress" not in result.results and "publish" in result.results


def test_by_default_a_failure_cancels_its_dependents_and_lets_other_branches_finish(runtime):
    sleeper(runtime, "worker", ["t"], seconds=0.3)
    pepper.agent("broken", task_types=["bad"], runtime=runtime)(lambda task: 1 / 0)
    workflow = WorkflowController("partial", runtime)
    workflow.add_step("fails", "bad")
    workflow.add_step("after", "t", dependencies=["fails"])
    workflow.add_step("later", "t", dependencies=["after"], condition="true")
    workflow.add_step("independent", "t")

    result = workflow.run(timeout=30)

    assert result.status == "failed" and result.failed_steps == ["fails"] and result.reason == "step 'fails' failed"
    assert result["fails"].error.type == "ZeroDivisionError"
    assert result["after"].state is TaskState.CANCELLED and "fails" in result["after"].reason
    assert result["later"].state is TaskState.CANCELLED and result["later"].started_at is None
    assert result["independent"].state is TaskState.COMPLETED


def test_fail_fast_cancels_every_unfinished_step_at_the_first_failure(runtime):
    release = threading.Event()
    pepper.agent("worker", task_types=["t"], runtime=runtime)(lambda task: release.wait(30))
    pepper.agent("broken", task_types=["bad"], runtime=runtime)(lambda task: time.sleep(0.2) or 1 / 0)
    workflow = WorkflowController("strict", runtime, fail_fast=True)
    workflow.add_step("slow", "t")
    workflow.add_step("fails", "bad")

    result = workflow.run(timeout=30)
    release.set()  # the slow step could not end before this: the run ended without waiting for it

    assert result.status == "failed"
    assert result["slow"].state is TaskState.CANCELLED and "fail_fast" in result["slow"].reason


def test_a_run_can_be_watched_and_cancelled_mid_way(runtime):
    release = threading.Event()

    @pepper.agent("gate", task_types=["gate"], runtime=runtime)
    def gate(task):
        release.wait(10)
        return "opened"

    sleeper(runtime, "worker", ["t"], seconds=0.0)
    workflow = WorkflowController("cancel-me", runtime)
    workflow.add_step("first", "t")
    workflow.add_step("wait", "gate", dependencies=["first"])
    workflow.add_step("never", "t", dependencies=["wait"])
    run_id = workflow.start()
    deadline = time.monotonic() + 10
    while workflow.status(run_id)["wait"].state is not TaskState.IN_PROGRESS and time.monotonic() < deadline:
        time.sleep(0.02)
    watching = workflow.status(run_id)
    assert watching.status == "running" and watching["first"].status == "completed"

    assert workflow.cancel(run_id, reason="changed my mind") is True
    release.set()
    result = workflow.wait(run_id, timeout=10)

    assert result.status == "cancelled" and result.reason == "changed my mind"
    assert result["first"].state is TaskState.COMPLETED
    assert result["never"].state is TaskState.CANCELLED
    assert workflow.cancel(run_id) is False  # it has ended


def test_each_execution_is_a_new_run_with_its_own_tasks(runtime):
    sleeper(runtime, "worker", ["t"], seconds=0.0)
    workflow = WorkflowController("twice", runtime)
    workflow.add_step("only", "t")
    first, second = workflow.run(inputs={"n": 1}), workflow.run(inputs={"n": 2})

    assert first.run_id != second.run_id and first["only"].task_id != second["only"].task_id
    assert (first["only"].result["inputs"]["n"], second["only"].result["inputs"]["n"]) == (1, 2)
    assert [r.run_id for r in workflow.runs()] == [second.run_id, first.run_id]


def test_the_runs_of_a_workflow_are_found_however_many_runs_of_others_came_after(runtime):
    sleeper(runtime, "worker", ["t"], seconds=0.0)
    mine, other = WorkflowController("mine", runtime), WorkflowController("other", runtime)
    for workflow in (mine, other):
        workflow.add_step("only", "t")
    first = mine.run()
    later = [other.start() for _ in range(101)]
    for run_id in later:
        other.wait(run_id, timeout=60)

    assert [r.run_id for r in mine.runs()] == [first.run_id]
    assert {r.run_id for r in other.runs(limit=200)} == set(later)


def test_bad_workflows_are_refused_before_anything_is_stored(runtime):
    sleeper(runtime, "worker", ["t"], seconds=0.0)
    workflow = WorkflowController("bad", runtime)
    workflow.add_step("a", "t", agent="nobody")
    with pytest.raises(WorkflowDefinitionError, match="pinned to agent 'nobody', which is not among the agents"):
        workflow.run()
    loop = WorkflowController("loop", runtime)
    loop.add_step("a", "t", dependencies=["b"])
    loop.add_step("b", "t", dependencies=["a"])
    with pytest.raises(WorkflowDefinitionError, match="cycle: a -> b -> a"):
        loop.run()
    assert runtime.store.runs.list() == [] and runtime.store.count_by_state() == {}
    with pytest.raises(RunNotFoundError):
        loop.status("no-such-run")


def test_a_run_past_its_timeout_is_cancelled_and_says_where_it_stood(runtime):
    sleeper(runtime, "worker", ["t"], seconds=3.0)
    workflow = WorkflowController("slow", runtime)
    workflow.add_step("slow", "t")
    workflow.add_step("after", "t", dependencies=["slow"])
    with pytest.raises(WorkflowTimeoutError) as timed_out:
        workflow.run(timeout=0.3)
    assert set(timed_out.value.pending) == {"slow", "after"}
    ended = workflow.wait(timed_out.value.run_id, timeout=10)
    assert ended.status == "cancelled" and "timeout" in ended.reason


def test_the_sequencer_runs_tasks_with_a_dependency_map_like_a_workflow(runtime):
    sleeper(runtime, "worker", ["documentation", "review"], seconds=0.0)
    sequencer = TaskSequencer(runtime)
    sequence = sequencer.create_sequence(
        tasks=[{"id": "docs", "type": "documentation"}, {"id": "review", "type": "review", "inputs": {"strict": True}}],
        dependencies={"review": ["docs"]},
    )
    assert sequence.order == ("docs", "review") and len(sequence) == 2

    async def main():
        return await sequencer.execute_sequence(sequence)

    result = asyncio.run(main())
    assert result.status == "completed" and result["review"].result["got"]["docs"]["step"] == "docs"
    assert sequencer.run_sequence(sequence).run_id != result.run_id
    with pytest.raises(WorkflowDefinitionError, match="not among the tasks"):
        sequencer.create_sequence([{"id": "a", "type": "t"}], {"b": ["a"]})
    with pytest.raises(WorkflowDefinitionError, match="unknown task field 'dependson'"):
        sequencer.create_sequence([{"id": "a", "type": "t", "dependson": []}])
