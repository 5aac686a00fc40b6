"""Offline ``status`` and ``cancel`` of one task (a process without an engine) against the size of the backlog.

    .venv/bin/python benchmarks/offline_status.py             # 20,000 pending tasks
    .venv/bin/python benchmarks/offline_status.py --tasks 2000

Fills a fresh database with pending tasks (and one small chain), then times, with no engine in the
process: the status of one task in the middle of the backlog, and cancelling one task with dependents.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, pepper.Runtime(home=home) as runtime:
        orchestrator = pepper.TaskOrchestrator(runtime=runtime)
        orchestrator.submit_tasks([{"task_id": f"t{i}", "task_type": "work"} for i in range(args.tasks)])
        middle = f"t{args.tasks // 2}"
        status = _best(args.repeat, lambda: orchestrator.get_task_status(middle))
        cancels = []
        for i in range(args.repeat):
            orchestrator.submit_tasks(
                [
                    {"task_id": f"root{i}", "task_type": "work"},
                    {"task_id": f"leaf{i}", "task_type": "work", "dependencies": [f"root{i}"]},
                ]
            )
            started = time.perf_counter()
            orchestrator.cancel_task(f"root{i}")
            cancels.append(time.perf_counter() - started)
            assert orchestrator.get_task_status(f"leaf{i}").state.value == "cancelled"
        print(f"{args.tasks} pending tasks: status {status * 1000:.2f} ms, cancel {min(cancels) * 1000:.2f} ms")


def _best(repeat: int, call) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    main()
