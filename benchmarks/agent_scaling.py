"""Throughput as more agents share one task type, the total capacity kept the same, in the same run.

    .venv/bin/python benchmarks/agent_scaling.py [--tasks 10000] [--capacity 1000] [--repeat 3]

W1 (independent no-op tasks on a durable SQLite file) run by 1 agent of capacity 1,000, then 10 agents of
capacity 100, 100 of 10 and 1,000 of 1, all accepting the task type; each round runs every pool once, and
each pool's median over the rounds is shown. Prints tasks/s of each and its ratio to the single agent:
choosing among many agents should cost about what choosing one does.

Then, on the same pool, a chain of ``--chain`` tasks (each depends on the one before): one task ready at a
time, every agent free and known from the burst, so each start chooses among all of them. Prints hops/s and
the ratio to the single agent.
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
from pepper.core import TaskOrchestrator


async def work(task: pepper.TaskRun) -> dict:
    return {"ok": True}


def run(agents: int, capacity: int, tasks: int, chain: int) -> tuple[float, float]:
    """Seconds from submitting ``tasks`` to all of them completed on ``agents`` agents of ``capacity``; then
    those of a chain of ``chain`` tasks on the same agents."""
    with (
        tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder,
        pepper.Runtime(db=str(Path(folder) / "bench.db"), home=str(Path(folder) / "home")) as runtime,
    ):
        for i in range(agents):
            pepper.agent(f"bench-{i:04d}", task_types=["bench"], capacity=capacity, runtime=runtime)(work)
        orchestrator = TaskOrchestrator(runtime)
        runtime.start()
        ids = [f"t-{i}" for i in range(tasks)]
        start = time.perf_counter()
        orchestrator.submit_tasks([{"id": tid, "type": "bench"} for tid in ids])
        statuses = orchestrator.wait(ids, timeout=600)
        burst = time.perf_counter() - start
        links = [f"c-{i}" for i in range(chain)]
        start = time.perf_counter()
        orchestrator.submit_tasks(
            [{"id": tid, "type": "bench", "dependencies": [links[i - 1]] if i else []} for i, tid in enumerate(links)]
        )
        statuses += orchestrator.wait(links, timeout=600)
        hops = time.perf_counter() - start
    failed = [s.task_id for s in statuses if s.state is not pepper.TaskState.COMPLETED]
    if failed:
        raise SystemExit(f"{len(failed)} tasks did not complete, e.g. {failed[:3]}")
    return burst, hops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--capacity", type=int, default=1000, help="total capacity, split among the agents")
    parser.add_argument("--repeat", type=int, default=3, help="runs per pool; the median is shown")
    parser.add_argument("--chain", type=int, default=1000, help="tasks of the chain run after the burst")
    args = parser.parse_args()
    pools = [n for n in (1, 10, 100, 1000) if n <= args.capacity]
    # Round by round, every pool once: a machine that slows down (or a heap that grows) over the minutes this
    # takes weighs on every pool alike, not on the last ones measured.
    seconds: dict[int, list[float]] = {agents: [] for agents in pools}
    chained: dict[int, list[float]] = {agents: [] for agents in pools}
    for round_ in range(args.repeat):
        for agents in pools:
            burst, hops = run(agents, args.capacity // agents, args.tasks, args.chain)
            seconds[agents].append(burst)
            chained[agents].append(hops)
        print(f"round {round_ + 1} of {args.repeat} done", file=sys.stderr, flush=True)
    rates = {agents: args.tasks / statistics.median(times) for agents, times in seconds.items()}
    hop_rates = {agents: args.chain / statistics.median(times) for agents, times in chained.items()}
    print(f"{'pool':<28}{'burst (W1)':>15}{'':>7}{'chain':>15}")
    for agents in pools:
        ratio, hop_ratio = rates[agents] / rates[pools[0]], hop_rates[agents] / hop_rates[pools[0]]
        print(f"{agents:>5} agent(s) x capacity {args.capacity // agents:<5} {rates[agents]:>9,.0f} tasks/s  "
              f"{ratio:5.2f}x {hop_rates[agents]:>9,.0f} hops/s  {hop_ratio:5.2f}x")  # fmt: skip
    print(f"\nW1: {args.tasks:,} tasks, total capacity {args.capacity:,}, then a chain of {args.chain:,} on the same "
          f"agents; median of {args.repeat} run(s); ratios against 1 agent of capacity {args.capacity:,}")  # fmt: skip
    last = pools[-1]
    verdict = "met" if rates[last] >= 0.8 * rates[pools[0]] else "NOT met"
    print(f"target {last:,} agents >= 0.8x one agent: {verdict}")


if __name__ == "__main__":
    main()
