"""Agents of the Ray tests (imported by Ray workers, and run as a script by the durability test)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pepper.agents import BaseAgent


def where(task: Any) -> dict[str, Any]:
    """Where it ran: the pid, the Ray resources given to it, and the results of its dependencies."""
    import ray

    return {
        "pid": os.getpid(),
        "resources": ray.get_runtime_context().get_assigned_resources(),
        "deps": dict(task.dependency_results),
    }


def local_step(task: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "deps": dict(task.dependency_results)}


def double(task: Any) -> dict[str, Any]:
    """Twice its ``n``; fails for a negative one."""
    n = task.inputs["n"]
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    return {"n": n * 2, "task": task.task_id}


def stubborn(task: Any) -> str:
    """Marks its start (with its pid); unless ``inputs["quick"]``, runs for ever, deaf to its cancel."""
    (Path(task.inputs["dir"]) / f"started-{task.task_id}").write_text(str(os.getpid()))
    while not task.inputs.get("quick"):
        time.sleep(0.05)
    return "quick"


def wait_for_go(task: Any) -> str:
    """Marks its start (with its pid), then waits for the file ``go`` in ``inputs["dir"]``."""
    folder = Path(task.inputs["dir"])
    (folder / f"started-{task.task_id}-{task.attempt}").write_text(str(os.getpid()))
    while not (folder / "go").exists() and not task.cancelled:
        time.sleep(0.01)
    (folder / f"done-{task.task_id}-{task.attempt}").touch()
    return f"{task.task_id} done"


def wait_or_deaf(task: Any) -> str:
    """``stubborn`` when ``inputs["deaf"]``, else ``wait_for_go``: both kinds of attempt on one agent."""
    return stubborn(task) if task.inputs.get("deaf") else wait_for_go(task)


async def wait_for_go_async(task: Any) -> str:
    """Like ``wait_for_go``, but async and deaf to ``task.cancelled``: only the cancel of its asyncio task stops
    it (marked ``cancelled-<task>-<attempt>``)."""
    folder = Path(task.inputs["dir"])
    (folder / f"started-{task.task_id}-{task.attempt}").write_text(str(os.getpid()))
    try:
        while not (folder / "go").exists():
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        (folder / f"cancelled-{task.task_id}-{task.attempt}").touch()
        raise
    (folder / f"done-{task.task_id}-{task.attempt}").touch()
    return f"{task.task_id} done"


class FailsInItsActor(BaseAgent):
    """Starts where it was registered; in a Ray actor its ``initialize()`` raises, until the file ``mended``
    exists in ``folder`` (each try marked ``init-<pid>-<n>``)."""

    def __init__(self, agent_id: str, folder: str, **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.folder = folder
        self.registered_in = os.getpid()

    async def initialize(self) -> None:
        if os.getpid() == self.registered_in:
            return
        folder = Path(self.folder)
        tries = len(list(folder.glob(f"init-{os.getpid()}-*")))
        (folder / f"init-{os.getpid()}-{tries + 1}").touch()
        if not (folder / "mended").exists():
            raise ConnectionError("cannot reach the model server from this node")

    async def execute(self, task: Any) -> dict[str, Any]:
        return {"pid": os.getpid()}


class LockInInitialize(BaseAgent):
    """Makes a lock (which cannot be serialised) in ``initialize()``, wherever that runs, and uses it."""

    async def initialize(self) -> None:
        self.guard = threading.RLock()

    async def execute(self, task: Any) -> dict[str, Any]:
        with self.guard:
            return {"pid": os.getpid()}


class LockInConstructor(LockInInitialize):
    """Makes its lock as it is built, so the agent itself cannot be sent to a Ray actor."""

    def __init__(self, agent_id: str, **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.guard = threading.RLock()


def main() -> None:
    """``submit DB ADDRESS DIR``: submit three waiting tasks and one quick one, run them on Ray until killed;
    ``resume DB ADDRESS``: run what is left, then print each task's state and attempts;
    ``unreachable DB ADDRESS`` (where no Ray answers): submit a task, and once health says why it cannot run,
    print the task's state and the health report."""
    import pepper
    from pepper.agents import FunctionAgent
    from pepper.core import TaskOrchestrator

    mode, db, address = sys.argv[1:4]
    runtime = pepper.Runtime(db=db, executor="ray", ray_address=address, retry_delay="20ms", poll_interval="20ms")
    runtime.register_agent(FunctionAgent(wait_for_go, "slow", task_types=["slow"], capacity=3))
    orchestrator = TaskOrchestrator(runtime)
    ids = ["quick", "s1", "s2", "s3"]
    if mode == "submit":
        folder = sys.argv[4]
        (Path(folder) / "quick" / "go").touch()
        orchestrator.submit_task("quick", "slow", inputs={"dir": folder + "/quick"})
        orchestrator.wait("quick", timeout=60)
        for task_id in ids[1:]:
            orchestrator.submit_task(task_id, "slow", inputs={"dir": folder})
        print("submitted", flush=True)
        time.sleep(600)  # killed by the test meanwhile
    elif mode == "unreachable":
        from pepper.core import HealthMonitor

        orchestrator.submit_task("waits", "slow", inputs={"dir": "."})
        monitor = HealthMonitor(runtime)
        while "the ray executor cannot run attempts" not in (text := json.dumps(monitor.check_health().to_dict())):
            time.sleep(0.05)
        print(orchestrator.get_task_status("waits").state.value, text, flush=True)
        os._exit(0)  # Ray may go on trying to reach the cluster for minutes
    else:
        for status in orchestrator.wait(ids, timeout=120):
            print(status.task_id, status.state.value, status.attempts, flush=True)
        runtime.close()


if __name__ == "__main__":
    main()
