"""Bad input through the public API on a real runtime: a typed error at once, and nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

import pepper
from pepper.core import (
    ErrorHandler,
    ResourceAllocator,
    ResourceManager,
    ResourceMonitor,
    TaskOrchestrator,
    TaskSequencer,
    WorkflowController,
)
from pepper.errors import ConfigError, ValidationError, WorkflowDefinitionError
from tests.support import damage_tasks_table

FAST = {"poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}
LISTED = b"report-\xff.txt".decode("utf-8", "surrogateescape")  # a non-UTF-8 file name, as os.listdir gives it


@pytest.fixture
def runtime(tmp_path: Path):
    rt = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def test_a_batch_with_one_unstorable_task_is_refused_whole(runtime: pepper.Runtime) -> None:
    orchestrator = TaskOrchestrator(runtime)
    good = {"id": "good", "type": "review"}
    for bad in ({"id": "bad", "type": "review", "inputs": {"path": LISTED}},
                {"id": "bad", "type": "review", "max_retries": 10**30},
                {"id": "bad", "type": "review", "metadata": {LISTED: True}}):  # fmt: skip
        with pytest.raises(ValidationError):
            orchestrator.submit_tasks([good, bad])
    for not_a_batch in (None, 42, [good, 42]):
        with pytest.raises(ValidationError, match="tasks"):
            orchestrator.submit_tasks(not_a_batch)  # type: ignore[arg-type]
    assert runtime.store.count_by_state() == {}
    assert orchestrator.submit_tasks([good])[0].task_id == "good"  # the same runtime still works


def test_workflow_inputs_with_unstorable_text_are_refused(runtime: pepper.Runtime) -> None:
    pepper.agent("reviewer", task_types=["review"], runtime=runtime)(lambda task: "ok")
    workflow = WorkflowController("review", runtime)
    workflow.add_step("only", "review")
    with pytest.raises(ValidationError, match="not valid Unicode"):
        workflow.run(inputs={"files": [LISTED]}, timeout=30)
    assert runtime.store.runs.list() == [] and runtime.store.count_by_state() == {}


def test_a_workflow_step_no_agent_can_take_is_refused_at_once(runtime: pepper.Runtime) -> None:
    pepper.agent("writer", task_types=["docs"], skills=["markdown"], runtime=runtime)(lambda task: "ok")
    by_type = WorkflowController("deploy", runtime)
    by_type.add_step("ship", "deploy")
    with pytest.raises(WorkflowDefinitionError, match="'deploy', which none of the agents takes") as caught:
        by_type.run(timeout=60)  # refused at once; it used to wait for its timeout
    assert caught.value.step_id == "ship" and "writer (docs)" in str(caught.value)
    by_skill = WorkflowController("print", runtime)
    by_skill.add_step("render", "docs", requirements={"skills": ["latex"]})
    with pytest.raises(WorkflowDefinitionError, match="needs skills latex") as caught:
        by_skill.run(timeout=60)
    assert caught.value.step_id == "render"
    assert runtime.store.runs.list() == [] and runtime.store.count_by_state() == {}


def test_a_step_an_agent_of_another_live_worker_takes_is_accepted(tmp_path: Path, runtime: pepper.Runtime) -> None:
    other = pepper.Runtime(db=runtime.settings.db, home=str(tmp_path / "other"), **FAST)
    try:
        pepper.agent("printer", task_types=["print"], skills=["latex"], runtime=other)(lambda task: "printed")
        other.start()  # a live worker sharing the database
        workflow = WorkflowController("print", runtime)
        workflow.add_step("render", "print", requirements={"skills": ["latex"]})
        result = workflow.run(timeout=60)
        assert result.succeeded and result["render"].result == "printed"
    finally:
        other.close()


def test_a_runtime_does_not_make_folders_for_its_database(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "pepper.db"
    runtime = pepper.Runtime(db=str(missing), home=str(tmp_path / "home"))
    try:
        with pytest.raises(ConfigError, match="does not exist"):
            TaskOrchestrator(runtime).submit_task(task_type="review")
    finally:
        runtime.close()
    assert not (tmp_path / "no").exists()


def test_a_runtime_makes_its_own_home_folder_for_the_default_database(tmp_path: Path) -> None:
    with pepper.Runtime(home=str(tmp_path / "deep" / "home")) as runtime:
        TaskOrchestrator(runtime).submit_task(task_id="t1", task_type="review")
    assert (tmp_path / "deep" / "home" / "pepper.db").is_file()


def test_reading_a_damaged_database_through_the_api_raises_a_typed_error(tmp_path: Path) -> None:
    from pepper.errors import DatabaseDamagedError

    db = tmp_path / "damaged.db"
    with pepper.Runtime(db=str(db), home=str(tmp_path / "home")) as rt:
        TaskOrchestrator(rt).submit_tasks(
            [{"id": f"t{i}", "type": "t", "inputs": {"pad": "x" * 500}} for i in range(200)]
        )
    damage_tasks_table(db)
    with pytest.raises(DatabaseDamagedError, match="damaged"):
        rt = pepper.Runtime(db=str(db), home=str(tmp_path / "home"))
        try:
            TaskOrchestrator(rt).list_tasks()
            TaskOrchestrator(rt).get_task_status("t150")
        finally:
            rt.close()


def test_looking_up_an_id_that_is_not_valid_text_is_a_typed_error(runtime: pepper.Runtime) -> None:
    orchestrator = TaskOrchestrator(runtime)
    for call in (orchestrator.get_task_status, orchestrator.cancel_task, lambda i: orchestrator.wait([i], 1)):
        with pytest.raises(ValidationError, match="not valid text"):
            call(LISTED)
    assert runtime.store.get_tasks([LISTED, "unknown"]) == {}


def test_waiting_and_listing_refuse_numbers_that_mean_nothing(runtime: pepper.Runtime) -> None:
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task(task_id="t", task_type="t")
    for timeout in (float("nan"), float("inf"), -1):
        with pytest.raises(ValidationError, match="timeout"):
            orchestrator.wait(["t"], timeout=timeout)
    with pytest.raises(ValidationError, match="limit"):
        orchestrator.list_tasks(limit=10**30)


def test_a_run_with_a_timeout_that_means_nothing_is_refused_and_not_stored(runtime: pepper.Runtime) -> None:
    pepper.agent("w", task_types=["ok"], runtime=runtime)(lambda task: 1)
    workflow = WorkflowController("timed", runtime)
    workflow.add_step("a", "ok")
    sequencer = TaskSequencer(runtime)
    sequence = sequencer.create_sequence([{"id": "a", "type": "ok"}])
    for timeout in (float("nan"), float("inf"), 0, -1, "10", True):
        with pytest.raises(ValidationError, match="timeout must be a finite number of seconds above 0"):
            workflow.run(timeout=timeout)
        with pytest.raises(ValidationError, match="timeout must be a finite number of seconds above 0"):
            sequencer.run_sequence(sequence, timeout=timeout)
    assert workflow.runs() == [] and runtime.store.count_by_state() == {}


def test_waiting_for_what_is_not_a_task_id_or_a_list_of_them_is_a_typed_error(runtime: pepper.Runtime) -> None:
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task(task_id="t", task_type="t")
    for ids in (None, 42, "", [""], ["t", None]):
        with pytest.raises(ValidationError, match="task id"):
            orchestrator.wait(ids, timeout=0.1)  # type: ignore[arg-type]
    assert runtime.store.count_by_state() == {"pending": 1}


def test_a_cancel_whose_reason_is_not_text_is_refused_and_cancels_nothing(runtime: pepper.Runtime) -> None:
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task(task_id="t", task_type="t")
    for reason in (5, b"bytes", ["why"]):
        with pytest.raises(ValidationError, match="reason"):
            orchestrator.cancel_task("t", reason=reason)  # type: ignore[arg-type]
    assert orchestrator.get_task_status("t").state.value == "pending"
    assert orchestrator.cancel_task("t", reason="no longer needed") is True
    assert orchestrator.get_task_status("t").reason == "no longer needed"


def test_monitors_and_histories_refuse_limits_metrics_and_ids_that_mean_nothing(runtime: pepper.Runtime) -> None:
    @pepper.agent("worker", task_types=["t"], runtime=runtime)
    def work(task: object) -> None:
        return None

    monitor, manager, handler = ResourceMonitor(runtime), ResourceManager(runtime), ErrorHandler(runtime)
    for limit in (0, -1, "10", 10**30, True):
        with pytest.raises(ValidationError, match="limit"):
            monitor.alerts(limit=limit)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="limit"):
            handler.get_error_history(limit=limit)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="limit"):
            handler.get_error_history(agent_id="worker", limit=limit)  # type: ignore[arg-type]
    for metrics in (5, None, ["cpu", "heat"]):
        with pytest.raises(ValidationError, match="metric"):
            monitor.get_usage("worker", metrics=metrics)
    for agent_id in (None, 5, ""):
        with pytest.raises(ValidationError, match="agent id"):
            manager.get_resource_usage(agent_id)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="agent id"):
            ResourceAllocator(runtime).allocations(agent_id or 5)  # type: ignore[arg-type]
    assert monitor.alerts(limit=1) == [] and handler.get_error_history(limit=1) == []
    assert set(monitor.get_usage("worker", metrics="cpu").measurements) == {"cpu"}


def test_an_exception_whose_message_cannot_be_read_still_ends_its_attempt(runtime: pepper.Runtime) -> None:
    class Unreadable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no message for you")

    @pepper.agent("w", task_types=["odd"], capacity=1, runtime=runtime)
    def work(task):
        if task.task_id == "first":
            raise Unreadable()
        return "ok"

    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "first", "type": "odd"}, {"id": "second", "type": "odd"}])
    first, second = orchestrator.wait(["first", "second"], timeout=30)
    assert first.state.value == "failed" and first.error.message == "Unreadable (its message could not be read)"
    assert second.result == "ok"


def test_progress_reports_are_checked_and_long_messages_cut(runtime: pepper.Runtime) -> None:
    @pepper.agent("w", task_types=["p"], capacity=2, runtime=runtime)
    def work(task):
        if task.task_id == "bad":
            task.report_progress(0.1, object())
        task.report_progress(0.5, "x" * 100_000)
        return "ok"

    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "bad", "type": "p"}, {"id": "long", "type": "p"}])
    bad, long = orchestrator.wait(["bad", "long"], timeout=30)
    assert bad.state.value == "failed" and bad.error.type == "ValidationError"
    assert long.state.value == "completed" and len(long.progress_message) == 1000


def test_every_listing_call_refuses_a_bad_limit_with_the_one_message(runtime: pepper.Runtime) -> None:
    calls = {
        "list_tasks": lambda limit: TaskOrchestrator(runtime).list_tasks(limit=limit),
        "get_error_history": lambda limit: ErrorHandler(runtime).get_error_history(limit=limit),
        "alerts": lambda limit: ResourceMonitor(runtime).alerts(limit=limit),
        "runs": lambda limit: WorkflowController("flow", runtime).runs(limit=limit),
    }
    for name, call in calls.items():
        for limit, shown in ((0, "0"), (-3, "-3"), (1_000_001, "1000001"), ("5", "'5'"), (2.0, "2.0")):
            with pytest.raises(ValidationError) as refused:
                call(limit)
            assert str(refused.value) == f"limit must be a whole number from 1 to 1000000, got {shown}", name
            assert refused.value.field == "limit"
        assert call(1_000_000) == [], name
