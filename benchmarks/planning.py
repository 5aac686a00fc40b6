"""How close pepper's plans come to the best possible: makespan / lower bound per policy.

    .venv/bin/python benchmarks/planning.py [--cases 20] [--tasks 300]

Generates layered DAGs (each task needs 1-3 tasks of the layer before) and
random DAGs (each task needs up to 3 earlier tasks), with durations from 0.5 s
to 60 s, on 4-8 heterogeneous agents (task types, skills, capacity 1-3, speed
0.5-3x). For each case and policy it plans in virtual time and divides the
makespan by the lower bound (the larger of the critical path on the fastest
agents and the least time the agents need for all the work if it could be
split freely among those able to do it): 1.00 is optimal, and the bound
itself is often not reachable (it ignores that dependencies leave agents idle). Prints the mean and worst ratio per
policy, and the planning time. Target: critical_path within 5% on average.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper

TYPES = ("build", "test", "docs")
SKILLS = ("gpu", "net")


def agents(rng: random.Random) -> list[dict]:
    pool = [
        {"agent_id": f"a{i}", "task_types": rng.sample(TYPES, rng.randint(1, 3)), "capacity": rng.randint(1, 3),
         "skills": rng.sample(SKILLS, rng.randint(0, 2)), "speed": rng.choice([0.5, 1.0, 1.5, 2.0, 3.0])}
        for i in range(rng.randint(4, 8))
    ]  # fmt: skip
    for task_type in TYPES:  # every task can run somewhere
        pool.append({"agent_id": f"any-{task_type}", "task_types": [task_type], "skills": list(SKILLS)})
    return pool


def layered(rng: random.Random, n: int) -> list[dict]:
    tasks, previous = [], []
    width = max(2, int(n**0.5))
    while len(tasks) < n:
        current = []
        for _ in range(min(width, n - len(tasks))):
            task_id = f"t{len(tasks)}"
            needs = rng.sample(previous, min(len(previous), rng.randint(1, 3))) if previous else []
            tasks.append(task(rng, task_id, needs))
            current.append(task_id)
        previous = current
    return tasks


def random_dag(rng: random.Random, n: int) -> list[dict]:
    tasks: list[dict] = []
    for i in range(n):
        earlier = [t["id"] for t in tasks[-50:]]
        tasks.append(task(rng, f"t{i}", rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))))
    return tasks


def task(rng: random.Random, task_id: str, needs: list[str]) -> dict:
    return {"id": task_id, "type": rng.choice(TYPES), "needs": needs, "duration": round(rng.uniform(0.5, 60), 1),
            "skills": rng.sample(SKILLS, rng.randint(0, 1))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20, help="cases per DAG shape (default 20)")
    parser.add_argument("--tasks", type=int, default=300, help="tasks per case (default 300)")
    args = parser.parse_args()
    policies = ("default", "critical_path", "round_robin")
    ratios: dict[str, list[float]] = {p: [] for p in policies}
    seconds: dict[str, list[float]] = {p: [] for p in policies}
    with pepper.Runtime(db=":memory:") as runtime:
        for shape, make in (("layered", layered), ("random", random_dag)):
            for case in range(args.cases):
                rng = random.Random(f"{shape}-{case}")
                tasks, pool = make(rng, args.tasks), agents(rng)
                for policy in policies:
                    started = time.perf_counter()
                    plan = pepper.plan(tasks, pool, policy=policy, runtime=runtime)
                    seconds[policy].append(time.perf_counter() - started)
                    ratios[policy].append(plan.ratio or 1.0)
            print(f"{shape}: {args.cases} cases of {args.tasks} tasks planned", flush=True)
    print(f"\n{'policy':<15}{'mean makespan/bound':>21}{'worst':>9}{'median plan time':>19}")
    for policy in policies:
        mean, worst = statistics.fmean(ratios[policy]), max(ratios[policy])
        print(f"{policy:<15}{mean:>21.3f}{worst:>9.3f}{statistics.median(seconds[policy]) * 1000:>16.0f} ms")
    mean = statistics.fmean(ratios["critical_path"])
    verdict = "met" if mean <= 1.05 else "NOT met"
    print(f"\ntarget: critical_path within 5% of the lower bound on average (mean <= 1.05): {verdict} ({mean:.3f})")


if __name__ == "__main__":
    main()
