"""Task ids ending in a sub-resource's name (``flow-1/result``: a step named ``result``) read over HTTP: through
the remote client, the CLI with ``--server``, and the URLs themselves (``%2F`` always belongs to the id)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator
from pepper.core.logs import TaskLogs
from pepper.errors import TaskFailedError, ValidationError
from pepper.http.remote import RemoteRuntime
from pepper.model.task import TaskState
from tests.http.conftest import PATIENCE, Api

NAMES = ("result", "errors", "logs", "cancel", "feedback")


@pytest.fixture(scope="module")
def remote(api: Api) -> Iterator[RemoteRuntime]:
    runtime = pepper.connect(api.url, token=api.tokens["write"])
    assert isinstance(runtime, RemoteRuntime)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def finished(remote: RemoteRuntime) -> TaskOrchestrator:
    """``ids-1`` and ``ids-1/<name>`` for each sub-resource's name, completed, each with its own inputs."""
    orchestrator = TaskOrchestrator(runtime=remote)
    ids = ["ids-1", *(f"ids-1/{name}" for name in NAMES)]
    orchestrator.submit_tasks([{"id": task_id, "type": "echo", "inputs": {"me": task_id}} for task_id in ids])
    for task_id in ids:
        assert orchestrator.get_result(task_id, timeout=PATIENCE) == {"me": task_id}
    return orchestrator


def test_the_remote_client_reads_every_such_task_and_its_result(finished: TaskOrchestrator) -> None:
    for name in NAMES:
        task_id = f"ids-1/{name}"
        status = finished.get_task_status(task_id)
        assert (status.task_id, status.state) == (task_id, TaskState.COMPLETED)
        assert finished.get_result(task_id, timeout=0) == {"me": task_id}
        assert finished.wait(task_id, timeout=PATIENCE).task_id == task_id
    assert finished.get_task_status("ids-1").task_id == "ids-1"


def test_escaped_slashes_belong_to_the_id_and_bare_ones_keep_their_old_meaning(api: Api, finished: object) -> None:
    with api.client("read") as http:
        for name in NAMES:
            assert http.get(f"/api/v1/tasks/ids-1%2F{name}").json()["task_id"] == f"ids-1/{name}"
            assert http.get(f"/api/v1/tasks/ids-1%2f{name}").json()["task_id"] == f"ids-1/{name}"  # either case
        own = http.get("/api/v1/tasks/ids-1%2Fresult/result").json()
        assert own == {"task_id": "ids-1/result", "state": "completed", "result": {"me": "ids-1/result"}}
        old = http.get("/api/v1/tasks/ids-1/result").json()  # bare: the result of ids-1, as before
        assert old == {"task_id": "ids-1", "state": "completed", "result": {"me": "ids-1"}}
        assert http.get("/api/v1/tasks/ids-1%2Ferrors/errors").json() == {"items": [], "next_cursor": None}
        assert http.get("/api/v1/tasks/ids-1%2Flogs/logs").json()["task_id"] == "ids-1/logs"
        assert http.get("/api/v1/tasks/ids-1%2Flogs").json()["task_id"] == "ids-1/logs"
        missing = http.get("/api/v1/tasks/ids-1%2Fnothing")
        assert missing.status_code == 404 and "ids-1/nothing" in missing.json()["error"]["message"]


def test_errors_logs_cancel_and_feedback_reach_the_task_named(remote: RemoteRuntime, finished: object) -> None:
    orchestrator = TaskOrchestrator(runtime=remote)
    orchestrator.submit_tasks([{"id": "bad", "type": "break"}, {"id": "bad/errors", "type": "break"}])
    for task_id in ("bad", "bad/errors"):
        with pytest.raises(TaskFailedError):
            orchestrator.get_result(task_id, timeout=PATIENCE)
    history = ErrorHandler(remote).get_error_history("bad/errors")
    assert history and {record.task_id for record in history} == {"bad/errors"}
    assert TaskLogs(remote).get("ids-1/logs").task_id == "ids-1/logs"
    orchestrator.submit_task("hold/cancel", "echo", dependencies=["hold/never"])  # blocked until cancelled
    assert orchestrator.cancel_task("hold/cancel", reason="not needed")
    assert orchestrator.get_task_status("hold/cancel").state is TaskState.CANCELLED
    assert orchestrator.add_feedback("ids-1/feedback", 4).task_id == "ids-1/feedback"
    orchestrator.submit_task("hold/replay", "echo", dependencies=["hold/never"])
    assert ErrorHandler(remote).drop("hold/replay") is False  # the dead letters' route: not parked, so kept
    assert orchestrator.get_task_status("hold/replay").state is TaskState.BLOCKED


def test_the_cli_with_a_server_shows_such_a_task(api: Api, finished: object, tmp_path: Path) -> None:
    env = {**os.environ, "PEPPER_SERVER": api.url, "PEPPER_TOKEN": api.tokens["read"], "COLUMNS": "200"}
    env.pop("PEPPER_DB", None)
    shown = subprocess.run([sys.executable, "-m", "pepper", "status", "ids-1/result", "--json"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=PATIENCE * 4)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert '"task_id": "ids-1/result"' in shown.stdout


def test_ids_dot_and_dot_dot_are_refused_and_dots_within_an_id_are_read_over_http(
    api: Api, remote: RemoteRuntime
) -> None:
    orchestrator = TaskOrchestrator(runtime=remote)
    for bad in (".", ".."):  # a path segment of its own: no browser would ever send it
        with pytest.raises(ValidationError, match="cannot be") as refused:
            orchestrator.submit_task(bad, "echo")
        assert refused.value.field == "task_id"
    orchestrator.submit_tasks([{"id": "./bad", "type": "echo", "inputs": {"me": "./bad"}}])
    orchestrator.submit_task("a/../b", "echo", dependencies=["hold/never"])
    assert orchestrator.get_result("./bad", timeout=PATIENCE) == {"me": "./bad"}
    status = orchestrator.get_task_status("a/../b")
    assert (status.task_id, status.state) == ("a/../b", TaskState.BLOCKED)
    assert TaskLogs(remote).get("./bad").task_id == "./bad"
    assert ErrorHandler(remote).get_error_history("a/../b") == []
    assert orchestrator.cancel_task("a/../b", reason="not needed")
    with api.client("read") as http:
        assert http.get("/api/v1/tasks/%2E%2Fbad").json()["task_id"] == "./bad"
        assert http.get("/api/v1/tasks/a%2F%2E%2E%2Fb").json()["task_id"] == "a/../b"
    assert orchestrator.list_tasks() and all(t.task_id not in (".", "..") for t in orchestrator.list_tasks())


def test_dot_segments_are_escaped_in_every_id_of_a_path() -> None:
    from pepper.http.backend import _escaped
    from pepper.http.client import escaped_id, task_path

    assert [escaped_id(i) for i in (".", "..", "...", "a.b", "./x")] == ["%2E", "%2E%2E", "...", "a.b", ".%2Fx"]
    assert task_path("..") == "/tasks/%2E%2E"
    assert _escaped("..") == "%2E%2E" and _escaped("run/./x") == "run/%2E/x" and _escaped("run-1") == "run-1"
