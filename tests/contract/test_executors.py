"""The executor contract: every executor (the engine's loop, a thread, a subprocess, Ray) passes the same
tests through one fixture. Agents behave as ``behaviour`` says; they leave marks in a folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

import pepper
from pepper.agents import BaseAgent, CommandAgent, FunctionAgent
from pepper.core import TaskOrchestrator
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.contract import behaviour
from tests.support import eventually

EXECUTORS = ("async", "thread", "subprocess", "ray")
TYPE = "behave"


@dataclass(frozen=True)
class ExecutorCase:
    """Makes agents that run on one executor."""

    name: str

    @property
    def separate_process(self) -> bool:
        """The agent runs outside the engine's process, so it can die without the engine."""
        return self.name in ("subprocess", "ray")

    @property
    def reports_progress(self) -> bool:
        return self.name != "subprocess"  # a command has no channel for progress

    def agent(self, agent_id: str, **options: Any) -> BaseAgent:
        if self.name == "async":
            return FunctionAgent(behaviour.run_async, agent_id, task_types=[TYPE], **options)
        if self.name == "thread":
            return FunctionAgent(behaviour.run_sync, agent_id, task_types=[TYPE], **options)
        if self.name == "subprocess":
            command = f"{sys.executable} {Path(behaviour.__file__).resolve()}"
            return CommandAgent(agent_id, command, task_types=[TYPE], **options)
        return FunctionAgent(behaviour.run_sync, agent_id, task_types=[TYPE], executor="ray", **options)


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> ExecutorCase:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return ExecutorCase(request.param)


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


def inputs(marks: Path, do: str, **more: Any) -> dict[str, Any]:
    return {"do": do, "dir": str(marks), **more}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stopped(executor: ExecutorCase, marks: Path, attempt: int = 1) -> bool:
    """The agent of ``attempt`` stopped: a function saw its cancel; a command's process is gone."""
    if executor.name == "subprocess":
        return not alive(int((marks / f"started-{attempt}").read_text()))
    return (marks / f"stopped-{attempt}").exists()


def test_results_are_json_and_reach_dependents(executor, runtime, orchestrator: TaskOrchestrator, marks):
    runtime.register_agent(executor.agent("a1", capacity=2))
    orchestrator.submit_task("first", TYPE, inputs=inputs(marks, "double", n=21))
    orchestrator.submit_task("second", TYPE, inputs=inputs(marks, "double", n=1), dependencies=["first"])
    statuses = orchestrator.wait(["first", "second"], timeout=60)
    assert [s.state for s in statuses] == [TaskState.COMPLETED] * 2
    first = orchestrator.get_result("first")
    assert first["n"] == 42 and first["deps"] == {}
    assert orchestrator.get_result("second")["deps"] == {"first": first}
    assert (first["pid"] != os.getpid()) == executor.separate_process


def test_a_failure_goes_through_the_recovery_policy(executor, runtime, orchestrator: TaskOrchestrator, marks):
    runtime.register_agent(executor.agent("a1", recovery="retry(1)"))
    orchestrator.submit_task("job", TYPE, inputs=inputs(marks, "fail"))
    status = orchestrator.wait("job", timeout=60)
    assert status.state is TaskState.FAILED
    assert status.attempts == 2  # retried once, then failed
    assert status.error is not None and "asked to fail (attempt 2)" in status.error.message


def test_a_timeout_stops_the_attempt(executor, virtual: pepper.Runtime, clock: ManualClock, marks):
    virtual.register_agent(executor.agent("a1"))
    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("job", TYPE, inputs=inputs(marks, "hang"), timeout="30s")
    eventually(lambda: (marks / "started-1").exists(), "the attempt started")
    clock.set(clock.wait_for_timer(earliest=20, latest=40))  # the attempt's timeout falls due
    status = orchestrator.wait("job", timeout=60)
    assert status.state is TaskState.FAILED
    assert status.error is not None and status.error.kind == "timeout"
    eventually(lambda: stopped(executor, marks), "the agent stopped")


def test_cancel_stops_the_attempt(executor, runtime, orchestrator: TaskOrchestrator, marks):
    runtime.register_agent(executor.agent("a1"))
    orchestrator.submit_task("job", TYPE, inputs=inputs(marks, "hang"))
    eventually(lambda: (marks / "started-1").exists(), "the attempt started")
    assert orchestrator.cancel_task("job")
    assert orchestrator.wait("job", timeout=60).state is TaskState.CANCELLED
    eventually(lambda: stopped(executor, marks), "the agent stopped")


def test_an_agent_crash_goes_through_recovery(executor, runtime, orchestrator: TaskOrchestrator, marks):
    if not executor.separate_process:
        pytest.skip("the agent runs in the engine's process: its crash is the engine's (see the crash tests)")
    runtime.register_agent(executor.agent("a1", recovery="retry(1)"))
    orchestrator.submit_task("job", TYPE, inputs=inputs(marks, "crash"))
    status = orchestrator.wait("job", timeout=60)
    assert status.state is TaskState.COMPLETED, status.error
    assert status.attempts == 2
    assert orchestrator.get_result("job") == "survived"
    assert [e.error.kind for e in runtime.store.errors.of_task("job")] == ["crash"]


def test_progress_reports_arrive(executor, runtime, orchestrator: TaskOrchestrator, marks):
    if not executor.reports_progress:
        pytest.skip("command agents report no progress")
    runtime.register_agent(executor.agent("a1"))
    orchestrator.submit_task("job", TYPE, inputs=inputs(marks, "progress"))
    status = eventually(
        lambda: (s := orchestrator.get_task_status("job")).progress == 0.5 and s, "the progress was reported"
    )
    assert status.progress_message == "half way"
    (marks / "go").touch()
    assert orchestrator.wait("job", timeout=60).state is TaskState.COMPLETED
