"""Agents on Ray: a local Ray of the test session (``ray_cluster``); the executor contract is in tests/contract."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import pepper
from pepper.agents import FunctionAgent
from pepper.core import ResourceAllocator, ResourceManager, TaskOrchestrator, WorkflowController
from pepper.errors import AgentDefinitionError
from pepper.model.resources import Resources
from pepper.model.task import TaskState
from pepper.store.location import open_store
from tests.conftest import FAST
from tests.integration import ray_agents
from tests.support import eventually

pytestmark = pytest.mark.usefixtures("ray_cluster")

#: The grace a cancelled attempt gets before its actor is killed, in the tests of attempts that never heed it.
DEAF_GRACE = 0.5


def started_pid(mark: Path) -> int:
    """The pid an agent wrote in its start mark, once written (the file exists a moment before its text)."""
    return int(eventually(lambda: mark.exists() and mark.read_text(), f"{mark.name} written", timeout=120))


def test_a_ray_agent_runs_in_a_ray_worker_with_its_resources_and_its_result_reaches_dependents(tmp_path: Path):
    # Ray places the actor with the whole budget; pepper's pool grants only the shared pool it names (licences)
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"),
                             shared_resources={"licences": 4})  # fmt: skip
    budget = {"cpu": 1, "memory": 64, "licences": 2}
    runtime.register_agent(FunctionAgent(ray_agents.where, "remote", task_types=["where"], executor="ray",
                                         resources=budget))  # fmt: skip
    runtime.register_agent(FunctionAgent(ray_agents.local_step, "here", task_types=["local"]))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("on-ray", "where")
    orchestrator.submit_task("after", "local", dependencies=["on-ray"])

    assert [s.state for s in orchestrator.wait(["on-ray", "after"], timeout=60)] == [TaskState.COMPLETED] * 2
    on_ray = orchestrator.get_result("on-ray")
    assert on_ray["pid"] != os.getpid()
    assert on_ray["resources"] == {"CPU": 1.0, "memory": 64 * 1024 * 1024, "licences": 2.0}
    assert orchestrator.get_result("after") == {"pid": os.getpid(), "deps": {"on-ray": on_ray}}
    assert ResourceManager(runtime).get_resource_usage("remote").allocated == Resources({"licences": 2})
    runtime.close()


def test_a_ray_agents_tasks_need_room_in_its_declared_budget_not_in_peppers_pool(tmp_path: Path):
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), resources={"cpu": 4},
                             **FAST)  # fmt: skip
    runtime.register_agent(FunctionAgent(ray_agents.where, "remote", task_types=["where"], executor="ray",
                                         resources={"cpu": 1}, capacity=2))  # fmt: skip
    allocator = ResourceAllocator(runtime)
    whole_pool = allocator.allocate("someone", {"cpu": 4})
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("fits", "where", requirements={"resources": {"cpu": 1}})
    assert orchestrator.wait("fits", timeout=60).state is TaskState.COMPLETED  # pepper's pool had no cpu free
    assert orchestrator.get_result("fits")["resources"] == {"CPU": 1.0}
    assert ResourceManager(runtime).pool().held == {"cpu": 4.0}  # the allocation alone

    orchestrator.submit_task("too-big", "where", requirements={"resources": {"cpu": 2}})
    status = eventually(lambda: (s := orchestrator.get_task_status("too-big")).waiting_on and s, "a reason")
    assert status.state is TaskState.PENDING
    (reason,) = [r for r in status.waiting_on if r.kind == "resources"]
    assert "cpu short by 1 core in the budget agent 'remote' declares to Ray" in reason.message
    allocator.release(whole_pool)
    runtime.register_agent(FunctionAgent(ray_agents.local_step, "here", task_types=["where"]))
    assert orchestrator.wait("too-big", timeout=60).state is TaskState.COMPLETED
    assert orchestrator.get_task_status("too-big").agent_id == "here"  # an agent run here, within the pool
    runtime.close()


def test_killing_the_actor_mid_task_retries_the_task_per_its_policy(runtime, tmp_path: Path):
    runtime.register_agent(FunctionAgent(ray_agents.wait_for_go, "remote", task_types=["slow"], executor="ray",
                                         recovery="retry(1)"))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("job", "slow", inputs={"dir": str(tmp_path)})
    actor_pid = started_pid(tmp_path / "started-job-1")
    os.kill(actor_pid, signal.SIGKILL)
    # only now may an attempt finish: the first one is dead, so only a retry can (with "go" given before the
    # kill, the first attempt could see it and finish in the moment before the kill)
    (tmp_path / "go").touch()

    status = orchestrator.wait("job", timeout=60)
    assert status.state is TaskState.COMPLETED and status.attempts == 2
    assert [e.error.kind for e in runtime.store.errors.of_task("job")] == ["crash"]
    second = started_pid(tmp_path / "started-job-2")
    assert second != actor_pid  # a new actor ran the retry


def test_many_tasks_in_flight_on_one_actor_each_end_with_their_own_outcome(runtime):
    runtime.register_agent(FunctionAgent(ray_agents.double, "remote", task_types=["double"], executor="ray",
                                         capacity=4))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    ids = [f"t{n}" for n in range(60)]
    orchestrator.submit_tasks([{"task_id": f"t{n}", "task_type": "double", "inputs": {"n": n if n % 7 else -n - 1}}
                               for n in range(60)])  # fmt: skip

    statuses = {s.task_id: s for s in orchestrator.wait(ids, timeout=120)}

    for n in range(60):
        status = statuses[f"t{n}"]
        if n % 7:
            assert status.state is TaskState.COMPLETED, status.error
            assert orchestrator.get_result(f"t{n}") == {"n": n * 2, "task": f"t{n}"}
        else:  # every seventh fails, and only it
            assert status.state is TaskState.FAILED
            assert status.error is not None and status.error.type == "ValueError"
            assert status.error.message == f"n must not be negative, got {-n - 1}"


def test_killing_an_actor_running_several_attempts_retries_each_of_them(runtime, tmp_path: Path):
    runtime.register_agent(FunctionAgent(ray_agents.wait_for_go, "remote", task_types=["slow"], executor="ray",
                                         capacity=3, recovery="retry(1)"))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    ids = ["a", "b", "c"]
    for task_id in ids:
        orchestrator.submit_task(task_id, "slow", inputs={"dir": str(tmp_path)})
    pids = {started_pid(tmp_path / f"started-{task_id}-1") for task_id in ids}
    assert len(pids) == 1  # one actor runs them all
    os.kill(pids.pop(), signal.SIGKILL)
    (tmp_path / "go").touch()

    statuses = orchestrator.wait(ids, timeout=120)
    assert [(s.state, s.attempts) for s in statuses] == [(TaskState.COMPLETED, 2)] * 3
    for task_id in ids:
        assert [e.error.kind for e in runtime.store.errors.of_task(task_id)] == ["crash"]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_an_attempt_deaf_to_its_timeout_has_its_actor_killed_and_the_next_runs_on_a_new_one(
    runtime, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("pepper.engine.executors.ray.KILL_GRACE", DEAF_GRACE)
    runtime.register_agent(FunctionAgent(ray_agents.stubborn, "remote", task_types=["stubborn"], executor="ray"))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("warm-up", "stubborn", inputs={"dir": str(tmp_path), "quick": True})
    assert orchestrator.get_result("warm-up", timeout=60) == "quick"  # the actor is up: the timeout is the run's
    orchestrator.submit_task("stuck", "stubborn", inputs={"dir": str(tmp_path)}, timeout="2s")

    status = orchestrator.wait("stuck", timeout=60)
    assert status.state is TaskState.FAILED and status.error is not None and status.error.kind == "timeout"
    stuck_pid = started_pid(tmp_path / "started-stuck")
    assert stuck_pid == started_pid(tmp_path / "started-warm-up")
    eventually(lambda: gone(stuck_pid), "the actor of the stuck attempt was killed")

    orchestrator.submit_task("next", "stubborn", inputs={"dir": str(tmp_path), "quick": True})
    assert orchestrator.get_result("next", timeout=60) == "quick"
    assert started_pid(tmp_path / "started-next") != stuck_pid


def test_a_workflow_with_steps_on_local_and_ray_agents_completes(runtime):
    runtime.register_agent(FunctionAgent(ray_agents.where, "remote", task_types=["where"], executor="ray"))
    runtime.register_agent(FunctionAgent(ray_agents.local_step, "here", task_types=["local"]))
    workflow = WorkflowController("mixed", runtime)
    workflow.add_step("fetch", "local")
    workflow.add_step("crunch", "where", dependencies=["fetch"])
    workflow.add_step("report", "local", dependencies=["crunch"])

    result = workflow.run(timeout=60)

    assert result.status == "completed"
    assert [s.agent_id for s in result] == ["here", "remote", "here"]
    assert result["crunch"].result["deps"] == {"fetch": result["fetch"].result}
    assert result["report"].result["deps"]["crunch"]["pid"] != os.getpid()


def test_a_cluster_that_does_not_answer_shows_in_health_and_its_tasks_wait(tmp_path: Path):
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    script = Path(ray_agents.__file__).resolve()
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])

    done = subprocess.run([sys.executable, str(script), "unreachable", str(tmp_path / "pepper.db"), address],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    state, report = done.stdout.strip().split(" ", 1)
    assert state == "in_progress"  # claimed, waiting for the cluster: not failed, not lost
    assert f"the Ray cluster at {address}" in report, report
    assert "has not answered" in report or "cannot be reached" in report, report


def test_a_killed_pepper_process_leaves_no_task_lost_or_completed_twice(ray_cluster: str, tmp_path: Path):
    db, marks = str(tmp_path / "pepper.db"), tmp_path / "marks"
    (marks / "quick").mkdir(parents=True)
    script = Path(ray_agents.__file__).resolve()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    first = subprocess.Popen([sys.executable, str(script), "submit", db, ray_cluster, str(marks)], env=env,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for task_id in ("s1", "s2", "s3"):
            eventually(lambda t=task_id: (marks / f"started-{t}-1").exists(), f"{task_id} started on Ray")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    (marks / "go").touch()

    second = subprocess.run([sys.executable, str(script), "resume", db, ray_cluster], env=env, capture_output=True,
                            text=True, timeout=180)  # fmt: skip

    assert second.returncode == 0, second.stderr[-2000:]
    states = {line.split()[0]: line.split()[1:] for line in second.stdout.splitlines() if line.strip()}
    assert states["quick"] == ["completed", "1"]  # completed before the kill: not run again
    assert all(states[t] == ["completed", "2"] for t in ("s1", "s2", "s3")), states
    # The record: the earlier attempts of each task (its last one is its row): the killed ones, interrupted.
    store = open_store(db)
    try:
        earlier = {t: [a["outcome"] for a in store.attempts(t)] for t in ("quick", "s1", "s2", "s3")}
    finally:
        store.close()
    assert earlier == {"quick": [], "s1": ["interrupted"], "s2": ["interrupted"], "s3": ["interrupted"]}


def test_an_initialize_that_raises_in_the_actor_fails_its_attempts_with_its_own_error_until_it_starts(
    runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    runtime.register_agent(ray_agents.FailsInItsActor("remote", str(tmp_path), task_types=["model"], executor="ray"))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("first", "model", max_retries=1)

    status = orchestrator.wait("first", timeout=60)

    assert status.state is TaskState.FAILED and status.attempts == 2  # its recovery policy applied
    assert status.error is not None and status.error.type == "AgentStartError" and status.error.kind == "error"
    own = "its initialize() raised ConnectionError: cannot reach the model server from this node"
    assert status.error.message.startswith(f"agent 'remote' could not start in its Ray actor: {own}")
    assert "could not start in its Ray actor" in caplog.text  # told in the log too
    tries = sorted(path.name for path in tmp_path.glob("init-*"))
    assert len(tries) == 2 and len({name.split("-")[1] for name in tries}) == 1  # one actor, tried once a batch
    (tmp_path / "mended").touch()
    orchestrator.submit_task("second", "model")
    assert orchestrator.get_result("second", timeout=60)["pid"] == int(tries[0].split("-")[1])  # started at last


def test_a_class_agent_on_ray_is_sent_as_built_and_its_initialize_runs_in_the_actor(runtime):
    runtime.register_agent(ray_agents.LockInInitialize("holder", task_types=["hold"], executor="ray"))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("held", "hold")
    assert orchestrator.get_result("held", timeout=60)["pid"] != os.getpid()  # its lock was made there


@pytest.mark.parametrize("engine_runs", [False, True], ids=["before-the-engine-runs", "while-it-runs"])
def test_an_agent_ray_cannot_serialise_is_refused_as_it_registers(runtime, engine_runs: bool):
    if engine_runs:
        runtime.start()
    agent = ray_agents.LockInConstructor("holder", task_types=["hold"], executor="ray")
    with pytest.raises(AgentDefinitionError) as refused:
        runtime.register_agent(agent)
    assert str(refused.value).startswith("agent 'holder' cannot run on Ray: its attribute 'guard' (RLock) cannot be "
                                         "serialised to send the agent to its actor (TypeError: ")  # fmt: skip
    assert len(str(refused.value)) < 400
    assert runtime.agents() == [] and runtime.failed_agents() == {}
    assert [a.agent_id for a in runtime.store.workers.agents()] == []


def test_a_budget_no_node_of_the_cluster_has_fails_the_attempt_saying_so(runtime):
    runtime.register_agent(FunctionAgent(ray_agents.where, "gpu", task_types=["embed"], executor="ray",
                                         resources={"gpu": 1}, recovery="retry(1)"))  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("embed", "embed")

    status = orchestrator.wait("embed", timeout=60)

    assert status.state is TaskState.FAILED and status.attempts == 2
    assert status.error is not None and status.error.type == "ExecutorUnavailableError"
    assert status.error.message.startswith("agent 'gpu' asks Ray for GPU 1, which no node of the Ray cluster has "
                                           "(the most one node has: GPU 0)")  # fmt: skip
