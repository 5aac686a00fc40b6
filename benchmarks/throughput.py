"""Throughput of pepper against a bare asyncio + SQLite runner, in the same run.

    .venv/bin/python benchmarks/throughput.py            # full size, median of 3
    .venv/bin/python benchmarks/throughput.py --scale 0.1 --repeat 1
    .venv/bin/python benchmarks/throughput.py --db postgresql://user:pw@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/throughput.py --workers 2  # two worker processes share each store
    .venv/bin/python benchmarks/throughput.py --db postgresql://... --workers 1,2  # one worker beside two

Workloads (durable SQLite file, no-op async agent):
  W1  10,000 independent tasks
  W2  100 layers x 100 tasks, each depending on 2 random tasks of the previous
      layer; every task receives its dependencies' results
  W3  a chain of 1,000 tasks (each depends on the one before): hops/s
Prints tasks/s for pepper and for the baseline, and their ratio. With ``--db URL`` pepper also runs on that
PostgreSQL server, beside SQLite, each run in a fresh database it creates and drops (the URL's role needs
CREATEDB). With ``--workers N`` the tasks are submitted by this process and run by N worker processes sharing
the store, instead of by an engine in this process; ``--workers 1,2`` measures both in the same run and prints
how two workers compare with one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


#: How a worker process learns the database: not on its command line, where a password would show in `ps`.
DB_ENV = "PEPPER_BENCH_DB"


async def work(task: pepper.TaskRun) -> dict:
    return {"ok": True, "n": len(task.dependency_results)}


def specs_of(tasks: Workload) -> list[dict]:
    return [{"id": tid, "type": "bench", "dependencies": deps} for tid, deps in tasks]


def run_pepper(path: str, tasks: Workload, capacity: int = 100, metrics: bool = True, home: str | None = None) -> float:
    """Seconds from submitting ``tasks`` to all of them completed, run by an engine in this process."""
    home = home or str(Path(path).parent / "home")
    with pepper.Runtime(db=path, home=home, metrics=metrics) as runtime:
        pepper.agent("bench", task_types=["bench"], capacity=capacity, runtime=runtime)(work)
        orchestrator = TaskOrchestrator(runtime)
        runtime.start()
        start = time.perf_counter()
        orchestrator.submit_tasks(specs_of(tasks))
        statuses = orchestrator.wait([tid for tid, _ in tasks], timeout=600)
        elapsed = time.perf_counter() - start
        failed = [s.task_id for s in statuses if s.state is not pepper.TaskState.COMPLETED]
        if failed:
            raise SystemExit(f"pepper: {len(failed)} tasks did not complete, e.g. {failed[:3]}")
        return elapsed


def serve(home: str, capacity: int) -> None:
    """A worker process: runs bench tasks from the shared store until its standard input closes."""
    with pepper.Runtime(db=os.environ[DB_ENV], home=home) as runtime:
        pepper.agent("bench", task_types=["bench"], capacity=capacity, runtime=runtime)(work)
        runtime.start()
        print("ready", flush=True)
        sys.stdin.read()


def run_workers(db: str, home: str, tasks: Workload, workers: int, capacity: int = 100) -> float:
    """Seconds from submitting ``tasks`` (from this process) to all of them completed by ``workers`` processes."""
    command = [sys.executable, __file__, "--serve-capacity", str(capacity), "--serve-home"]
    env = {**os.environ, DB_ENV: db}
    procs = [
        subprocess.Popen([*command, f"{home}/worker-{i}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for i in range(workers)
    ]
    try:
        for proc in procs:  # every worker's agent is registered before the clock starts
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                raise SystemExit(f"a worker process did not start (exit {proc.wait()})")
        with pepper.Runtime(db=db, home=f"{home}/submitter") as runtime:
            orchestrator = TaskOrchestrator(runtime)
            runtime.store.count_by_state()  # opened, its schema ready, before the clock starts
            start = time.perf_counter()
            orchestrator.submit_tasks(specs_of(tasks))
            wait_completed(runtime, len(tasks))
            return time.perf_counter() - start
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()  # the worker's signal to stop
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_completed(runtime: pepper.Runtime, total: int, timeout: float = 600.0) -> None:
    """Until ``total`` tasks are stored as completed (one count per poll, not a status per task)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = runtime.store.count_by_state()
        if counts.get("completed", 0) >= total:
            return
        stuck = {state: n for state, n in counts.items() if state in ("failed", "parked", "cancelled") and n}
        if stuck:
            raise SystemExit(f"pepper: tasks did not complete: {stuck}")
        if time.monotonic() > deadline:
            raise SystemExit(f"pepper: not all tasks completed within {timeout:g}s: {counts}")
        time.sleep(0.02)  # counting scans the table: asked more often, it would take the workers' CPU (2 cores)


def where(url: str) -> str:
    """The server of a URL, for messages: never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A fresh database on the server of ``url`` (so every run starts empty), dropped after; its URL."""
    import psycopg

    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise SystemExit(f"cannot connect to PostgreSQL at {where(url)}: {str(exc).strip()}") from None
    name = f"pepper_bench_{uuid.uuid4().hex[:12]}"
    try:
        try:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        except psycopg.errors.InsufficientPrivilege:
            raise SystemExit(
                "the role of --db may not create databases, and every run uses a fresh one: "
                "grant it with ALTER ROLE ... CREATEDB"
            ) from None
        parts = urlsplit(url)
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


Place = Callable[[], contextlib.AbstractContextManager[tuple[str, str]]]


@contextmanager
def sqlite_place() -> Iterator[tuple[str, str]]:
    """``(database, home)`` for one run on a fresh SQLite file."""
    with tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder:
        yield str(Path(folder) / "bench.db"), str(Path(folder) / "home")


def postgres_place(url: str) -> Place:
    @contextmanager
    def place() -> Iterator[tuple[str, str]]:
        """``(database, home)`` for one run on a fresh PostgreSQL database."""
        with scratch_database(url) as db, tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder:
            yield db, str(Path(folder) / "home")

    return place


def measure(place: Place, tasks: Workload, workers: int) -> float:
    with place() as (db, home):
        return run_workers(db, home, tasks, workers) if workers else run_pepper(db, tasks, home=home)


def timed(runner: Callable[[str, Workload], float], tasks: Workload) -> float:
    with tempfile.TemporaryDirectory(prefix="pepper-bench-") as folder:
        return runner(str(Path(folder) / "bench.db"), tasks)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="size factor for every workload (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload; the median is shown (default 3)")
    parser.add_argument(
        "--db", metavar="URL", help="also run on this PostgreSQL server (postgresql://user:password@host:port/dbname)"
    )
    parser.add_argument(
        "--workers",
        default="0",
        metavar="N[,N...]",
        help="run the tasks in N worker processes sharing the store (default 0: an engine in this process); "
        "several counts, such as 1,2, are measured in the same run",
    )
    parser.add_argument("--serve-home", help=argparse.SUPPRESS)  # a worker process of --workers
    parser.add_argument("--serve-capacity", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.db is not None and urlsplit(args.db).scheme not in ("postgresql", "postgres"):
        parser.error("--db takes a PostgreSQL URL, postgresql://user:password@host:port/dbname (SQLite always runs)")
    try:
        args.workers = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers takes numbers separated by commas, such as 2 or 1,2; got {args.workers!r}")
    if not all(0 <= n <= 32 for n in args.workers) or len(set(args.workers)) != len(args.workers):
        parser.error(f"--workers takes different counts between 0 and 32, got {args.workers}")
    return args


def main() -> None:
    args = parse_args()
    if args.serve_home:
        serve(args.serve_home, args.serve_capacity)
        return
    stores: list[tuple[str, Place]] = [("SQLite", sqlite_place)]
    if args.db:
        stores.append(("PostgreSQL", postgres_place(args.db)))
    counts = args.workers
    columns = [(f"{label} x{n}" if len(counts) > 1 else label, place, n) for label, place in stores for n in counts]

    rows = []
    for name, make, unit in (("W1", w1, "tasks/s"), ("W2", w2, "tasks/s"), ("W3", w3, "hops/s")):
        tasks = make(args.scale)
        rates = {}
        for label, place, workers in columns:
            seconds = statistics.median(measure(place, tasks, workers) for _ in range(args.repeat))
            rates[label] = len(tasks) / seconds
            print(f"{name}: {len(tasks):>6} tasks  pepper on {label:<14} {rates[label]:>9,.0f} {unit}", flush=True)
        base = len(tasks) / statistics.median(timed(run_baseline, tasks) for _ in range(args.repeat))
        rows.append((name, len(tasks), rates, base, unit))

    labels = [label for label, _place, _n in columns]
    first = labels[0]
    print()
    print(f"{'workload':<9}{'tasks':>8}" + "".join(f"{label:>19}" for label in labels) + f"{'baseline':>19}", end="")
    print(f"{first + '/baseline':>22}")
    for name, n, rates, base, unit in rows:
        line = f"{name:<9}{n:>8}" + "".join(f"{rates[label]:>10,.0f} {unit:<8}" for label in labels)
        print(line + f"{base:>10,.0f} {unit:<8}{rates[first] / base:>16.2f}x")
    engines = " / ".join("the engine in this process" if n == 0 else f"{n} worker process(es)" for n in counts)
    print(f"\nmedian of {args.repeat} run(s); tasks run by {engines}; durable SQLite files (WAL, synchronous=NORMAL)")
    if args.db:
        print(f"PostgreSQL at {where(args.db)}, a fresh database per run")
    print(f"pepper {pepper.__version__}")
    targets = {"W1": 25_000, "W2": 25_000, "W3": 10_000}
    for name, _n, rates, _base, unit in rows:
        verdict = "met" if rates[first] >= targets[name] else "NOT met"
        print(f"target {name} on {first}: >= {targets[name]:,} {unit}: {verdict}")
    if args.db:
        single = [n for n in (1, 0) if n in counts][:1]  # the engine in this process is one worker too
        if single:
            one = f"PostgreSQL x{single[0]}" if len(counts) > 1 else "PostgreSQL"
            w1_rate = rows[0][2][one]
            print(f"target W1 on PostgreSQL, one worker: >= 5,000 tasks/s: {'met' if w1_rate >= 5_000 else 'NOT met'}")
        if 1 in counts and 2 in counts:
            for name, _n, rates, _base, _unit in rows:
                ratio = rates["PostgreSQL x2"] / rates["PostgreSQL x1"]
                verdict = "met" if ratio >= 1.0 else "NOT met"
                print(f"target {name} on PostgreSQL, two workers >= one: {ratio:.2f}x: {verdict}")


if __name__ == "__main__":
    main()
