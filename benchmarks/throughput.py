"""Throughput of pepper against a bare asyncio + SQLite runner, in the same run.

    .venv/bin/python benchmarks/throughput.py            # full size, median of 3
    .venv/bin/python benchmarks/throughput.py --scale 0.1 --repeat 1

Workloads (durable SQLite file, no-op async agent):
  W1  10,000 independent tasks
  W2  100 layers x 100 tasks, each depending on 2 random tasks of the previous
      layer; every task receives its dependencies' results
  W3  a chain of 1,000 tasks (each depends on the one before): hops/s
Prints tasks/s for pepper and for the baseline, and their ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baseline import run_baseline

import pepper
from pepper.core import TaskOrchestrator

Workload = list[tuple[str, list[str]]]


def w1(scale: float) -> Workload:
    return [(f"w1-{i}", []) for i in range(int(10_000 * scale))]


def w2(scale: float) -> Workload:
    rng = random.Random(42)
    layers, width = max(2, int(100 * scale**0.5)), max(2, int(100 * scale**0.5))
    tasks: Workload = []
    previous: list[str] = []
    for layer in range(layers):
        current = [f"w2-{layer}-{i}" for i in range(width)]
        for tid in current:
            tasks.append((tid, rng.sample(previous, 2) if previous else []))
        previous = current
    return tasks


def w3(scale: float) -> Workload:
    n = max(2, int(1_000 * scale))
    return [(f"w3-{i}", [f"w3-{i - 1}"] if i else []) for i in range(n)]


async def work(task: pepper.TaskRun) -> dict:
    return {"ok": True, "n": len(task.dependency_results)}


def run_pepper(path: str, tasks: Workload, capacity: int = 100, metrics: bool = True) -> float:
    """Seconds from submitting ``tasks`` to all of them completed (runtime set up before)."""
    with pepper.Runtime(db=path, home=str(Path(path).parent / "home"), metrics=metrics) as runtime:
        pepper.agent("bench", task_types=["bench"], capacity=capacity, runtime=runtime)(work)
        orchestrator = TaskOrchestrator(runtime)
        runtime.start()
        specs = [{"id": tid, "type": "bench", "dependencies": deps} for tid, deps in tasks]
        start = time.perf_counter()
        orchestrator.submit_tasks(specs)
        statuses = orchestrator.wait([tid for tid, _ in tasks], timeout=600)
        elapsed = time.perf_counter() - start
        failed = [s.task_id for s in statuses if s.state is not pepper.TaskState.COMPLETED]
        if failed:
            raise SystemExit(f"pepper: {len(failed)} tasks did not complete, e.g. {failed[:3]}")
        return elapsed


def timed(runner: Callable[[str, Workload], float], tasks: Workload) -> float:
    with tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder:
        return runner(str(Path(folder) / "bench.db"), tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="size factor for every workload (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload; the median is shown (default 3)")
    args = parser.parse_args()

    rows = []
    for name, make, unit in (("W1", w1, "tasks/s"), ("W2", w2, "tasks/s"), ("W3", w3, "hops/s")):
        tasks = make(args.scale)
        ours = statistics.median(timed(run_pepper, tasks) for _ in range(args.repeat))
        base = statistics.median(timed(run_baseline, tasks) for _ in range(args.repeat))
        rows.append((name, len(tasks), len(tasks) / ours, len(tasks) / base, unit))
        print(f"{name}: {len(tasks):>6} tasks  pepper {len(tasks) / ours:>9,.0f} {unit}", flush=True)

    print()
    print(f"{'workload':<9}{'tasks':>8}{'pepper':>19}{'baseline':>19}{'pepper/baseline':>18}")
    for name, n, ours, base, unit in rows:
        print(f"{name:<9}{n:>8}{ours:>10,.0f} {unit:<8}{base:>10,.0f} {unit:<8}{ours / base:>12.2f}x")
    print(
        f"\nmedian of {args.repeat} run(s); durable SQLite files (WAL, synchronous=NORMAL); pepper {pepper.__version__}"
    )
    targets = {"W1": 25_000, "W2": 25_000, "W3": 10_000}
    for name, _n, ours, _base, unit in rows:
        verdict = "met" if ours >= targets[name] else "NOT met"
        print(f"target {name}: >= {targets[name]:,} {unit}: {verdict}")


if __name__ == "__main__":
    main()
