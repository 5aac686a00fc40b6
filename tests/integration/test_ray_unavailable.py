"""Agents on Ray where Ray cannot be imported: refused as they register, the other agents run, a worker stops
at once with why (no Ray cluster needed: the import is blocked)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pepper
from pepper.agents import FunctionAgent
from pepper.core import TaskOrchestrator
from pepper.errors import AgentStartError, ExecutorUnavailableError
from pepper.model.run import TaskRun
from pepper.model.task import Task, TaskState
from tests.conftest import FAST

ROOT = Path(__file__).resolve().parents[2]


def answer(task: object) -> str:
    return "here"


def run_without_ray(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``code`` run in a fresh interpreter where ``import ray`` fails, as if Ray were not installed."""
    script = "import sys; sys.modules['ray'] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_without_ray_an_agent_on_ray_is_refused_as_it_registers_and_the_others_run(tmp_path: Path):
    done = run_without_ray(
        """
        import pepper
        from pepper.core import TaskOrchestrator
        with pepper.Runtime(db="p.db", home="home", retry_delay="20ms", poll_interval="20ms") as rt:
            @pepper.agent("here", task_types=["l"], capacity=4, runtime=rt)
            def here(task):
                return "local"
            for moment in ("before the engine runs", "while it runs"):
                try:
                    pepper.agent("onray", task_types=["r"], executor="ray", runtime=rt)(lambda task: "ray")
                except pepper.PepperError as exc:
                    print(moment, type(exc).__name__, exc)
                orchestrator = TaskOrchestrator(runtime=rt)
                ids = [f"{moment[0]}{n}" for n in range(4)]
                orchestrator.submit_tasks([{"task_id": i, "task_type": "l"} for i in ids])
                print([s.state.value for s in orchestrator.wait(ids, timeout=60)])
            print("agents", [a.spec.agent_id for a in rt.agents()])
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for moment, line in zip(("before the engine runs", "while it runs"), lines[0::2][:2], strict=True):
        assert line.startswith(f"{moment} ExecutorUnavailableError agent 'onray' runs on Ray"), line
        assert "Ray cannot be imported here" in line and 'pip install "pepper[ray]"' in line
    assert lines[1] == lines[3] == str(["completed"] * 4)
    assert lines[4] == "agents ['here']"


def test_without_ray_a_worker_with_an_agent_on_ray_stops_at_once_saying_why(tmp_path: Path):
    (tmp_path / "agents.yaml").write_text("- agent_id: r\n  task_types: [w]\n  executor: ray\n  function: m:f\n")
    (tmp_path / "m.py").write_text("def f(task):\n    return 1\n")
    done = run_without_ray(
        """
        import runpy, sys
        sys.argv = ["pepper", "worker", "--agents", "agents.yaml", "--db", "w.db", "--until-idle"]
        runpy.run_module("pepper", run_name="__main__")
        """,
        tmp_path,
    )
    assert done.returncode == 2, (done.stdout, done.stderr[-3000:])
    assert "agent 'r' runs on Ray (executor='ray'), but Ray cannot be imported here" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_agent_on_ray_whose_executor_cannot_be_imported_as_the_engine_starts_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("ray")
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), **FAST)
    try:
        runtime.register_agent(FunctionAgent(answer, "onray", task_types=["r"], executor="ray"))
        runtime.register_agent(FunctionAgent(answer, "here", task_types=["l"]))
        # Ray could be imported as the agent registered, no more as the engine starts (e.g. a broken install)
        monkeypatch.setitem(sys.modules, "pepper.engine.executors.ray", None)
        with pytest.raises(AgentStartError) as caught:
            runtime.start()
        assert list(caught.value.failures) == ["onray"]
        assert "Ray cannot be imported here" in caught.value.failures["onray"]
        assert runtime.failed_agents().keys() == {"onray"}
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("l1", "l")
        assert orchestrator.wait("l1", timeout=60).state is TaskState.COMPLETED
    finally:
        runtime.close()


def test_a_ray_client_address_without_the_client_package_is_refused_as_agents_register(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("ray")
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if ray[client] were not installed
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"),
                             ray_address="ray://127.0.0.1:1", **FAST)  # fmt: skip
    try:
        with pytest.raises(ExecutorUnavailableError) as refused:
            runtime.register_agent(FunctionAgent(answer, "onray", task_types=["r"], executor="ray"))
        why = "the Ray address ray://127.0.0.1:1 goes through Ray's client, whose package is not installed here"
        assert str(refused.value).startswith(f"agent 'onray' cannot run on Ray: {why}")
        assert 'pip install "pepper[ray-client]"' in str(refused.value)
        assert runtime.agents() == []
        runtime.register_agent(FunctionAgent(answer, "here", task_types=["l"]))  # an agent run here needs no Ray
    finally:
        runtime.close()


def test_a_ray_client_address_without_the_client_package_fails_attempts_at_once_not_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("ray")
    from pepper.engine.executors.ray import RayExecutor

    monkeypatch.setitem(sys.modules, "grpc", None)
    executor = RayExecutor("ray://127.0.0.1:1", tmp_path)
    run = TaskRun(Task("t", "r"), 1, "onray")
    agent = FunctionAgent(answer, "onray", task_types=["r"], executor="ray")
    try:
        for _ in range(2):  # each attempt fails alike, none waits for a cluster that no wait brings
            with pytest.raises(ExecutorUnavailableError, match=r"pepper\[ray-client\]"):
                asyncio.run(asyncio.wait_for(executor.call(agent, run), 60))
        assert "goes through Ray's client, whose package is not installed here" in (executor.health() or "")
    finally:
        executor.close()
