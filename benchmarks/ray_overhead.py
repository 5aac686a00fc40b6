"""What pepper's Ray executor costs over calling Ray actors directly.

The same no-op work, in the same run, on one local Ray: N tasks through pepper (an agent with
``executor="ray"`` and capacity C: each task claimed, committed, run on the agent's actor, its
result committed) beside N calls made directly on a Ray actor with the same concurrency. Prints
both throughputs and their ratio (target: pepper >= 0.7x raw Ray).

    python benchmarks/ray_overhead.py [--tasks 2000] [--capacity 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

# This folder holds http.py, which would hide the standard library's http package from Ray's imports.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402 - the environment above must be set first

import pepper  # noqa: E402
from pepper.agents import FunctionAgent  # noqa: E402
from pepper.core import TaskOrchestrator  # noqa: E402


def noop(task: object) -> None:
    return None


class Noop:
    def run(self, *args: object) -> None:
        return None


def raw_ray(tasks: int, capacity: int) -> float:
    """Tasks per second calling one actor directly, all calls in flight at once."""
    actor = ray.remote(Noop).options(num_cpus=0, max_concurrency=capacity).remote()
    ray.get(actor.run.remote())  # started
    start = time.perf_counter()
    ray.get([actor.run.remote(i) for i in range(tasks)])
    elapsed = time.perf_counter() - start
    ray.kill(actor)
    return tasks / elapsed


def through_pepper(tasks: int, capacity: int, folder: str) -> float:
    """Tasks per second submitted to pepper and run on a Ray agent, from the first submission to the last end."""
    with pepper.Runtime(db=os.path.join(folder, "pepper.db"), home=os.path.join(folder, "home")) as runtime:
        runtime.register_agent(FunctionAgent(noop, "noop", task_types=["noop"], executor="ray", capacity=capacity))
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("warm-up", "noop")
        orchestrator.wait("warm-up", timeout=120)  # the actor is up
        ids = [f"t{i}" for i in range(tasks)]
        start = time.perf_counter()
        orchestrator.submit_tasks([{"task_id": task_id, "task_type": "noop"} for task_id in ids])
        statuses = orchestrator.wait(ids, timeout=600)
        elapsed = time.perf_counter() - start
        assert all(s.state.value == "completed" for s in statuses)
    return tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=8)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            raw = raw_ray(args.tasks, args.capacity)
            ours = through_pepper(args.tasks, args.capacity, folder)
    finally:
        ray.shutdown()
    print(f"{args.tasks} no-op tasks, concurrency {args.capacity}, one local Ray (ray {ray.__version__})")
    print(f"raw Ray actor calls        {raw:10,.0f} tasks/s")
    print(f"pepper's Ray executor      {ours:10,.0f} tasks/s")
    print(f"pepper / raw Ray           {ours / raw:10.2f}x   (target >= 0.70x)")


if __name__ == "__main__":
    main()
