"""Many independent tasks submitted and waited for in one call: the time it takes and the memory it needs.

    .venv/bin/python benchmarks/million.py [--tasks 1000000] [--capacity 1000]

Submits --tasks no-op tasks (in batches of 10,000) to a durable SQLite file, run by one agent, then waits for
all of them with one ``wait`` call. Prints tasks/s from the first submit to the end of the wait, and the
process's peak resident memory (``resource.getrusage``) beside what it was before the first task: the engine
keeps at most ``keep_finished`` finished tasks in memory, so the peak should not grow with the number of tasks
beyond the statuses the wait returns. It also prints the CPU time the process used (on a shared machine a
steadier figure than the wall clock) and the part of it the cycle collector took.

``--gc off`` keeps the cycle collector at its usual pace during the burst (``pepper.engine.collector`` collects
its young generation less often while many tasks are in memory); ``--gc compare`` runs the burst both ways, each
in a fresh process, alternating ``--rounds`` times, and prints the medians side by side.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine import collector

BATCH = 10_000


async def work(task: pepper.TaskRun) -> None:
    return None


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User and system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CollectorClock:
    """The time the cycle collector takes, summed over its runs (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.runs = 0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began
            self.runs += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--gc", choices=("on", "off", "compare"), default="on")
    parser.add_argument("--rounds", type=int, default=3, help="with --gc compare: runs of each")
    parser.add_argument("--figures", action="store_true", help=argparse.SUPPRESS)  # for compare's own runs
    args = parser.parse_args()
    if args.tasks < 1:
        parser.error(f"--tasks must be at least 1, got {args.tasks}")
    if args.gc == "compare":
        compare(args.tasks, args.capacity, args.rounds)
        return
    if args.gc == "off":
        collector.BURST = sys.maxsize
    with (
        tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder,
        pepper.Runtime(db=str(Path(folder) / "bench.db"), home=str(Path(folder) / "home")) as runtime,
    ):
        pepper.agent("bench", task_types=["bench"], capacity=args.capacity, runtime=runtime)(work)
        orchestrator = TaskOrchestrator(runtime)
        runtime.start()
        before = peak_mb()
        ids = [f"m-{i}" for i in range(args.tasks)]
        collecting = CollectorClock()
        gc.callbacks.append(collecting)
        start, cpu = time.perf_counter(), cpu_seconds()
        for first in range(0, args.tasks, BATCH):
            orchestrator.submit_tasks([{"id": tid, "type": "bench"} for tid in ids[first : first + BATCH]])
        submitted = time.perf_counter() - start
        statuses = orchestrator.wait(ids, timeout=24 * 3600)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        gc.callbacks.remove(collecting)
    done = sum(1 for s in statuses if s.state is pepper.TaskState.COMPLETED)
    if done != args.tasks:
        raise SystemExit(f"only {done:,} of {args.tasks:,} tasks completed")
    print(f"{args.tasks:,} tasks submitted in {submitted:.1f} s and all waited for in {elapsed:.1f} s: "
          f"{args.tasks / elapsed:,.0f} tasks/s")  # fmt: skip
    print(f"peak resident memory {peak_mb():,.0f} MB (before the first task: {before:,.0f} MB)")
    print(f"CPU time {cpu:.1f} s, of which the cycle collector {collecting.seconds:.1f} s in {collecting.runs:,} runs")
    if args.figures:  # read by compare(), which runs this script once per setting
        print(f"figures: {elapsed:.3f} {peak_mb():.1f}")


def compare(tasks: int, capacity: int, rounds: int) -> None:
    """The burst with and without the collector's slower pace, each in a fresh process (peak memory is per
    process), alternating; prints the medians."""
    figures: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for mode in figures:
            argv = [
                sys.executable,
                __file__,
                "--tasks",
                str(tasks),
                "--capacity",
                str(capacity),
                "--gc",
                mode,
                "--figures",
            ]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            line = next(line for line in out.splitlines() if line.startswith("figures: "))
            elapsed, peak = map(float, line.split()[1:])
            figures[mode].append((elapsed, peak))
            print(f"  gc {mode:3}: {elapsed:6.1f} s, peak {peak:,.0f} MB")
    print(f"{tasks:,} tasks, medians of {rounds} runs each:")
    medians = {}
    for mode, runs in figures.items():
        elapsed, peak = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        medians[mode] = elapsed
        label = "young generation collected less often" if mode == "on" else "the collector's usual pace"
        print(f"  {label:38} {elapsed:6.1f} s ({tasks / elapsed:,.0f} tasks/s), peak {peak:,.0f} MB")
    print(f"  time with / without: {medians['on'] / medians['off']:.2f}x")


if __name__ == "__main__":
    main()
