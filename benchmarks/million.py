"""Many independent tasks submitted and waited for in one call: the time it takes and the memory it needs.

    .venv/bin/python benchmarks/million.py [--tasks 1000000] [--capacity 1000]

Submits --tasks no-op tasks (in batches of 10,000) to a durable SQLite file, run by one agent, then waits for
all of them with one ``wait`` call. Prints tasks/s from the first submit to the end of the wait, and the
process's peak resident memory (``resource.getrusage``) beside what it was before the first task: the engine
keeps at most ``keep_finished`` finished tasks in memory, so the peak should not grow with the number of tasks.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper
from pepper.core import TaskOrchestrator

BATCH = 10_000


async def work(task: pepper.TaskRun) -> None:
    return None


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=int, default=1000)
    args = parser.parse_args()
    if args.tasks < 1:
        parser.error(f"--tasks must be at least 1, got {args.tasks}")
    with (
        tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder,
        pepper.Runtime(db=str(Path(folder) / "bench.db"), home=str(Path(folder) / "home")) as runtime,
    ):
        pepper.agent("bench", task_types=["bench"], capacity=args.capacity, runtime=runtime)(work)
        orchestrator = TaskOrchestrator(runtime)
        runtime.start()
        before = peak_mb()
        ids = [f"m-{i}" for i in range(args.tasks)]
        start = time.perf_counter()
        for first in range(0, args.tasks, BATCH):
            orchestrator.submit_tasks([{"id": tid, "type": "bench"} for tid in ids[first : first + BATCH]])
        submitted = time.perf_counter() - start
        statuses = orchestrator.wait(ids, timeout=24 * 3600)
        elapsed = time.perf_counter() - start
    done = sum(1 for s in statuses if s.state is pepper.TaskState.COMPLETED)
    if done != args.tasks:
        raise SystemExit(f"only {done:,} of {args.tasks:,} tasks completed")
    print(f"{args.tasks:,} tasks submitted in {submitted:.1f} s and all waited for in {elapsed:.1f} s: "
          f"{args.tasks / elapsed:,.0f} tasks/s")  # fmt: skip
    print(f"peak resident memory {peak_mb():,.0f} MB (before the first task: {before:,.0f} MB)")


if __name__ == "__main__":
    main()
