"""The yardstick: the least a durable asyncio + SQLite task runner has to do.

One table, tasks inserted in one transaction; a loop that marks ready tasks
running, runs each as a coroutine, and commits completions (with results)
once per loop turn; dependency counting in memory. No priorities, no agents,
no retries, no recovery, no validation: what pepper adds is measured against this.

benchmarks/throughput.py compares pepper with it; run alone, it times independent tasks:
    python benchmarks/baseline.py --tasks 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections import deque
from pathlib import Path


async def _noop(inputs: dict) -> dict:
    return {"ok": True, "n": len(inputs)}


def run_baseline(path: str, tasks: list[tuple[str, list[str]]], concurrency: int = 100) -> float:
    """Run ``tasks`` (id, dependency ids) to completion with results passed along; seconds taken."""
    return asyncio.run(_run(path, tasks, concurrency))


async def _run(path: str, tasks: list[tuple[str, list[str]]], concurrency: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, deps TEXT, state TEXT, result TEXT)")
    start = time.perf_counter()
    db.execute("BEGIN")
    db.executemany("INSERT INTO jobs VALUES (?, ?, 'pending', NULL)", [(tid, json.dumps(deps)) for tid, deps in tasks])
    db.execute("COMMIT")
    unmet = {tid: len(deps) for tid, deps in tasks}
    dependents: dict[str, list[str]] = {}
    for tid, deps in tasks:
        for dep in deps:
            dependents.setdefault(dep, []).append(tid)
    deps_of = dict(tasks)
    results: dict[str, dict] = {}
    ready = deque(tid for tid, n in unmet.items() if n == 0)
    done: list[tuple[str, dict]] = []
    running = 0
    remaining = len(tasks)
    loop = asyncio.get_running_loop()
    wake = loop.create_future()

    def finished(tid: str, fut: asyncio.Future) -> None:
        nonlocal running, wake
        running -= 1
        done.append((tid, fut.result()))
        if not wake.done():
            wake.set_result(None)

    while remaining:
        started = []
        while ready and running < concurrency:
            tid = ready.popleft()
            inputs = {dep: results[dep] for dep in deps_of[tid]}
            running += 1
            started.append(tid)
            task = loop.create_task(_noop(inputs))
            task.add_done_callback(lambda f, tid=tid: finished(tid, f))
        if started:
            db.execute("BEGIN")
            db.executemany("UPDATE jobs SET state = 'running' WHERE id = ?", [(t,) for t in started])
            db.execute("COMMIT")
        await wake
        wake = loop.create_future()
        batch, done[:] = list(done), []
        db.execute("BEGIN")
        db.executemany(
            "UPDATE jobs SET state = 'completed', result = ? WHERE id = ?", [(json.dumps(r), t) for t, r in batch]
        )
        db.execute("COMMIT")
        for tid, result in batch:
            results[tid] = result
            remaining -= 1
            for child in dependents.get(tid, ()):
                unmet[child] -= 1
                if unmet[child] == 0:
                    ready.append(child)
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000, help="independent tasks to run (default 10000)")
    parser.add_argument("--concurrency", type=int, default=100, help="tasks running at once (default 100)")
    args = parser.parse_args()
    if args.tasks < 1 or args.concurrency < 1:
        parser.error(f"--tasks and --concurrency must be at least 1, got {args.tasks} and {args.concurrency}")
    with tempfile.TemporaryDirectory(prefix="pepper-baseline-") as folder:
        tasks: list[tuple[str, list[str]]] = [(f"t-{i}", []) for i in range(args.tasks)]
        seconds = run_baseline(str(Path(folder) / "baseline.db"), tasks, args.concurrency)
    print(f"{args.tasks:,} tasks in {seconds:.2f} s: {args.tasks / seconds:,.0f} tasks/s")


if __name__ == "__main__":
    main()
