"""Delayed tasks: held back until their time on the engine's clock, durable, explained by ``why``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.errors import InvalidDelayError
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.support import eventually


def _echo(runtime: pepper.Runtime, started: list[float], clock: ManualClock) -> None:
    def run(task):
        started.append(clock.now())
        return task.task_id

    pepper.agent("echo", task_types=["echo"], runtime=runtime)(run)


def test_a_delayed_task_starts_at_its_time_and_not_before(virtual, clock):
    started: list[float] = []
    _echo(virtual, started, clock)
    orchestrator = TaskOrchestrator(virtual)
    submitted = clock.now()
    task = orchestrator.submit_task("later", "echo", delay="30s")
    assert task.not_before == pytest.approx(submitted + 30)
    status = orchestrator.get_task_status("later")
    assert status.state is TaskState.PENDING
    assert [w.kind for w in status.waiting_on] == ["delay"]
    assert status.waiting_on[0].message == "delayed until 2023-11-14T22:13:50Z (in 30.0s)"
    assert status.waiting_on[0].details["not_before"] == pytest.approx(submitted + 30)
    clock.advance(29)
    assert orchestrator.get_task_status("later").state is TaskState.PENDING
    assert started == []
    clock.advance(1)
    assert orchestrator.wait("later", timeout=30).state is TaskState.COMPLETED
    assert started == [pytest.approx(submitted + 30)]


def test_the_engine_arms_one_timer_at_the_time_instead_of_polling(virtual, clock):
    started: list[float] = []
    _echo(virtual, started, clock)
    orchestrator = TaskOrchestrator(virtual)
    at = datetime.fromtimestamp(clock.now(), UTC) + timedelta(minutes=10)
    orchestrator.submit_task("fixed", "echo", not_before=at)
    orchestrator.submit_task("seconds", "echo", delay=timedelta(minutes=5))
    # one timer at each task's time, nothing in between: the engine sleeps until then
    now = clock.now()
    assert clock.wait_for_timer(299, 301) == pytest.approx(now + 300)
    assert clock.wait_for_timer(599, 601) == pytest.approx(now + 600)
    clock.advance(300)
    assert orchestrator.wait("seconds", timeout=30).state is TaskState.COMPLETED
    assert orchestrator.get_task_status("fixed").state is TaskState.PENDING
    clock.set(at.timestamp())
    assert orchestrator.wait("fixed", timeout=30).state is TaskState.COMPLETED
    assert started == [pytest.approx(at.timestamp() - 300), pytest.approx(at.timestamp())]


def test_a_delayed_task_with_dependencies_waits_for_both(virtual, clock):
    started: list[float] = []
    _echo(virtual, started, clock)
    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("first", "echo", delay="1m")
    orchestrator.submit_task("second", "echo", dependencies=["first"], delay="10s")
    waiting = orchestrator.get_task_status("second").waiting_on
    assert [w.kind for w in waiting] == ["dependency", "delay"]
    clock.advance(60)
    assert orchestrator.wait("second", timeout=30).state is TaskState.COMPLETED
    assert started[1] == pytest.approx(started[0])  # its own time had passed when "first" completed


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"delay": -5}, "negative"),
        ({"delay": "-5s"}, "negative"),
        ({"delay": "soon"}, "not a duration"),
        ({"delay": timedelta(seconds=-1)}, "negative"),
        ({"delay": "5s", "not_before": "2030-01-01T00:00:00Z"}, "not both"),
        ({"not_before": datetime(2030, 1, 1)}, "no time zone"),
        ({"not_before": "2030-01-01T00:00:00"}, "no time zone"),
        ({"not_before": "tomorrow"}, "not a time"),
        ({"not_before": 1e300}, "later than 9999-12-31T23:59:59Z"),
        ({"not_before": 253402300800.0}, "later than 9999-12-31T23:59:59Z"),
        ({"not_before": "9999-12-31T23:00:00-05:00"}, "later than 9999-12-31T23:59:59Z"),
    ],
)
def test_a_bad_delay_is_refused_and_stores_nothing(virtual, fields, match):
    orchestrator = TaskOrchestrator(virtual)
    with pytest.raises(InvalidDelayError, match=match):
        orchestrator.submit_task("bad", "echo", **fields)
    assert orchestrator.list_tasks() == []


def test_the_latest_time_is_taken_and_shown(virtual):
    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("last", "echo", not_before="9999-12-31T23:59:59Z")
    status = orchestrator.get_task_status("last")
    assert status.not_before == 253402300799.0
    assert "delayed until 9999-12-31T23:59:59Z" in status.waiting_on[0].message


def test_a_stored_time_past_year_9999_is_still_shown(tmp_path):
    db, home = str(tmp_path / "d.db"), str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home) as first:
        TaskOrchestrator(first).submit_task("far", "echo", delay="1h")
    with sqlite3.connect(db) as raw:  # a row an older version took before times were bounded
        raw.execute("UPDATE tasks SET not_before = 1e300 WHERE task_id = 'far'")
    with pepper.Runtime(db=db, home=home) as second:
        status = TaskOrchestrator(second).get_task_status("far")
    assert status.state is TaskState.PENDING and status.not_before == 1e300
    assert "delayed until 1e+300 seconds since the epoch" in status.waiting_on[0].message


def test_a_delay_survives_a_restart_of_the_runtime(tmp_path):
    db, home = str(tmp_path / "d.db"), str(tmp_path / "home")
    clock = ManualClock(1_700_000_000.0)
    with pepper.Runtime(db=db, home=home, clock=clock) as first:
        TaskOrchestrator(first).submit_task("durable", "echo", delay="1h")
    started: list[float] = []
    with pepper.Runtime(db=db, home=home, clock=clock) as second:
        _echo(second, started, clock)
        orchestrator = TaskOrchestrator(second)
        status = orchestrator.get_task_status("durable")
        assert status.not_before == pytest.approx(1_700_003_600.0)
        assert [w.kind for w in status.waiting_on] == ["delay"]
        clock.advance(3599)
        assert orchestrator.get_task_status("durable").state is TaskState.PENDING
        clock.advance(1)
        assert orchestrator.wait("durable", timeout=30).state is TaskState.COMPLETED
        eventually(lambda: started, "the delayed task to run")
    assert started == [pytest.approx(1_700_003_600.0)]


def test_a_workflow_steps_delay_counts_from_the_start_of_its_run(virtual, clock, tmp_path):
    from pepper.core import WorkflowController, load_workflow

    started: list[float] = []
    _echo(virtual, started, clock)
    path = tmp_path / "flow.yaml"
    path.write_text(
        "name: nightly\nsteps:\n  - id: fetch\n    type: echo\n  - id: report\n    type: echo\n"
        "    needs: [fetch]\n    delay: 10m\n"
    )
    flow = load_workflow(path, virtual)
    assert isinstance(flow, WorkflowController) and flow.spec.by_id["report"].delay == 600
    began = clock.now()
    run_id = flow.start()
    eventually(lambda: len(started) == 1, "the first step to run")
    report = TaskOrchestrator(virtual).get_task_status(f"{run_id}/report")
    assert report.not_before == pytest.approx(began + 600)
    eventually(lambda: [w.kind for w in TaskOrchestrator(virtual).get_task_status(f"{run_id}/report").waiting_on]
               == ["delay"], "the report step to wait for its time")  # fmt: skip
    clock.advance(600)
    assert flow.wait(run_id, timeout=30).status.value == "completed"
    assert started == [pytest.approx(began), pytest.approx(began + 600)]


def test_a_bad_step_delay_names_its_line(tmp_path):
    from pepper.errors import WorkflowDefinitionError
    from pepper.workflow_file import parse_workflow_file

    path = tmp_path / "flow.yaml"
    path.write_text("name: bad\nsteps:\n  - id: a\n    type: echo\n    delay: -1m\n")
    with pytest.raises(WorkflowDefinitionError, match="negative") as caught:
        parse_workflow_file(path)
    assert caught.value.line == 5


def test_the_planner_starts_a_delayed_task_at_its_time_and_counts_it_in_the_bound(runtime):
    tasks = [
        {"id": "a", "type": "t", "duration": 5},
        {"id": "b", "type": "t", "duration": 5, "delay": "20s"},
        {"id": "c", "type": "t", "duration": 5, "needs": ["b"]},
    ]
    plan = pepper.plan(tasks, [{"agent_id": "x", "task_types": ["t"], "capacity": 2}], runtime=runtime)
    starts = {s.task_id: s.start for s in plan.schedule}
    assert starts == {"a": 0.0, "b": 20.0, "c": 25.0}
    assert plan.makespan == pytest.approx(30.0)
    assert plan.critical_path_length == pytest.approx(30.0) and plan.critical_path == ("b", "c")


def test_a_delayed_task_this_runtimes_agents_could_run_is_work_left_however_long_the_delay(virtual, clock):
    started: list[float] = []
    _echo(virtual, started, clock)
    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("elsewhere", "translate", delay="1m")  # no agent here runs it
    orchestrator.submit_task("after-elsewhere", "echo", dependencies=["elsewhere"], delay="1m")
    virtual.start()
    eventually(lambda: [w.kind for w in orchestrator.get_task_status("after-elsewhere").waiting_on]
               == ["dependency", "delay"], "the engine to read the waiting tasks")  # fmt: skip
    assert not virtual.has_work()  # what waits for a task no agent here runs is not work for this runtime
    submitted = clock.now()
    orchestrator.submit_task("later", "echo", delay="1d")
    assert virtual.has_work()
    clock.advance(86_399)
    assert virtual.has_work() and started == []
    clock.advance(1)
    assert orchestrator.wait("later", timeout=30).state is TaskState.COMPLETED
    eventually(lambda: not virtual.has_work(), "the runtime to be idle once the delayed task ran")
    assert started == [pytest.approx(submitted + 86_400)]
