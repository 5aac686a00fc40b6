"""What pepper's Ray executor costs over calling Ray actors directly.

The same no-op work, in the same run, on one local Ray (2 CPUs). Each round times N tasks three ways:

- **pepper**: N tasks submitted to pepper and run by an agent with ``executor="ray"`` and capacity C (each
  task claimed and committed, run on the agent's actor, its result committed), from the first submission to
  the last end. pepper keeps at most C attempts in flight on the agent.
- **raw Ray, C in flight** (the like-for-like baseline): N calls of a no-op method made directly on one Ray
  actor with ``max_concurrency=C``, at most C in flight at once (Ray's own pattern for bounding pending
  work: submit C, then one more each time ``ray.wait`` returns a finished one).
- **raw Ray, all in flight** (for reference): the same N calls all submitted at once, then ``ray.get``.

Both raw baselines use one actor, as pepper uses one for its agent, and no-op methods (pepper's agent is a
no-op function). The figures are medians over the rounds (the three run one after another in each round,
so a busy moment of the machine hits all of them); pepper's target is >= 0.7x the like-for-like baseline.

    python benchmarks/ray_overhead.py [--tasks 2000] [--capacity 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
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

TARGET = 0.7


def noop(task: object) -> None:
    return None


class Noop:
    def run(self, *args: object) -> None:
        return None


def raw_actor(capacity: int) -> object:
    actor = ray.remote(Noop).options(num_cpus=0, max_concurrency=capacity).remote()
    ray.get(actor.run.remote())  # started
    return actor


def raw_bounded(tasks: int, capacity: int) -> float:
    """Tasks per second calling one actor directly, at most ``capacity`` calls in flight."""
    actor = raw_actor(capacity)
    start = time.perf_counter()
    in_flight = [actor.run.remote(i) for i in range(min(capacity, tasks))]
    sent = len(in_flight)
    while in_flight:
        done, in_flight = ray.wait(in_flight, num_returns=1)
        ray.get(done)
        if sent < tasks:
            in_flight.append(actor.run.remote(sent))
            sent += 1
    elapsed = time.perf_counter() - start
    ray.kill(actor)
    return tasks / elapsed


def raw_all_at_once(tasks: int, capacity: int) -> float:
    """Tasks per second calling one actor directly, all calls in flight at once."""
    actor = raw_actor(capacity)
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
    parser.add_argument("--capacity", type=int, default=8, help="the agent's capacity = raw Ray's calls in flight")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bounded, at_once, ours = [], [], []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as folder:
                bounded.append(raw_bounded(args.tasks, args.capacity))
                at_once.append(raw_all_at_once(args.tasks, args.capacity))
                ours.append(through_pepper(args.tasks, args.capacity, folder))
    finally:
        ray.shutdown()
    raw, reference, mine = (statistics.median(v) for v in (bounded, at_once, ours))
    print(f"{args.tasks} no-op tasks on one Ray actor (ray {ray.__version__}), medians of {args.rounds} rounds")
    print(f"raw Ray, {args.capacity} calls in flight       {raw:10,.0f} tasks/s   (like for like)")
    print(f"raw Ray, all {args.tasks} in flight      {reference:10,.0f} tasks/s   (reference)")
    print(f"pepper, capacity {args.capacity}             {mine:10,.0f} tasks/s")
    print(f"pepper / raw Ray, like for like  {mine / raw:10.2f}x   (target >= {TARGET:.2f}x)")
    print(f"pepper / raw Ray, all in flight  {mine / reference:10.2f}x")


if __name__ == "__main__":
    main()
