"""``pepper.connect``: the public faces over a real server, as they work over a local runtime."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import pepper
from pepper.core import ErrorHandler, HealthMonitor, PerformanceMonitor, TaskOrchestrator, WorkflowController
from pepper.core.runtime import reset_default_runtime
from pepper.errors import (
    AuthenticationError,
    DuplicateTaskError,
    ForbiddenWorkflowError,
    RemoteUnsupportedError,
    RunNotFoundError,
    ScopeError,
    ServerUnreachableError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from pepper.http.remote import RemoteRuntime
from pepper.model.task import TaskState
from pepper.model.workflow_run import RunState
from tests.http.conftest import PATIENCE, Api


@pytest.fixture
def remote(api: Api) -> Iterator[RemoteRuntime]:
    runtime = pepper.connect(api.url, token=api.tokens["write"])
    assert isinstance(runtime, RemoteRuntime)
    try:
        yield runtime
    finally:
        runtime.close()


def test_the_seed_task_orchestrator_snippet_runs_unchanged_against_a_server(api: Api) -> None:
    pepper.connect(api.url, token=api.tokens["write"], default=True)
    try:
        # the seed's snippet, as written there
        from pepper.core import TaskOrchestrator

        # Initialize orchestrator
        orchestrator = TaskOrchestrator()

        # Submit task for orchestration
        task = orchestrator.submit_task(
            task_id="task_123", task_type="documentation", priority="high", dependencies=["task_122"]
        )

        # Get task status
        status = orchestrator.get_task_status("task_123")
    finally:
        reset_default_runtime()
    assert task.task_id == "task_123"
    assert status.state is TaskState.BLOCKED
    assert any(reason.subject == "task_122" for reason in status.waiting_on)
    # the task is on the server, where its own runtime sees it
    assert api.runtime.store.get_tasks(["task_123"])


def test_tasks_are_submitted_waited_for_listed_and_cancelled_over_http(api: Api, remote: RemoteRuntime) -> None:
    orchestrator = TaskOrchestrator(runtime=remote)
    orchestrator.submit_task("remote/echo-1", "echo", inputs={"n": 1})  # an id with a slash, as run steps have
    assert orchestrator.get_result("remote/echo-1", timeout=PATIENCE) == {"n": 1}
    ids = [t.task_id for t in orchestrator.list_tasks(task_type="echo")]
    assert "remote/echo-1" in ids
    orchestrator.submit_tasks([{"id": "remote/gated-1", "type": "gated"}, {"id": "remote/after", "type": "echo",
                                                                          "needs": ["remote/gated-1"]}])  # fmt: skip
    with pytest.raises(WaitTimeoutError):
        orchestrator.wait("remote/gated-1", timeout=0.2)
    assert orchestrator.cancel_task("remote/after", reason="not needed")
    assert orchestrator.get_task_status("remote/after").state is TaskState.CANCELLED
    feedback = orchestrator.add_feedback("remote/echo-1", 5, "fine")
    assert feedback.rating == 5 and feedback.agent_id == "echo"


def test_server_errors_come_back_as_the_same_pepper_errors(api: Api, remote: RemoteRuntime) -> None:
    orchestrator = TaskOrchestrator(runtime=remote)
    with pytest.raises(TaskNotFoundError, match="no-such-task"):
        orchestrator.get_task_status("no-such-task")
    orchestrator.submit_task("remote/dup", "echo", inputs={"a": 1})
    with pytest.raises(DuplicateTaskError) as raised:
        orchestrator.submit_task("remote/dup", "echo", inputs={"a": 2})
    assert raised.value.field == "task_id"
    with pytest.raises(RunNotFoundError):
        WorkflowController(runtime=remote).status("no-such-run")


def test_a_read_token_reads_but_cannot_submit_and_a_bad_one_is_refused(api: Api) -> None:
    with pepper.connect(api.url, token=api.tokens["read"]) as reader:
        orchestrator = TaskOrchestrator(runtime=reader)
        orchestrator.list_tasks(limit=1)
        with pytest.raises(ScopeError, match="write"):
            orchestrator.submit_task("remote/refused", "echo")
    assert not api.runtime.store.get_tasks(["remote/refused"])
    with pepper.connect(api.url, token="pepper_not-a-token") as stranger, pytest.raises(AuthenticationError):
        TaskOrchestrator(runtime=stranger).list_tasks(limit=1)


def test_a_server_that_does_not_answer_is_a_typed_error_naming_it_never_the_token() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = pepper.connect(f"http://127.0.0.1:{port}", token="pepper_secret-value")
    with nowhere, pytest.raises(ServerUnreachableError) as raised:
        TaskOrchestrator(runtime=nowhere).get_task_status("x")
    assert f"127.0.0.1:{port}" in str(raised.value) and "secret-value" not in str(raised.value)
    assert "secret-value" not in repr(nowhere)


def test_a_workflow_started_remotely_runs_to_its_end(remote: RemoteRuntime) -> None:
    workflow = WorkflowController("remote-pipeline", runtime=remote)
    workflow.add_step(step_id="first", task_type="echo", inputs={"stage": 1})
    workflow.add_step(step_id="second", task_type="echo", dependencies=["first"], inputs={"stage": 2})
    result = workflow.run(timeout=PATIENCE)
    assert result.status is RunState.COMPLETED
    assert result.results == {"first": {"stage": 1}, "second": {"stage": 2}}
    assert workflow.status().status is RunState.COMPLETED
    assert [r.run_id for r in workflow.runs()] == [result.run_id]


def test_the_runs_of_one_workflow_are_asked_of_the_server_by_its_name(api: Api, remote: RemoteRuntime) -> None:
    mine, other = WorkflowController("mine", runtime=remote), WorkflowController("other", runtime=remote)
    for workflow in (mine, other):
        workflow.add_step(step_id="only", task_type="echo")
    first = mine.run(timeout=PATIENCE)
    later = [other.run(timeout=PATIENCE).run_id for _ in range(2)]
    with api.client("read") as client:
        page = client.get("/api/v1/runs", params={"workflow": "mine", "limit": 1}).json()
        others = client.get("/api/v1/runs", params={"workflow": "other"}).json()
    assert [r["run_id"] for r in page["items"]] == [first.run_id] and page["next_cursor"] is None
    assert [r["run_id"] for r in others["items"]] == later[::-1]
    assert [r.run_id for r in mine.runs(limit=1)] == [first.run_id]


def test_the_monitors_and_the_error_handler_read_the_server(api: Api, remote: RemoteRuntime) -> None:
    orchestrator = TaskOrchestrator(runtime=remote)
    orchestrator.submit_task("remote/broken", "break", policy="dead_letter")
    status = orchestrator.wait("remote/broken", timeout=PATIENCE)
    assert status.state is TaskState.PARKED
    handler = ErrorHandler(runtime=remote)
    assert "remote/broken" in [s.task_id for s in handler.dead_letters()]
    assert [r.error.message for r in handler.get_error_history("remote/broken")] == ["broken on purpose"]
    assert handler.drop("remote/broken")
    report = HealthMonitor(runtime=remote).check_health()
    assert set(report.components) >= {"agents", "store", "engine"}
    performance = PerformanceMonitor(runtime=remote).get_performance(window="1h")
    assert performance.overall.completed + performance.overall.failed >= 1


def test_what_needs_a_database_here_says_so(remote: RemoteRuntime) -> None:
    with pytest.raises(RemoteUnsupportedError, match="database"):
        _ = remote.store

    @pepper.agent("local-only", task_types=["local"])
    def local(task: pepper.TaskRun) -> None:
        return None

    with pytest.raises(RemoteUnsupportedError, match="pepper worker"):
        remote.register_agent(local)


def test_a_workflow_defining_agents_is_refused_by_the_server(api: Api) -> None:
    with api.client() as client:
        answer = client.post("/api/v1/runs", json={"workflow": {
            "name": "inline", "agents": [{"id": "sh", "types": ["x"], "command": "true"}],
            "steps": [{"id": "a", "type": "x"}]}})  # fmt: skip
    from pepper.http.client import error_from

    assert isinstance(error_from(answer.status_code, answer.json(), api.url), ForbiddenWorkflowError)


def test_importing_pepper_loads_no_http_library() -> None:
    code = "import sys, pepper, pepper.core; print(sorted(m for m in ('httpx', 'fastapi') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_waits_longer_than_the_server_bound_loop(api: Api, remote: RemoteRuntime, monkeypatch) -> None:
    from pepper.http import backend

    monkeypatch.setattr(backend, "MAX_WAIT", 0.05)  # each request waits 50 ms: a wait of seconds is many of them
    orchestrator = TaskOrchestrator(runtime=remote)
    orchestrator.submit_task("remote/gated-long", "gated")
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError):
        orchestrator.wait("remote/gated-long", timeout=0.3)
    assert time.monotonic() - started >= 0.3
    api.gate.set()
    assert orchestrator.wait("remote/gated-long", timeout=PATIENCE).state is TaskState.COMPLETED
