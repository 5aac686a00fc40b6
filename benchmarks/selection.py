"""How fast ``AgentSelector.select_agent`` chooses among 1,000 registered agents.

    .venv/bin/python benchmarks/selection.py [--agents 1000] [--calls 5000]

Agents accept 1-2 of 20 task types and have 2-4 of 12 skills; each call asks for
a random type and 1-2 skills. Prints the median and 95th percentile per call,
beside a plain scan that checks every agent (the yardstick the index must beat).
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
from pepper.core import AgentSelector
from pepper.model.requirements import Requirements
from pepper.scheduling.selection import choose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    rng = random.Random(7)
    types = [f"type-{i}" for i in range(20)]
    skills = [f"skill-{i}" for i in range(12)]
    with pepper.Runtime(db=":memory:") as runtime:
        for i in range(args.agents):
            pepper.agent(f"agent-{i:04d}", task_types=rng.sample(types, rng.randint(1, 2)),
                         skills=rng.sample(skills, rng.randint(2, 4)), capacity=rng.randint(1, 4),
                         runtime=runtime)(lambda task: None)  # fmt: skip
        runtime.start()
        selector = AgentSelector(runtime)
        requests = [(rng.choice(types), {"skills": rng.sample(skills, rng.randint(1, 2))}) for _ in range(args.calls)]
        for task_type, req in requests[:200]:  # warm the caches
            selector.rank_agents(task_type, req)
        timings, found = [], 0
        for task_type, req in requests:
            start = time.perf_counter_ns()
            try:
                selector.select_agent(task_type, req)
                found += 1
            except pepper.errors.NoEligibleAgentError:
                pass
            timings.append((time.perf_counter_ns() - start) / 1000)
        view_state = runtime._service.engine.state  # the yardstick: rank every agent, no index
        from pepper.engine.inspection import candidate

        scan = []
        now = runtime.clock.now()
        for task_type, req in requests[:500]:
            start = time.perf_counter_ns()
            everyone = [candidate(view_state, a, task_type, now) for a in view_state.agents.values()]
            choose(everyone, task_type, Requirements.parse(req))
            scan.append((time.perf_counter_ns() - start) / 1000)
    timings.sort()
    print(f"select_agent over {args.agents} agents, {args.calls} calls ({found} found an agent):")
    print(f"  median {statistics.median(timings):8.1f} us   p95 {timings[int(0.95 * len(timings))]:8.1f} us")
    print(f"  plain scan of every agent: median {statistics.median(scan):8.1f} us "
          f"({statistics.median(scan) / statistics.median(timings):.0f}x slower)")  # fmt: skip
    median = statistics.median(timings)
    print(f"  target: median <= 20 us: {'met' if median <= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
