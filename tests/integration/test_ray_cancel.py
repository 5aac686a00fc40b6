"""Cancel and timeout of attempts on a Ray actor that runs several at once: a cooperative one ends and the actor
goes on; one that goes on running past the grace has its actor killed, and the attempts it shared the actor with
go through their recovery policy."""

from __future__ import annotations

from pathlib import Path

import pytest

import pepper
from pepper.agents import FunctionAgent
from pepper.core import TaskOrchestrator
from pepper.model.task import TaskState
from tests.integration import ray_agents
from tests.integration.test_ray import DEAF_GRACE, gone, started_pid
from tests.support import eventually

pytestmark = pytest.mark.usefixtures("ray_cluster")


def kill_checks_over(runtime: pepper.Runtime) -> bool:
    """The Ray executor no longer watches any cancelled attempt (each ended, or its actor was killed)."""
    service = runtime._service
    assert service is not None
    executor = service.engine.attempts.executors["ray"]
    return not executor._cleanup  # type: ignore[attr-defined]


def marks(folder: Path, prefix: str) -> set[str]:
    return {path.name for path in folder.glob(f"{prefix}-*")}


def test_a_cooperative_attempt_cancelled_on_a_shared_actor_ends_and_the_actor_runs_on(runtime, tmp_path: Path):
    runtime.register_agent(FunctionAgent(ray_agents.wait_or_deaf, "remote", task_types=["slow"], executor="ray",
                                         capacity=4))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    ids = ["a", "b", "c", "x"]
    for task_id in ids:
        orchestrator.submit_task(task_id, "slow", inputs={"dir": str(tmp_path)})
    pids = {started_pid(tmp_path / f"started-{task_id}-1") for task_id in ids}
    assert len(pids) == 1  # one actor runs them all
    pid = pids.pop()

    assert orchestrator.cancel_task("x")
    assert orchestrator.wait("x", timeout=60).state is TaskState.CANCELLED
    eventually(lambda: (tmp_path / "done-x-1").exists(), "the cancelled attempt saw its cancel and returned")
    eventually(lambda: kill_checks_over(runtime), "the executor saw the cancelled attempt end in the actor")
    assert not gone(pid)
    (tmp_path / "go").touch()

    statuses = orchestrator.wait(["a", "b", "c"], timeout=60)
    assert [(s.state, s.attempts) for s in statuses] == [(TaskState.COMPLETED, 1)] * 3
    assert marks(tmp_path, "done") == {"done-a-1", "done-b-1", "done-c-1", "done-x-1"}  # each ran once
    orchestrator.submit_task("after", "slow", inputs={"dir": str(tmp_path)})
    assert orchestrator.wait("after", timeout=60).state is TaskState.COMPLETED
    assert started_pid(tmp_path / "started-after-1") == pid  # the same actor
    assert runtime.store.errors.of_task("a") == []


@pytest.mark.parametrize("stop", ["cancel", "timeout"])
def test_an_attempt_deaf_to_its_stop_on_a_shared_actor_has_it_killed_and_the_others_retried(
    runtime, tmp_path: Path, stop: str, monkeypatch: pytest.MonkeyPatch
):
    import ray

    cancels: list[bool] = []

    def cancel(ref: object, *, force: bool = False, recursive: bool = True) -> None:
        cancels.append(force)
        real_cancel(ref, force=force, recursive=recursive)

    real_cancel = ray.cancel
    monkeypatch.setattr(ray, "cancel", cancel)
    monkeypatch.setattr("pepper.engine.executors.ray.KILL_GRACE", DEAF_GRACE)
    runtime.register_agent(FunctionAgent(ray_agents.wait_or_deaf, "remote", task_types=["slow"], executor="ray",
                                         capacity=4))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    siblings = ["a", "b"]
    for task_id in siblings:  # retried once; the deaf one is not
        orchestrator.submit_task(task_id, "slow", inputs={"dir": str(tmp_path)}, policy="retry(1)")
    pid = started_pid(tmp_path / "started-a-1")
    assert started_pid(tmp_path / "started-b-1") == pid
    # the actor is up: a timeout counts the attempt's own time
    orchestrator.submit_task("stuck", "slow", inputs={"dir": str(tmp_path), "deaf": True},
                             timeout="2s" if stop == "timeout" else None)  # fmt: skip
    assert started_pid(tmp_path / "started-stuck") == pid

    if stop == "cancel":
        assert orchestrator.cancel_task("stuck")
    status = orchestrator.wait("stuck", timeout=60)
    if stop == "cancel":
        assert status.state is TaskState.CANCELLED
    else:
        assert status.state is TaskState.FAILED and status.error is not None and status.error.kind == "timeout"
    eventually(lambda: gone(pid), "the actor of the deaf attempt was killed after the grace")
    assert cancels and not any(cancels)  # its calls in flight were cancelled first, without force
    (tmp_path / "go").touch()  # only now may a sibling finish: its first attempt died with the actor

    statuses = orchestrator.wait(siblings, timeout=120)
    assert [(s.state, s.attempts) for s in statuses] == [(TaskState.COMPLETED, 2)] * 2
    assert marks(tmp_path, "done") == {"done-a-2", "done-b-2"}  # each completed once, on its retry
    for task_id in siblings:
        crashes = runtime.store.errors.of_task(task_id)
        assert [e.error.kind for e in crashes] == ["crash"]
        assert "went on running after its cancel" in crashes[0].error.message
        assert started_pid(tmp_path / f"started-{task_id}-2") != pid  # a fresh actor ran the retry
    assert orchestrator.get_task_status("stuck").attempts == 1


def test_an_async_attempt_cancelled_on_a_shared_actor_has_its_asyncio_task_cancelled(runtime, tmp_path: Path):
    runtime.register_agent(FunctionAgent(ray_agents.wait_for_go_async, "remote", task_types=["slow"],
                                         executor="ray", capacity=2))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    for task_id in ("a", "x"):
        orchestrator.submit_task(task_id, "slow", inputs={"dir": str(tmp_path)})
    pid = started_pid(tmp_path / "started-a-1")
    assert started_pid(tmp_path / "started-x-1") == pid

    assert orchestrator.cancel_task("x")
    assert orchestrator.wait("x", timeout=60).state is TaskState.CANCELLED
    eventually(lambda: (tmp_path / "cancelled-x-1").exists(), "the async attempt's task was cancelled")
    eventually(lambda: kill_checks_over(runtime), "the executor saw the cancelled attempt end in the actor")
    assert not gone(pid)
    (tmp_path / "go").touch()

    status = orchestrator.wait("a", timeout=60)
    assert (status.state, status.attempts) == (TaskState.COMPLETED, 1)
    assert marks(tmp_path, "done") == {"done-a-1"}
    assert marks(tmp_path, "started") == {"started-a-1", "started-x-1"}
