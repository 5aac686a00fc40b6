"""How fast ``AgentSelector.select_agent`` chooses among 1,000 and 10,000 registered agents.

    .venv/bin/python benchmarks/selection.py [--agents 1000,10000] [--calls 5000]

Agents accept 1-2 of 20 task types and have 2-4 of 12 skills; each call asks for
a random type and 1-2 skills. Prints the median and 95th percentile per call
(a second pass over the requests: the first, also printed, makes each request's
pool of agents), beside the same answer asked on the engine's thread (the hop
a call took before it read the engine's state in place), the choice alone (on
the engine's thread, without the call's hop to it), and a plain scan that
checks every agent (the yardstick the index must beat).

Each pool is measured twice: as registered (no agent has a performance record yet) and after every agent has
results for each of its task types (three each, of random durations and outcomes), as in a pool that has
been at work for a while.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pepper
from pepper.core import AgentSelector
from pepper.core.agents_view import AgentProfile
from pepper.core.distribution import _choose
from pepper.engine.inspection import AgentsView
from pepper.model.requirements import Requirements
from pepper.scheduling.selection import choose


def on_loop(runtime: pepper.Runtime, task_type: str, requirements: dict[str, Any]) -> AgentProfile:
    """``select_agent`` as it was answered before reads went without the hop: on the engine's thread."""
    req = Requirements.parse(requirements)

    def select(view: AgentsView) -> AgentProfile:
        best = _choose(view, task_type, req, best_only=True).best
        if best is None:
            raise pepper.errors.NoEligibleAgentError(task_type, {})
        return AgentProfile.of(best.spec, best.running, view.parts(best.agent_id), best.projected_finish)

    return runtime.read(lambda backend: backend.read_agents(select))


def teach(runtime: pepper.Runtime, rng: random.Random) -> None:
    """Give every agent three results of each of its task types, as the engine records them (on its thread)."""

    def record(backend: Any) -> None:
        state = runtime._service.engine.state
        now = runtime.clock.now()
        for agent in state.agents.values():
            for task_type in agent.spec.task_types:
                for _ in range(3):
                    ok = rng.random() < 0.9
                    state.performance.record(agent.spec.agent_id, task_type, ok, rng.uniform(0.5, 2.0), now)

    runtime.read(record)


def measure(count: int, calls: int, history: bool) -> float:
    """Prints the figures for ``count`` agents (``history``: each with results); returns the median of
    ``select_agent`` in microseconds."""
    rng = random.Random(7)
    types = [f"type-{i}" for i in range(20)]
    skills = [f"skill-{i}" for i in range(12)]
    with pepper.Runtime(db=":memory:") as runtime:
        for i in range(count):
            pepper.agent(f"agent-{i:05d}", task_types=rng.sample(types, rng.randint(1, 2)),
                         skills=rng.sample(skills, rng.randint(2, 4)), capacity=rng.randint(1, 4),
                         runtime=runtime)(lambda task: None)  # fmt: skip
        runtime.start()
        if history:
            teach(runtime, rng)
        selector = AgentSelector(runtime)
        requests = [(rng.choice(types), {"skills": rng.sample(skills, rng.randint(1, 2))}) for _ in range(calls)]
        for task_type, req in requests[:200]:  # warm the caches
            selector.rank_agents(task_type, req)

        def timed(select: Callable[[str, dict[str, Any]], object]) -> tuple[list[float], int]:
            timings, found = [], 0
            for task_type, req in requests:
                start = time.perf_counter_ns()
                try:
                    select(task_type, req)
                    found += 1
                except pepper.errors.NoEligibleAgentError:
                    pass
                timings.append((time.perf_counter_ns() - start) / 1000)
            return sorted(timings), found

        first, _found = timed(selector.select_agent)  # each request's pool of agents is made on first use
        service = runtime._service
        share = service._read_share
        hops = [0]
        on_engine = service.read_agents

        def counted(question: Callable[[AgentsView], Any]) -> Any:  # runs only for the calls that hop
            hops[0] += 1
            return on_engine(question)

        service.read_agents = counted  # type: ignore[method-assign]
        before = share.in_place, share.handed_over
        timings, found = timed(selector.select_agent)
        began, handed_over = share.in_place - before[0], share.handed_over - before[1]
        service.read_agents = on_engine  # type: ignore[method-assign]
        moved = hops[0] - handed_over  # began in place, but the state changed while it was read
        hop, _found = timed(lambda task_type, req: on_loop(runtime, task_type, req))
        parsed = [(task_type, Requirements.parse(req)) for task_type, req in requests]

        def choices(view: AgentsView) -> list[float]:  # on the engine's thread: the choice without the hop
            alone = []
            for task_type, req in parsed:
                start = time.perf_counter_ns()
                _choose(view, task_type, req, best_only=True)
                alone.append((time.perf_counter_ns() - start) / 1000)
            return alone

        alone = sorted(runtime.read(lambda backend: backend.read_agents(choices)))
        view_state = runtime._service.engine.state  # the yardstick: rank every agent, no index
        from pepper.engine.inspection import candidate

        scan = []
        now = runtime.clock.now()
        for task_type, req in requests[: max(5, min(500, 2_000_000 // count))]:
            start = time.perf_counter_ns()
            everyone = [candidate(view_state, a, task_type, now) for a in view_state.agents.values()]
            choose(everyone, task_type, Requirements.parse(req))
            scan.append((time.perf_counter_ns() - start) / 1000)
    median = statistics.median(timings)
    known = "every agent with results" if history else "no agent with a record yet"
    print(f"select_agent over {count} agents ({known}), {calls} calls ({found} found an agent):")
    print(f"  median {median:8.1f} us   p95 {timings[int(0.95 * len(timings))]:8.1f} us")
    print(f"  read in place: {calls - hops[0]} calls; on the engine's thread (the hop): {hops[0]} calls, "
          f"{handed_over} for want of budget (calling without pause), {moved} as the state moved while read "
          f"({began} began in place)")  # fmt: skip
    print(f"  first pass (pools made on first use): median {statistics.median(first):8.1f} us   "
          f"p95 {first[int(0.95 * len(first))]:8.1f} us")  # fmt: skip
    print(f"  the same answer asked on the engine's thread (the hop): median {statistics.median(hop):8.1f} us   "
          f"p95 {hop[int(0.95 * len(hop))]:8.1f} us ({statistics.median(hop) / median:.1f}x the call)")  # fmt: skip
    print(f"  the choice alone (no hop to the engine's thread): median {statistics.median(alone):8.1f} us   "
          f"p95 {alone[int(0.95 * len(alone))]:8.1f} us")  # fmt: skip
    print(f"  plain scan of every agent: median {statistics.median(scan):8.1f} us "
          f"({statistics.median(scan) / median:.0f}x slower)")  # fmt: skip
    print(f"  target: median <= 20 us: {'met' if median <= 20 else 'NOT met'}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="1000,10000", help="pool sizes, separated by commas")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    for history in (False, True):
        medians = {int(n): measure(int(n), args.calls, history) for n in args.agents.split(",")}
        if len(medians) > 1:
            smallest, largest = min(medians), max(medians)
            print(f"median with {largest:,} agents / with {smallest:,}: {medians[largest] / medians[smallest]:.2f}x\n")


if __name__ == "__main__":
    main()
