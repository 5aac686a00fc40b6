"""What a fan-out costs beside the same work written out step by step.

    .venv/bin/python benchmarks/fan_out.py [--items 1000] [--parallel 8]

Runs, on one SQLite file each, a workflow whose step fans out over ``--items`` items (at most ``--parallel`` at
once, then one step gathering the list), and the same work as a workflow with one written step per item (all
free to run, then the same gathering step), each item a no-op agent call. Prints the time of each and items per
second; the written-out run is the baseline. The fan-out starts its items as earlier ones end, so it pays one
more commit per item; ``--parallel`` as large as ``--items`` removes that limit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper
from pepper.core import WorkflowController


def _runtime(folder: str, name: str) -> pepper.Runtime:
    runtime = pepper.Runtime(db=str(Path(folder) / f"{name}.db"), home=str(Path(folder) / "home"))

    @pepper.agent("worker", task_types=["item", "gather"], capacity=64, runtime=runtime)
    def work(task: pepper.TaskRun) -> object:
        return task.inputs.get("n")

    return runtime


def fanned(folder: str, items: int, parallel: int) -> float:
    with _runtime(folder, f"fanned-{parallel}") as runtime:
        workflow = WorkflowController("fanned", runtime)
        workflow.add_step("each", "item", for_each=list(range(items)), max_parallel=parallel,
                          inputs={"n": "${{ item }}"})  # fmt: skip
        workflow.add_step("gather", "gather", dependencies=["each"])
        start = time.perf_counter()
        result = workflow.run(timeout=600)
        took = time.perf_counter() - start
        assert result.status == "completed" and len(result["each"].result) == items
        return took


def written(folder: str, items: int) -> float:
    with _runtime(folder, "written") as runtime:
        workflow = WorkflowController("written", runtime)
        for i in range(items):
            workflow.add_step(f"item{i}", "item", inputs={"n": i})
        workflow.add_step("gather", "gather", dependencies=[f"item{i}" for i in range(items)])
        start = time.perf_counter()
        result = workflow.run(timeout=600)
        took = time.perf_counter() - start
        assert result.status == "completed"
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = written(folder, args.items)
        fan = fanned(folder, args.items, args.parallel)
        wide = fanned(folder, args.items, args.items) if args.parallel < args.items else fan
    print(f"{args.items} items, one no-op agent call each")
    print(f"  written out, one step per item (baseline): {base:7.2f}s  {args.items / base:8.0f} items/s")
    print(f"  fan-out, max_parallel {args.parallel:<6}            {fan:7.2f}s  {args.items / fan:8.0f} items/s"
          f"  ({fan / base:.2f}x the baseline)")  # fmt: skip
    print(f"  fan-out, no limit                         {wide:7.2f}s  {args.items / wide:8.0f} items/s"
          f"  ({wide / base:.2f}x the baseline)")  # fmt: skip


if __name__ == "__main__":
    main()
