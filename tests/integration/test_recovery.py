"""Recovery end to end: policies on real agents and subprocesses, the error history, the dead-letter queue."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pepper
from pepper.agents import CommandAgent
from pepper.core import ErrorHandler, TaskOrchestrator, WorkflowController
from pepper.errors import AgentNotFoundError, ConflictError, TaskNotFoundError, TaskParkedError, ValidationError
from pepper.model.task import TaskState
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "r.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def flaky(runtime, agent_id, failures, types=("t",), **options):
    """An agent that raises on its first ``failures`` calls, then returns which call it was."""
    calls = []
    lock = threading.Lock()

    @pepper.agent(agent_id, task_types=list(types), runtime=runtime, **options)
    def run(task):
        with lock:
            calls.append(task.task_id)
            n = len(calls)
        if n <= failures:
            raise ConnectionError(f"call {n} failed")
        return {"call": n, "agent": agent_id}

    return calls


def test_an_agent_failing_twice_then_succeeding_completes_on_attempt_3_with_two_errors_recorded(virtual, clock):
    runtime = virtual
    flaky(runtime, "shaky", failures=2)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t", policy="retry(3, delay=10m)")
    for _ in range(2):  # each failed attempt arms its retry; the clock jumps to it
        clock.set(clock.wait_for_timer(earliest=1, latest=1800))
    status = orchestrator.wait("job", timeout=20)
    assert (status.state, status.attempts, status.result["call"]) == (TaskState.COMPLETED, 3, 3)

    history = ErrorHandler(runtime).get_error_history("job")
    assert [(e.attempt, e.error.type, e.action, e.agent_id) for e in history] == [
        (1, "ConnectionError", "retry", "shaky"), (2, "ConnectionError", "retry", "shaky")
    ]  # fmt: skip
    assert history[0].strategy == "retry(delay=600.0)" and history[0].detail.startswith("retry 1 of 3 in")
    assert "ConnectionError: call 1 failed" in history[0].error.traceback


def test_a_retry_delay_longer_than_max_delay_is_waited_in_full_and_its_reason_counts_the_policys_retries(
    virtual, clock
):
    calls = flaky(virtual, "shaky", failures=1)
    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("job", "t", policy="retry(2, delay=1h, jitter=0)")
    failed_at = clock.now()  # the virtual clock stands still until the test moves it
    (reason,) = eventually(lambda: orchestrator.get_task_status("job").waiting_on, "the retry's reason")
    assert reason.kind == "retry" and reason.message.startswith("retry 1 of 2 starts in 1h00m after ConnectionError")
    assert (reason.details["retry"], reason.details["retries"]) == (1, 2)
    due = orchestrator.get_task_status("job").next_attempt_at
    assert due is not None and due - failed_at == pytest.approx(3600.0)  # not cut to max_delay's default of 60 s
    clock.set(due - 1)
    assert orchestrator.get_task_status("job").state is TaskState.PENDING and calls == ["job"]
    clock.set(due)
    assert orchestrator.wait("job", timeout=20).state is TaskState.COMPLETED and calls == ["job", "job"]


class RegistryDown(ConnectionError):
    """An error of the agent's own, under the built-in ConnectionError and OSError."""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_retry_on_and_never_retry_take_the_classes_an_error_inherits_from(request, tmp_path, kind):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "r.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        _inherited_classes_count(runtime)


def _inherited_classes_count(runtime):
    calls = []

    @pepper.agent("registry", task_types=["t"], runtime=runtime)
    def fetch(task):
        calls.append(task.task_id)
        raise RegistryDown("registry down")

    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("on", "t", policy="retry(2, delay=0, retry_on=[OSError])")
    orchestrator.submit_task("never", "t", policy="retry(2, delay=0, never_retry=[ConnectionError]) -> dead_letter")
    orchestrator.submit_task("other", "t", policy="retry(2, delay=0, retry_on=[TimeoutError])")
    statuses = orchestrator.wait(["on", "never", "other"], timeout=30)
    assert [(s.task_id, s.state, s.attempts) for s in statuses] == [
        ("on", TaskState.FAILED, 3), ("never", TaskState.PARKED, 1), ("other", TaskState.FAILED, 1)
    ]  # fmt: skip
    assert sorted(calls) == ["never", "on", "on", "on", "other"]
    stored = orchestrator.get_task_status("on").error
    assert stored.type == "RegistryDown" and stored.names[:3] == ("RegistryDown", "ConnectionError", "OSError")
    # by hand: the classes of an exception given count as well
    handler = ErrorHandler(runtime)
    outcome = handler.handle_error_now("other", RegistryDown("still down"), "retry(1, delay=0, retry_on=[OSError])")
    assert outcome.action == "retry"


def test_reassign_moves_a_failing_task_to_the_other_agent(runtime):
    broken = flaky(runtime, "broken", failures=100)
    healthy = flaky(runtime, "healthy", failures=0)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t", agent="broken", policy="reassign -> dead_letter")
    status = orchestrator.wait("job", timeout=20)
    assert status.state is TaskState.COMPLETED and status.agent_id == "healthy"
    assert broken == ["job"] and healthy == ["job"]
    (error,) = ErrorHandler(runtime).get_error_history(agent_id="broken")
    assert (error.action, error.detail) == ("reassign", "moved to agent 'healthy' (failed on broken)")


def test_reassign_moves_a_task_to_an_agent_of_another_worker(runtime, tmp_path):
    (tmp_path / "steady.yaml").write_text(
        "agents:\n  - agent_id: steady\n    task_types: [t]\n    command: echo '\"done by steady\"'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    other = subprocess.Popen([sys.executable, "-m", "pepper", "worker", "--agents", str(tmp_path / "steady.yaml"),
                              "--db", runtime.settings.db, "-q"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not runtime.store.workers.agents() and time.monotonic() < deadline:
            time.sleep(0.05)
        broken = flaky(runtime, "broken", failures=100)  # the only agent here
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("job", "t", agent="broken", policy="reassign -> dead_letter")
        status = orchestrator.wait("job", timeout=30)
    finally:
        other.terminate()
        other.communicate(timeout=30)
    assert (status.state, status.agent_id, status.result) == (TaskState.COMPLETED, "steady", "done by steady")
    assert broken == ["job"]
    (error,) = ErrorHandler(runtime).get_error_history("job")
    assert (error.action, error.detail) == ("reassign", "moved to agent 'steady' (failed on broken)")


def test_a_command_agent_killed_with_sigkill_is_retried(runtime, tmp_path):
    marker = tmp_path / "killed-once"
    script = tmp_path / "work.py"
    script.write_text(
        "import os, pathlib, signal, sys\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.write_text('x')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "print('survived')\n"
    )
    runtime.register_agent(CommandAgent("cmd", f"{sys.executable} {script}", task_types=["t"]))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t", max_retries=1)
    status = orchestrator.wait("job", timeout=30)
    assert (status.state, status.attempts, status.result) == (TaskState.COMPLETED, 2, "survived")
    (error,) = ErrorHandler(runtime).get_error_history("job")
    assert error.error.kind == "crash" and "SIGKILL" in error.error.message and error.action == "retry"


def test_a_task_that_exhausts_its_policy_is_parked_and_replay_completes_it_once_fixed(virtual, clock):
    runtime = virtual
    fixed = threading.Event()

    @pepper.agent("fragile", task_types=["t"], runtime=runtime, recovery="retry(1, delay=10m) -> dead_letter")
    def fragile(task):
        if not fixed.is_set():
            raise RuntimeError("the service is down")
        return "done"

    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "job", "type": "t"}, {"id": "after", "type": "t", "dependencies": ["job"]}])
    handler = ErrorHandler(runtime)
    clock.set(clock.wait_for_timer(earliest=1, latest=1800))  # the one retry, ten minutes later
    assert orchestrator.wait("job", timeout=20).state is TaskState.PARKED  # wait() returns at parked
    (parked,) = handler.dead_letters()
    assert parked.task_id == "job" and parked.parked and parked.attempts == 2
    status = orchestrator.get_task_status("job")
    assert status.state is TaskState.PARKED and status.waiting_on[0].kind == "dead_letter"
    assert "pepper dlq replay job" in status.waiting_on[0].message
    assert orchestrator.get_task_status("after").state is TaskState.BLOCKED

    fixed.set()
    assert handler.replay("job") == ["job"]
    assert orchestrator.get_result("after", timeout=20) == "done"
    assert orchestrator.get_task_status("job").attempts == 3 and handler.dead_letters() == []
    assert [e.action for e in handler.get_error_history("job")] == ["retry", "dead_letter"]


def test_dropping_a_parked_task_fails_it_and_cancels_its_dependents(runtime):
    flaky(runtime, "never", failures=100, recovery="dead_letter")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "job", "type": "t"}, {"id": "after", "type": "t", "dependencies": ["job"]}])
    handler = ErrorHandler(runtime)
    assert orchestrator.wait("job", timeout=20).state is TaskState.PARKED  # wait() returns at parked
    (reason,) = orchestrator.get_task_status("after").waiting_on
    assert reason.message == "waiting for dependency 'job' (parked in the dead-letter queue: `pepper dlq`)"
    assert handler.drop("job", reason="not needed any more") is True
    assert orchestrator.get_task_status("job").state is TaskState.FAILED
    assert orchestrator.wait("after", timeout=10).state is TaskState.CANCELLED
    assert handler.drop("job") is False


def test_handle_error_applies_a_strategy_by_hand_and_refuses_what_cannot_be_handled(runtime):
    flaky(runtime, "agent", failures=1)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t")  # no retries: it fails
    assert orchestrator.wait("job", timeout=10).state is TaskState.FAILED
    handler = ErrorHandler(runtime)

    outcome = asyncio.run(handler.handle_error("job", ConnectionError("try once more"), "retry(1, delay=0)"))
    assert (outcome.action, outcome.state) == ("retry", "pending") or outcome.state == "in_progress"
    assert orchestrator.wait("job", timeout=10).state is TaskState.COMPLETED
    assert [e.error.message for e in handler.get_error_history("job")][-1] == "try once more"

    with pytest.raises(ConflictError, match="already completed"):
        handler.handle_error_now("job", "late", "retry")
    with pytest.raises(TaskNotFoundError):
        handler.handle_error_now("nope", "x", "retry")
    with pytest.raises(ValidationError, match="valid strategies: retry, reassign, fallback, skip, abort, dead_letter"):
        handler.handle_error_now("job", "x", "retyr")
    with pytest.raises(ValidationError, match="max_attempts must be a whole number from 0 to 1000"):
        handler.handle_error_now("job", "x", "retry(-3)")
    with pytest.raises(ValidationError, match="cannot be negative"):
        handler.handle_error_now("job", "x", "retry(3, delay=-1)")


def test_workflow_steps_skip_or_abort_by_their_policy(runtime):
    flaky(runtime, "broken", failures=100, types=("bad",))
    flaky(runtime, "ok", failures=0, types=("t",))
    skipping = WorkflowController("tolerant", runtime)
    skipping.add_step("optional", "bad", recovery="skip")
    skipping.add_step("after", "t", dependencies=["optional"])
    result = skipping.run(timeout=20)
    assert result.status == "completed" and result["optional"].status == "skipped"
    assert result["after"].status == "completed"

    aborting = WorkflowController("strict", runtime)
    aborting.add_step("slow", "t", inputs={})
    aborting.add_step("critical", "bad", recovery="retry(1, delay=10ms) -> abort")
    aborting.add_step("later", "t", dependencies=["critical"])
    result = aborting.run(timeout=20)
    assert result.status == "failed" and result["critical"].reason.startswith("aborted: ")
    assert [e.action for e in ErrorHandler(runtime).get_error_history(run_id=result.run_id)] == ["retry", "abort"]


def test_an_error_reported_on_a_task_waiting_for_its_dependency_is_recorded_and_it_keeps_waiting(runtime):
    calls = flaky(runtime, "agent", failures=0)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t", dependencies=["first"])
    handler = ErrorHandler(runtime)

    outcome = handler.handle_error_now("job", TimeoutError("the docs service did not answer"), "retry")
    assert (outcome.action, outcome.state, outcome.next_attempt_at) == ("retry", "blocked", None)
    (error,) = handler.get_error_history("job")
    assert (error.error.type, error.strategy, error.action) == ("TimeoutError", "retry", "retry")
    assert error.detail.startswith("not retried, though counted as retry 1 of ")
    assert "it has not run yet, so it keeps waiting for its dependencies" in error.detail
    assert outcome.message == error.detail  # what it returns is what it recorded
    assert orchestrator.get_task_status("job").state is TaskState.BLOCKED

    orchestrator.submit_task("first", "t")
    assert orchestrator.wait("job", timeout=20).state is TaskState.COMPLETED
    assert sorted(calls) == ["first", "job"]  # each ran once


@pytest.mark.parametrize("here", ["engine", "store"])
def test_a_dead_letter_of_a_task_waiting_for_its_dependency_is_refused_and_changes_nothing(runtime, tmp_path, here):
    calls = flaky(runtime, "agent", failures=0)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t", dependencies=["first"])
    # the engine of the process with the agent decides, or (no agent, no engine) the store's rows directly
    offline = pepper.Runtime(db=str(tmp_path / "r.db"), home=str(tmp_path / "home"), **FAST)
    handler = ErrorHandler(runtime if here == "engine" else offline)
    try:
        for policy in ("dead_letter", "retry(1) -> dead_letter"):
            if policy != "dead_letter":
                assert handler.handle_error_now("job", "stuck", policy).action == "retry"
            with pytest.raises(ConflictError, match=r"'job' has not run yet: it waits for its dependencies"):
                handler.handle_error_now("job", "stuck", policy)
        assert [e.action for e in handler.get_error_history("job")] == ["retry"]  # the refusals recorded nothing
        assert handler.dead_letters() == [] and orchestrator.get_task_status("job").state is TaskState.BLOCKED
    finally:
        offline.close()
    orchestrator.submit_task("first", "t")
    assert orchestrator.wait("job", timeout=20).state is TaskState.COMPLETED
    assert sorted(calls) == ["first", "job"]  # each ran once


def test_an_error_reported_on_a_running_task_ends_its_attempt_and_the_strategy_decides(runtime):
    started, release = threading.Event(), threading.Event()
    attempts = []

    @pepper.agent("slow", task_types=["t"], runtime=runtime)
    def slow(task):
        attempts.append(task.attempt)
        if task.attempt == 1:
            started.set()
            release.wait(30)
            return "first attempt, too late"
        return "second attempt"

    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t")
    assert started.wait(20)
    handler = ErrorHandler(runtime)
    outcome = handler.handle_error_now("job", "it stopped making progress", "retry(1, delay=0)")
    assert outcome.action == "retry"
    try:
        # The first call still runs on its thread and keeps the agent's only slot: the retry waits for it.
        waiting = orchestrator.get_task_status("job")
        assert waiting.state is TaskState.PENDING and attempts == [1]
        assert any("held by calls that outlived their attempt" in w.message for w in waiting.waiting_on)
    finally:
        release.set()
    assert orchestrator.get_result("job", timeout=20) == "second attempt"
    status = orchestrator.get_task_status("job")
    assert (status.attempts, attempts) == (2, [1, 2])
    (error,) = handler.get_error_history("job")
    assert (error.attempt, error.error.message, error.action) == (1, "it stopped making progress", "retry")


def test_waiting_for_a_parked_task_returns_and_its_state_says_parked(runtime):
    flaky(runtime, "never", failures=100, recovery="dead_letter")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t")
    # parked waits for a person: wait() returns rather than running out of time
    assert orchestrator.wait("job", timeout=60).state is TaskState.PARKED
    assert [s.task_id for s in orchestrator.list_tasks(state="parked")] == ["job"]
    with pytest.raises(TaskParkedError, match="parked in the dead-letter queue"):
        orchestrator.get_result("job", timeout=10)
    assert [s.task_id for s in ErrorHandler(runtime).dead_letters()] == ["job"]


def test_a_fallback_by_hand_to_an_agent_that_cannot_take_the_task_is_refused_and_changes_nothing(runtime):
    pepper.agent("writer", task_types=["docs"], runtime=runtime)(lambda task: "text")
    pepper.agent("w", task_types=["x"], runtime=runtime)(lambda task: 1)
    orchestrator, handler = TaskOrchestrator(runtime), ErrorHandler(runtime)
    orchestrator.submit_task("p", "nobody_takes_this")
    orchestrator.submit_task("child", "x", dependencies=["p"])
    with pytest.raises(
        AgentNotFoundError, match=r"'documentaton_agent' \(registered: w, writer\).*Nothing was changed"
    ):
        handler.handle_error_now("p", "operator note", "fallback(documentaton_agent)")
    with pytest.raises(ValidationError, match="agent 'writer' cannot take task 'p': it does not accept task type"):
        handler.handle_error_now("p", "operator note", "retry(1) -> fallback(agent=writer)")
    assert orchestrator.get_task_status("p").state is TaskState.PENDING
    assert orchestrator.get_task_status("child").state is TaskState.BLOCKED
    assert handler.get_error_history("p") == []


def test_replay_on_an_agent_that_cannot_take_the_task_is_refused_and_it_stays_replayable(runtime):
    fixed = threading.Event()

    @pepper.agent("builder", task_types=["t"], skills=["docker"], runtime=runtime, recovery="dead_letter")
    def build(task):
        if not fixed.is_set():
            raise RuntimeError("the registry is down")
        return "built"

    pepper.agent("writer", task_types=["docs"], runtime=runtime)(lambda task: "text")
    pepper.agent("no_docker", task_types=["t"], runtime=runtime)(lambda task: "wrong place")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "t", requirements={"skills": ["docker"]})
    assert orchestrator.wait("job", timeout=20).state is TaskState.PARKED
    handler = ErrorHandler(runtime)

    with pytest.raises(ValidationError, match="agent 'writer' cannot take task 'job': it does not accept task type"):
        handler.replay("job", agent="writer")
    with pytest.raises(ValidationError, match="it lacks skill docker; agents that can: builder"):
        handler.replay("job", agent="no_docker")
    with pytest.raises(AgentNotFoundError):
        handler.replay(all=True, agent="nobody")
    assert orchestrator.get_task_status("job").state is TaskState.PARKED  # nothing changed

    fixed.set()
    assert handler.replay("job", agent="builder") == ["job"]
    assert orchestrator.get_result("job", timeout=20) == "built"


def test_a_database_with_parked_tasks_from_before_parked_was_a_state_is_migrated(tmp_path):
    import sqlite3

    from pepper.store.connection import migrations
    from pepper.store.sqlite import SQLiteStore

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for version, _name, sql in migrations():
        if version <= 6:  # the schema as it was: a parked task was stored pending, with parked_at set
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    columns = "task_id, task_type, priority, dependencies, inputs, requirements, max_retries, metadata, created_at"
    values = "?, 't', 10, '[]', '{}', '{}', 0, '{}', 1.0, ?, ?, 1"
    insert = f"INSERT INTO tasks ({columns}, state, parked_at, change_seq) VALUES ({values})"
    for row in (("parked", "pending", 5.0), ("ready", "pending", None), ("done", "completed", None)):
        conn.execute(insert, row)
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    try:
        records = store.get_tasks(["parked", "ready", "done"])
        states = {tid: r.state for tid, r in records.items()}
        assert states == {"parked": TaskState.PARKED, "ready": TaskState.PENDING, "done": TaskState.COMPLETED}
        assert records["parked"].parked_at == 5.0
        assert [r.task.task_id for r in store.errors.parked()] == ["parked"] == store.errors.parked_ids()
    finally:
        store.close()
