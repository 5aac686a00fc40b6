"""The engine through the public API: real SQLite file, real threads, real timers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.errors import (
    BlockingCallError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from pepper.model.task import TaskState


def rows(runtime: pepper.Runtime, sql: str, *params):
    conn = sqlite3.connect(runtime.settings.db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_sync_async_and_class_agents_run_and_pass_results_along(runtime, orchestrator):
    @pepper.agent("writer", task_types=["write"], runtime=runtime)
    def write(task):
        return {"text": task.inputs["text"].upper()}

    @pepper.agent("counter", task_types=["count"], runtime=runtime)
    async def count(task):
        await asyncio.sleep(0)
        return sum(len(r["text"]) for r in task.dependency_results.values())

    class Reviewer(pepper.BaseAgent):
        task_types = ["review"]

        async def execute(self, task):
            return {"approved": task.dependency_results["count"] > 3, "attempt": task.attempt}

    runtime.register_agent(Reviewer("reviewer"))
    orchestrator.submit_tasks(
        [
            {"id": "review", "type": "review", "dependencies": ["count"]},
            {"id": "count", "type": "count", "dependencies": ["w1", "w2"]},
            {"id": "w1", "type": "write", "inputs": {"text": "ab"}},
            {"id": "w2", "type": "write", "inputs": {"text": "cde"}},
        ]
    )
    assert orchestrator.get_result("review", timeout=10) == {"approved": True, "attempt": 1}
    status = orchestrator.get_task_status("count")
    assert (status.state, status.result, status.agent_id, status.attempts) == (TaskState.COMPLETED, 5, "counter", 1)
    assert status.started_at <= status.finished_at
    assert runtime.get_agent("writer").get_metrics().tasks_completed == 2


def test_a_failing_agent_fails_its_task_with_the_error_and_cancels_dependents(runtime, orchestrator):
    @pepper.agent("broken", task_types=["t"], runtime=runtime)
    def broken(task):
        raise ValueError("the input file is missing")

    orchestrator.submit_task("bad", "t")
    orchestrator.submit_task("after", "t", dependencies=["bad"])
    with pytest.raises(TaskFailedError) as caught:
        orchestrator.get_result("bad", timeout=10)
    assert caught.value.error.type == "ValueError" and "input file is missing" in caught.value.error.message
    assert "Traceback" in caught.value.error.traceback
    with pytest.raises(TaskCancelledError, match="dependency 'bad' failed"):
        orchestrator.get_result("after", timeout=10)


def test_retries_run_again_after_a_backoff_and_keep_the_history(virtual, clock):
    calls = []

    @pepper.agent("flaky", task_types=["t"], runtime=virtual)
    def flaky(task):
        calls.append(clock.now())
        if task.attempt < 3:
            raise ConnectionError(f"attempt {task.attempt} lost the connection")
        return "ok"

    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("t", "t", max_retries=2)
    for _ in range(2):  # Given an attempt that failed, when the clock reaches its retry, the task runs again
        clock.set(clock.wait_for_timer(earliest=1, latest=1800))
    assert orchestrator.get_result("t", timeout=10) == "ok"
    assert orchestrator.get_task_status("t").attempts == 3
    history = virtual.store.attempts("t")
    assert [(h["attempt"], h["outcome"]) for h in history] == [(1, "retry"), (2, "retry")]
    assert "lost the connection" in history[0]["error"]
    assert calls[2] - calls[1] > calls[1] - calls[0] > 0  # the delay grows


def test_a_task_longer_than_its_timeout_fails_as_a_timeout(virtual, clock):
    started = {"a": threading.Event(), "s": threading.Event()}
    never = threading.Event()

    @pepper.agent("slow", task_types=["async"], runtime=virtual)
    async def slow(task):
        started["a"].set()
        await asyncio.sleep(30)

    @pepper.agent("slow-sync", task_types=["sync"], runtime=virtual)
    def slow_sync(task):
        started["s"].set()
        while not task.cancelled:  # a cooperative sync agent notices the timeout
            never.wait(0.01)
        return "stopped"

    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("a", "async", timeout=300)
    orchestrator.submit_task("s", "sync", timeout=300)
    assert all(event.wait(30) for event in started.values())
    clock.advance(299)  # Given both running just short of their timeout, nothing has ended yet
    assert {orchestrator.get_task_status(t).state for t in ("a", "s")} == {TaskState.IN_PROGRESS}
    clock.advance(1)  # When the clock reaches it, both fail as timeouts
    for task_id in ("a", "s"):
        status = orchestrator.wait(task_id, timeout=30)
        assert status.state is TaskState.FAILED and status.error.kind == "timeout"
        assert "timeout of 300s" in status.error.message


def test_cancelling_a_running_task_stops_it_and_its_dependents(runtime, orchestrator):
    started = threading.Event()

    @pepper.agent("long", task_types=["t"], runtime=runtime)
    async def long(task):
        started.set()
        await asyncio.sleep(30)

    orchestrator.submit_task("running", "t")
    orchestrator.submit_task("next", "t", dependencies=["running"])
    assert started.wait(10)
    assert orchestrator.cancel_task("running", reason="no longer needed") is True
    assert orchestrator.get_task_status("running").reason == "no longer needed"
    assert orchestrator.get_task_status("next").state is TaskState.CANCELLED
    assert orchestrator.cancel_task("running") is False  # already finished


def test_capacity_limits_concurrency_and_priority_orders_the_queue(runtime, orchestrator):
    running, peak, lock = [0], [0], threading.Lock()

    @pepper.agent("pair", task_types=["t"], capacity=2, runtime=runtime)
    def pair(task):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    gate = threading.Event()

    @pepper.agent("single", task_types=["ordered"], runtime=runtime)
    def single(task):
        gate.wait(10)

    orchestrator.submit_tasks([{"id": f"c{i}", "type": "t"} for i in range(8)])
    orchestrator.submit_task("blocker", "ordered")
    orchestrator.submit_tasks(
        [
            {"id": "low", "type": "ordered", "priority": "low"},
            {"id": "normal", "type": "ordered"},
            {"id": "critical", "type": "ordered", "priority": "critical"},
        ]
    )
    status = orchestrator.get_task_status("low")
    assert [r.kind for r in status.waiting_on] == ["capacity", "queue"]
    assert "2 tasks of higher or equal priority ahead" in status.waiting_on[1].message
    gate.set()
    done = orchestrator.wait([f"c{i}" for i in range(8)] + ["low", "normal", "critical"], timeout=20)
    assert peak[0] == 2
    by_id = {s.task_id: s for s in done}
    assert by_id["critical"].started_at <= by_id["normal"].started_at <= by_id["low"].started_at


def test_waiting_reasons_for_tasks_nobody_can_run(runtime, orchestrator):
    orchestrator.submit_task("needs-agent", "translation")
    orchestrator.submit_task("pinned", "translation", agent="translator-7")
    orchestrator.submit_task("needs-dep", "translation", dependencies=["not-yet"])
    assert orchestrator.get_task_status("needs-agent").waiting_on[0].kind == "no_agent"
    assert "pinned agent 'translator-7' is not registered" in str(orchestrator.get_task_status("pinned").waiting_on[0])
    blocked = orchestrator.get_task_status("needs-dep")
    assert blocked.state is TaskState.BLOCKED
    assert str(blocked.waiting_on[0]) == "dependency 'not-yet' has not been submitted yet"


def test_wait_times_out_with_the_tasks_still_open(orchestrator):
    orchestrator.submit_task("never", "nobody-runs-this")
    with pytest.raises(WaitTimeoutError) as caught:
        orchestrator.wait(["never"], timeout=0.1)
    assert caught.value.pending == ("never",)
    with pytest.raises(TaskNotFoundError):
        orchestrator.wait("missing", timeout=1)


def test_agents_that_crash_hard_or_return_junk_never_take_the_engine_down(runtime, orchestrator):
    @pepper.agent("exits", task_types=["exit"], runtime=runtime)
    async def exits(task):
        raise SystemExit(3)

    @pepper.agent("junk", task_types=["junk"], runtime=runtime)
    def junk(task):
        return {"handle": object()}

    @pepper.agent("nested", task_types=["nested"], runtime=runtime)
    async def nested(task):
        return TaskOrchestrator(runtime).get_task_status("exit")  # blocking call on the engine loop

    @pepper.agent("fine", task_types=["fine"], runtime=runtime)
    def fine(task):
        return "still here"

    for kind in ("exit", "junk", "nested"):
        orchestrator.submit_task(kind, kind)
    assert orchestrator.wait("exit", timeout=10).error.type == "SystemExit"
    assert orchestrator.wait("junk", timeout=10).error.type == "NotSerializableError"
    assert orchestrator.wait("nested", timeout=10).error.type == BlockingCallError.__name__
    orchestrator.submit_task("fine", "fine")
    assert orchestrator.get_result("fine", timeout=10) == "still here"


def test_progress_reports_show_in_the_status(runtime, orchestrator):
    release = threading.Event()

    @pepper.agent("steps", task_types=["t"], runtime=runtime)
    def steps(task):
        task.report_progress(0.5, "half way")
        release.wait(10)

    orchestrator.submit_task("t", "t")
    deadline = time.monotonic() + 10
    while orchestrator.get_task_status("t").progress != 0.5 and time.monotonic() < deadline:
        time.sleep(0.01)
    status = orchestrator.get_task_status("t")
    release.set()
    assert (status.progress, status.progress_message) == (0.5, "half way")


def test_the_runtime_keeps_working_across_many_asyncio_run_calls(runtime, orchestrator):
    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    async def echo(task):
        return task.inputs["n"]

    async def one(n):
        await orchestrator.submit_task_async(f"t{n}", "echo", inputs={"n": n})
        return await orchestrator.get_result_async(f"t{n}", timeout=10)

    assert [asyncio.run(one(n)) for n in range(3)] == [0, 1, 2]


def test_state_survives_a_restart_and_pending_work_runs_after_it(tmp_path):
    db = str(tmp_path / "state.db")
    with pepper.Runtime(db=db, home=str(tmp_path)) as first:
        TaskOrchestrator(first).submit_task("later", "echo", inputs={"v": 1})
    with pepper.Runtime(db=db, home=str(tmp_path)) as second:
        pepper.agent("echo", task_types=["echo"], runtime=second)(lambda task: task.inputs["v"] + 1)
        assert TaskOrchestrator(second).get_result("later", timeout=10) == 2
    with pepper.Runtime(db=db, home=str(tmp_path)) as third:
        assert TaskOrchestrator(third).get_task_status("later").result == 2


def test_a_worker_process_picks_up_tasks_another_runtime_stored(tmp_path):
    db = str(tmp_path / "shared.db")
    fast = {"poll_interval": "20ms"}
    with pepper.Runtime(db=db, home=str(tmp_path), **fast) as worker, pepper.Runtime(db=db, **fast) as client:
        pepper.agent("echo", task_types=["echo"], runtime=worker)(lambda task: task.inputs)
        worker.start()
        submitter = TaskOrchestrator(client)  # no agents here: writes straight to the database
        submitter.submit_task("from-cli", "echo", inputs={"x": 1})
        assert submitter.wait("from-cli", timeout=10).result == {"x": 1}
        assert [a.spec.agent_id for a in client.store.workers.agents()] == ["echo"]
        submitter.submit_task("cancel-me", "nobody")
        assert submitter.cancel_task("cancel-me") is True
        assert TaskOrchestrator(worker).wait("cancel-me", timeout=10).state is TaskState.CANCELLED


def test_bad_input_changes_nothing_in_the_database(runtime, orchestrator):
    orchestrator.submit_task("base", "t", inputs={"n": 1})
    before = rows(runtime, "SELECT task_id, version FROM tasks ORDER BY task_id")
    bad_calls = [
        lambda: orchestrator.submit_task("x", "t", priority="urgent"),
        lambda: orchestrator.submit_tasks(
            [{"id": "c1", "type": "t", "dependencies": ["c2"]}, {"id": "c2", "type": "t", "dependencies": ["c1"]}]
        ),
        lambda: orchestrator.submit_task("base", "t", inputs={"n": 2}),
        lambda: orchestrator.submit_task("y", "t", inputs={"bad": {1, 2}}),
        lambda: orchestrator.submit_task("z", "t", timeout=-1),
        lambda: orchestrator.submit_tasks([{"id": "fine", "type": "t"}, {"id": "fine2", "type": "t", "timeout": -5}]),
    ]
    for call in bad_calls:
        with pytest.raises(pepper.PepperError):
            call()
    assert rows(runtime, "SELECT task_id, version FROM tasks ORDER BY task_id") == before
    assert orchestrator.submit_task("base", "t", inputs={"n": 1}).inputs == {"n": 1}  # same spec: idempotent
