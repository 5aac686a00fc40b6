"""What task logs cost: tasks/s with logs kept (silent agents, and agents writing a line each) against logs off,
in the same run.

    .venv/bin/python benchmarks/task_logs.py              # 5,000 tasks, median of 3
    .venv/bin/python benchmarks/task_logs.py --tasks 2000 --repeat 1

Each case: a fresh SQLite file, one async no-op agent (capacity 100), N independent tasks submitted at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper


def _run(tasks: int, limit: int, write: bool) -> float:
    with tempfile.TemporaryDirectory() as home, pepper.Runtime(db=f"{home}/p.db", home=home,
                                                               task_log_limit=limit) as runtime:  # fmt: skip

        @pepper.agent("noop", task_types=["t"], capacity=100, runtime=runtime)
        async def noop(task: pepper.TaskRun) -> int:
            if write:
                task.log("one line")
            return 1

        orchestrator = pepper.TaskOrchestrator(runtime)
        runtime.start()
        ids = [f"t{n}" for n in range(tasks)]
        started = time.perf_counter()
        orchestrator.submit_tasks([{"task_id": i, "task_type": "t"} for i in ids])
        orchestrator.wait(ids, timeout=600)
        return tasks / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = {"logs off (baseline)": (0, False), "logs on, silent agents": (2**20, False),
             "logs on, a line per task": (2**20, True)}  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):  # interleaved, so a busy moment of the machine weighs on every case alike
        for name, (limit, write) in cases.items():
            rates[name].append(_run(args.tasks, limit, write))
    results = {name: statistics.median(found) for name, found in rates.items()}
    base = results["logs off (baseline)"]
    for name, rate in results.items():
        print(f"{name:28} {rate:9.0f} tasks/s  {rate / base:6.2f}x baseline")


if __name__ == "__main__":
    main()
