"""Command agents running ``true``: pepper beside a bare asyncio subprocess loop, in the same run.

    .venv/bin/python benchmarks/command_agents.py [--tasks 2000] [--capacity 8] [--rounds 3]

pepper runs ``--tasks`` tasks on one command agent whose command is ``true``, with ``--capacity`` running at
once (a durable SQLite file; submitted in one go, waited for). The baseline starts as many ``/bin/sh -c true``
with ``asyncio.create_subprocess_exec`` on a plain loop, ``--capacity`` in flight, each with its stdin,
stdout and stderr piped (what a command agent needs: the task goes in, its result and log come out). Rounds
alternate the two; prints processes per second of each (medians) and their ratio, and the CPU time this
process spent per task (all its threads, not the children's): on a busy machine the rates swing with what
else runs, the CPU time much less.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper
from pepper.agents import CommandAgent
from pepper.core import TaskOrchestrator

_PIPE = asyncio.subprocess.PIPE


def bare(tasks: int, capacity: int) -> tuple[float, float]:
    """Seconds a plain asyncio loop takes to run ``tasks`` shells running ``true``, ``capacity`` at once, and
    the CPU seconds it spends doing so."""

    async def main() -> tuple[float, float]:
        left = iter(range(tasks))

        async def worker() -> None:
            for _ in left:
                proc = await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", "true", stdin=_PIPE, stdout=_PIPE, stderr=_PIPE, start_new_session=True
                )
                await proc.communicate(b"{}")
                assert proc.returncode == 0

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(capacity)))
        return time.perf_counter() - start, time.process_time() - cpu

    return asyncio.run(main())


def with_pepper(tasks: int, capacity: int, folder: Path, round_no: int) -> tuple[float, float]:
    """Seconds pepper takes to run ``tasks`` tasks on a command agent running ``true`` (capacity ``capacity``),
    and the CPU seconds it spends doing so."""
    home = folder / f"round-{round_no}"
    with pepper.Runtime(db=str(home / "bench.db"), home=str(home)) as runtime:
        runtime.register_agent(CommandAgent("true", "true", task_types=["t"], capacity=capacity))
        orchestrator = TaskOrchestrator(runtime)
        runtime.start()
        warm = [f"warm-{i}" for i in range(2 * capacity)]
        orchestrator.submit_tasks([{"id": task_id, "type": "t"} for task_id in warm])
        orchestrator.wait(warm, timeout=600)
        ids = [f"t-{i}" for i in range(tasks)]
        start, cpu = time.perf_counter(), time.process_time()
        orchestrator.submit_tasks([{"id": task_id, "type": "t"} for task_id in ids])
        statuses = orchestrator.wait(ids, timeout=3600)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        failed = [s.task_id for s in statuses if s.state.value != "completed"]
        assert not failed, f"{len(failed)} tasks did not complete, e.g. {failed[:3]}"
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bare_rates, pepper_rates, bare_cpu, pepper_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for round_no in range(args.rounds):
            elapsed, cpu = bare(args.tasks, args.capacity)
            bare_rates.append(args.tasks / elapsed)
            bare_cpu.append(cpu / args.tasks * 1e6)
            elapsed, cpu = with_pepper(args.tasks, args.capacity, Path(folder), round_no)
            pepper_rates.append(args.tasks / elapsed)
            pepper_cpu.append(cpu / args.tasks * 1e6)
            print(f"  round {round_no + 1}: bare {bare_rates[-1]:7.0f}/s {bare_cpu[-1]:5.0f} us CPU each   "
                  f"pepper {pepper_rates[-1]:7.0f}/s {pepper_cpu[-1]:5.0f} us CPU each")  # fmt: skip
    bare_rate, pepper_rate = statistics.median(bare_rates), statistics.median(pepper_rates)
    print(f"{args.tasks} tasks running `true`, {args.capacity} at once (medians of {args.rounds} rounds):")
    bare_us, pepper_us = statistics.median(bare_cpu), statistics.median(pepper_cpu)
    print(f"  bare asyncio subprocess loop {bare_rate:7.0f} processes/s {bare_us:5.0f} us CPU each")
    print(f"  pepper command agent         {pepper_rate:7.0f} tasks/s     {pepper_us:5.0f} us CPU each")
    ratio = pepper_rate / bare_rate
    print(f"  pepper / bare: {ratio:.2f}x   target >= 0.95x: {'met' if ratio >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    main()
