"""Fan-out steps end to end on a real engine and SQLite file: items, the concurrency limit, results in order,
empty lists, values that are not lists, item failures, fail-fast and cancel."""

from __future__ import annotations

import threading

import pytest

import pepper
from pepper.core import WorkflowController
from pepper.errors import WorkflowDefinitionError
from pepper.model.task import TaskState
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "w.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


class Gauge:
    """Counts the attempts running at once inside an agent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.seen: list[int] = []

    def __enter__(self) -> Gauge:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_a_thousand_items_never_run_more_than_max_parallel_at_once_and_reach_the_dependent_in_order(runtime):
    gauge = Gauge()
    first = threading.Barrier(8, timeout=60)  # the first eight items wait for each other: eight at once

    @pepper.agent("scanner", task_types=["scan"], runtime=runtime)
    def scan(task):
        return {"modules": [f"m{i:04d}" for i in range(1000)]}

    @pepper.agent("documenter", task_types=["document"], capacity=32, runtime=runtime)
    def document(task):
        with gauge:
            gauge.seen.append(task.inputs["index"])
            if task.inputs["index"] < 8:
                first.wait()
            return {"module": task.inputs["module"], "index": task.inputs["index"]}

    @pepper.agent("collector", task_types=["collect"], runtime=runtime)
    def collect(task):
        return task.dependency_results["document"]

    workflow = WorkflowController("fan", runtime)
    workflow.add_step("scan", "scan")
    workflow.add_step("document", "document", dependencies=["scan"], for_each="${{ steps.scan.result.modules }}",
                      max_parallel=8, inputs={"module": "${{ item }}", "index": "${{ index }}"})  # fmt: skip
    workflow.add_step("collect", "collect", dependencies=["document"])

    result = workflow.run(timeout=300)

    assert result.status == "completed", result.reason
    assert gauge.most == 8
    expected = [{"module": f"m{i:04d}", "index": i} for i in range(1000)]
    assert result["document"].result == expected
    assert result["collect"].result == expected
    assert sorted(gauge.seen) == list(range(1000))
    tid = f"{result.run_id}/document[999]"
    item = runtime.store.get_tasks([tid])[tid]
    assert item.state is TaskState.COMPLETED and item.task.inputs["module"] == "m0999"


def test_an_input_list_fans_out_and_an_empty_list_completes_the_step_at_once_with_no_items(runtime):
    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    def echo(task):
        return task.inputs.get("page")

    workflow = WorkflowController("pages", runtime)
    workflow.add_step("render", "echo", for_each="${{ inputs.pages }}", inputs={"page": "${{ item }}.html"})
    workflow.add_step("after", "echo", dependencies=["render"], inputs={"page": "${{ steps.render.result }}"})

    full = workflow.run(inputs={"pages": ["a", "b"]}, timeout=60)
    assert full.status == "completed"
    assert full["render"].result == ["a.html", "b.html"]
    assert full["after"].result == ["a.html", "b.html"]

    empty = workflow.run(inputs={"pages": []}, timeout=60)
    assert empty.status == "completed"
    assert empty["render"].result == [] and empty["after"].result == []
    assert runtime.store.runs.tasks(empty.run_id).keys() == {f"{empty.run_id}/render", f"{empty.run_id}/after"}


def test_a_for_each_value_that_is_not_a_list_fails_the_step_naming_its_type(runtime):
    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    def echo(task):
        return {"modules": "not-a-list"}

    workflow = WorkflowController("bad", runtime)
    workflow.add_step("scan", "echo")
    workflow.add_step("each", "echo", dependencies=["scan"], for_each="steps.scan.result.modules")
    workflow.add_step("after", "echo", dependencies=["each"])

    result = workflow.run(timeout=60)

    assert result.status == "failed"
    assert result["each"].status == "failed"
    assert "must give a list" in result["each"].error.message and "str" in result["each"].error.message
    assert result["after"].status == "cancelled"


def test_an_item_that_fails_after_its_retries_fails_the_step_and_starts_no_more_items(runtime):
    attempts: list[int] = []

    @pepper.agent("flaky", task_types=["work"], runtime=runtime)
    def work(task):
        attempts.append(task.inputs["n"])
        if task.inputs["n"] == 2:
            raise RuntimeError("item two is broken")
        return task.inputs["n"]

    workflow = WorkflowController("failing", runtime)
    workflow.add_step("each", "work", for_each=[0, 1, 2, 3, 4, 5], max_parallel=1, max_retries=1,
                      inputs={"n": "${{ item }}"})  # fmt: skip
    workflow.add_step("after", "work", dependencies=["each"], inputs={"n": 9})

    result = workflow.run(timeout=60)

    assert result.status == "failed"
    assert result["each"].status == "failed"
    assert "item 2 of 6 failed" in result["each"].error.message
    assert "item two is broken" in result["each"].error.message
    assert attempts == [0, 1, 2, 2]  # one retry of item 2, then nothing more starts
    assert result["after"].status == "cancelled"


def test_with_fail_fast_a_failed_item_stops_the_other_branches(runtime):
    release = threading.Event()

    @pepper.agent("worker", task_types=["work", "slow"], capacity=4, runtime=runtime)
    def work(task):
        if task.task_type == "slow":
            release.wait(30)
            return "slow"
        raise RuntimeError("nope")

    workflow = WorkflowController("fast", runtime, fail_fast=True)
    workflow.add_step("each", "work", for_each=[1, 2])
    workflow.add_step("other", "slow")

    run_id = workflow.start()
    try:
        result = workflow.wait(run_id, timeout=60)
    finally:
        release.set()
    assert result.status == "failed"
    assert result["each"].status == "failed" and result["other"].status == "cancelled"


def test_cancelling_a_run_cancels_its_running_items(runtime):
    started = threading.Event()
    release = threading.Event()

    @pepper.agent("worker", task_types=["work"], capacity=4, runtime=runtime)
    def work(task):
        started.set()
        release.wait(30)
        return "done"

    workflow = WorkflowController("cancel", runtime)
    workflow.add_step("each", "work", for_each=list(range(10)), max_parallel=2)

    run_id = workflow.start()
    try:
        assert started.wait(30)
        workflow.cancel(run_id)
        result = workflow.wait(run_id, timeout=60)
    finally:
        release.set()
    assert result.status == "cancelled"
    assert result["each"].status == "cancelled"
    tasks = runtime.store.runs.tasks(run_id)
    items = [tid for tid in tasks if "[" in tid]
    assert len(items) == 2  # no item started after the cancel
    eventually(lambda: all(r.state.is_final for r in runtime.store.runs.tasks(run_id).values()), "items final")


def test_bad_fan_out_definitions_are_refused_with_what_is_valid(runtime):
    workflow = WorkflowController("defs", runtime)
    with pytest.raises(WorkflowDefinitionError, match="max_parallel must be a whole number"):
        workflow.add_step("a", "t", for_each=[1], max_parallel=0)
    with pytest.raises(WorkflowDefinitionError, match="applies only to a step with for_each"):
        workflow.add_step("a", "t", max_parallel=2)
    with pytest.raises(WorkflowDefinitionError, match="for_each must be an expression giving a list"):
        workflow.add_step("a", "t", for_each=5)
    with pytest.raises(WorkflowDefinitionError, match="exist only in a step with for_each"):
        workflow.add_step("a", "t", inputs={"x": "${{ item }}"})
    with pytest.raises(WorkflowDefinitionError, match="does not depend on 'scan'"):
        workflow.add_step("a", "t", for_each="${{ steps.scan.result }}")
    assert workflow.spec.steps == ()


def test_the_run_timeline_and_its_gantt_chart_draw_a_bar_per_item(runtime, tmp_path):
    from pepper.core.chart_inputs import fan_out_items
    from pepper.core.run_timeline import run_timeline
    from pepper.drawing import run_bars

    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    def echo(task):
        return task.inputs.get("n")

    workflow = WorkflowController("drawn", runtime)
    workflow.add_step("each", "echo", for_each=[1, 2, 3], inputs={"n": "${{ item }}"})
    workflow.add_step("after", "echo", dependencies=["each"])
    result = workflow.run(timeout=60)

    timeline = run_timeline(runtime, result.run_id)
    assert [b["step_id"] for b in timeline["bars"]] == ["each[0]", "each[1]", "each[2]", "after"]
    assert all(b["agent_id"] == "echo" for b in timeline["bars"])
    labels = [bar.label for bar in run_bars(result, items=fan_out_items(runtime, result))]
    assert labels == ["each[0]", "each[1]", "each[2]", "after"]


def test_a_for_each_list_past_the_bound_fails_the_step_and_makes_no_item(runtime):
    from pepper.model.workflow import MAX_EXPECTED_ITEMS

    calls: list[str] = []

    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    def echo(task):
        calls.append(task.task_id)
        return {"modules": list(range(MAX_EXPECTED_ITEMS + 1))}

    workflow = WorkflowController("big", runtime)
    workflow.add_step("scan", "echo")
    workflow.add_step("each", "echo", dependencies=["scan"], for_each="${{ steps.scan.result.modules }}")
    workflow.add_step("after", "echo", dependencies=["each"])
    workflow.add_step("pages", "echo", for_each="${{ inputs.pages }}")

    result = workflow.run({"pages": list(range(MAX_EXPECTED_ITEMS + 5))}, timeout=60)

    assert result.status == "failed"
    message = result["each"].error.message
    assert result["each"].status == "failed" and result["each"].error.type == "ValidationError"
    assert f"gave {MAX_EXPECTED_ITEMS + 1:,} items" in message and f"at most {MAX_EXPECTED_ITEMS:,}" in message
    assert f"gave {MAX_EXPECTED_ITEMS + 5:,} items" in result["pages"].error.message
    assert result["after"].status == "cancelled"
    stored = runtime.store.runs.tasks(result.run_id)
    assert sorted(tid.split("/", 1)[1] for tid in stored) == ["after", "each", "pages", "scan"]  # no item task
    assert calls == [f"{result.run_id}/scan"]
