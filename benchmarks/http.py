"""Submit + status round trips over HTTP beside the same calls in-process, in one run.

A runtime on a fresh SQLite file serves the API on 127.0.0.1 (a thread of this process, as the tests start it).
The same ``TaskOrchestrator`` calls are timed twice: on that runtime directly, and on ``pepper.connect(url)``
(each call a request). No agent takes the task type, so the tasks stay queued and only the calls are measured.
Prints round trips per second and p50/p99 latency of one round trip (a submit, then a status).

    python benchmarks/http.py [--rounds 500]
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on the path, and its name would hide the standard library's http
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import statistics
import tempfile
import time

import pepper
from pepper.core import TaskOrchestrator
from pepper.http.app import create_app
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token


def rounds(orchestrator: TaskOrchestrator, prefix: str, count: int) -> list[float]:
    """Seconds each submit + status round trip took."""
    taken = []
    for i in range(count):
        started = time.perf_counter()
        task = orchestrator.submit_task(f"{prefix}-{i}", "queued-only", inputs={"i": i})
        orchestrator.get_task_status(task.task_id)
        taken.append(time.perf_counter() - started)
    return taken


def report(label: str, taken: list[float]) -> None:
    ordered = sorted(taken)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"{label:<12} {len(taken) / sum(taken):>9.0f} round trips/s   p50 {statistics.median(ordered) * 1000:6.2f} ms"
          f"   p99 {p99 * 1000:6.2f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="round trips per side (default 500)")
    count = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        runtime = pepper.Runtime(db=str(Path(folder) / "bench.db"), home=str(Path(folder) / "home"))
        runtime.start()
        token = create_token(runtime.store, "bench", "write", time.time())
        server = ThreadedServer(create_app(runtime))
        url = server.start()
        try:
            local = TaskOrchestrator(runtime)
            rounds(local, "warm-local", 20)  # first calls open connections and warm caches on both sides
            in_process = rounds(local, "local", count)
            with pepper.connect(url, token) as remote:
                over_http = TaskOrchestrator(remote)
                rounds(over_http, "warm-http", 20)
                http = rounds(over_http, "http", count)
        finally:
            server.stop()
            runtime.close()
    print(f"submit + status, {count} round trips each, SQLite file, server on {url}")
    report("in-process", in_process)
    report("over HTTP", http)
    print(f"HTTP costs {statistics.median(http) / statistics.median(in_process):.1f}x the in-process median")


if __name__ == "__main__":
    main()
