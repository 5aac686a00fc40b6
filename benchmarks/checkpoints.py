"""What a commit costs when SQLite checkpoints within it, beside when a thread of its own checkpoints.

    .venv/bin/python benchmarks/checkpoints.py [--commits 1000] [--rounds 9] [--rows 2]

One durable SQLite store (WAL, synchronous=NORMAL) of pepper's schema, written in commits as small as a chain's
(where each commit ends one task and claims the next): ``--rows`` task saves a commit. Bursts of ``--commits``
commits alternate, in the same process and on the same file, between SQLite's own checkpoint (the commit that
takes the write-ahead log past 1,000 pages copies it into the database file) and ``store.checkpoints`` (a thread
copies it every 0.1 s, and the commits never do). Prints the median time a commit takes either way, and their
ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pepper.model.record import TaskRecord
from pepper.model.task import Task, TaskState
from pepper.store.checkpoints import BACKSTOP_PAGES, Checkpointer
from pepper.store.protocol import TaskSave, WriteSet
from pepper.store.sqlite import SQLiteStore

SQLITE_DEFAULT_PAGES = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1000, help="commits a burst (default 1000)")
    parser.add_argument("--rounds", type=int, default=9, help="bursts of each kind, alternating (default 9)")
    parser.add_argument("--rows", type=int, default=2, help="task saves a commit (default 2: an end and a claim)")
    args = parser.parse_args()
    for name in ("commits", "rounds", "rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    with tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder:
        store = SQLiteStore(str(Path(folder) / "bench.db"))
        try:
            timings = compare(store, args.commits, args.rounds, args.rows)
        finally:
            store.close()
    medians = {kind: statistics.median(times) for kind, times in timings.items()}
    print(f"{args.rounds} bursts of {args.commits:,} commits each way, {args.rows} task saves a commit:")
    print(f"  SQLite checkpoints within the commits   {medians['within']:7.1f} µs a commit (median)")
    print(f"  a thread of its own checkpoints         {medians['thread']:7.1f} µs a commit (median)")
    print(f"  thread / within: {medians['thread'] / medians['within']:.2f}x")


def compare(store: SQLiteStore, commits: int, rounds: int, rows: int) -> dict[str, list[float]]:
    """µs a commit, for each burst of each kind."""
    tasks = [Task(f"t-{i}", "bench") for i in range(commits * rounds * 2 * rows + rows)]
    store.commit(WriteSet(submissions=[tasks]), "bench")
    versions = dict.fromkeys((t.task_id for t in tasks), 1)
    chain = iter(tasks)
    timings: dict[str, list[float]] = {"within": [], "thread": []}
    for _ in range(rounds):
        for kind, times in timings.items():
            thread = None
            if kind == "thread":
                thread = Checkpointer(store.path)
                thread.start()
            with store.lock:
                pages = BACKSTOP_PAGES if thread else SQLITE_DEFAULT_PAGES
                store.conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
            began = time.perf_counter()
            for _ in range(commits):
                saves = []
                for task in (next(chain) for _ in range(rows)):
                    record = TaskRecord(task, TaskState.IN_PROGRESS, attempts=1, agent_id="bench", owner="bench")
                    saves.append(TaskSave.of(record, versions[task.task_id]))
                    versions[task.task_id] += 1
                store.commit(WriteSet(saves=saves), "bench")
            times.append((time.perf_counter() - began) / commits * 1e6)
            if thread is not None:
                thread.stop()
    return timings


if __name__ == "__main__":
    main()
