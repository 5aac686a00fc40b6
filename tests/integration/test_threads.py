"""Monitors, selector and load balancer called from several threads while an engine runs many tasks:
they never see the engine's state half-changed, and their figures add up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pepper
from pepper.core import AgentSelector, HealthMonitor, LoadBalancer, PerformanceMonitor, TaskOrchestrator
from pepper.model.task import TaskState

# Enough for a burst (the engine holds 5,000 unsettled tasks or more) and, with ``keep_finished`` low, for the
# engine to forget finished tasks while the callers read.
TOTAL = 8_000
AGENTS = ("quick", "steady")
FAST = {"poll_interval": "20ms", "heartbeat_interval": "100ms", "sample_interval": "50ms", "keep_finished": 2_000}


class Caller(threading.Thread):
    """Calls ``check`` in a loop until told to stop; keeps the first exception and counts the calls."""

    def __init__(self, name: str, check: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.check = check
        self.calls = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.check()
            except BaseException as exc:
                self.error = exc
                return
            self.calls += 1


@pytest.mark.slow
def test_monitors_selector_and_balancer_in_four_threads_while_8000_tasks_run(tmp_path: Path) -> None:
    runtime = pepper.Runtime(db=str(tmp_path / "threads.db"), home=str(tmp_path / "home"), **FAST)
    executions = {name: 0 for name in AGENTS}

    def noop(name: str) -> Callable[[object], object]:
        async def run(task: object) -> int:
            executions[name] += 1  # async agents run on the engine loop: no lock needed
            return 1

        return run

    for name in AGENTS:
        pepper.agent(name, task_types=["noop"], capacity=16, runtime=runtime)(noop(name))
    performance, health = PerformanceMonitor(runtime), HealthMonitor(runtime)
    selector, balancer = AgentSelector(runtime), LoadBalancer(runtime)
    completed_seen = [0]

    def measure() -> None:
        report = performance.get_performance(window="1h")
        overall = report.overall
        assert overall.failed == 0
        assert sum(f.completed for f in report.by_agent.values()) == overall.completed
        assert sum(f.completed for f in report.by_task_type.values()) == overall.completed
        assert completed_seen[0] <= overall.completed <= TOTAL  # never goes back
        completed_seen[0] = overall.completed

    def check_health() -> None:
        figures = health.get_health_metrics()
        assert figures["agents"]["agents"] == len(AGENTS)
        assert figures["agents"]["unhealthy_agents"] == 0
        assert 0 <= figures["agents"]["waiting_tasks"] <= TOTAL
        assert figures["engine"]["engine_here"] is True

    def select() -> None:
        assert selector.select_agent("noop").agent_id in AGENTS

    def balance() -> None:
        plan = balancer.distribute_workload([{"id": f"plan-{i}", "type": "noop"} for i in range(40)])
        assert len(plan.placements) == 40 and not plan.unassigned
        assert set(plan.by_agent()) <= set(AGENTS)

    callers = [Caller("performance", measure), Caller("health", check_health), Caller("selector", select),
               Caller("balancer", balance)]  # fmt: skip
    orchestrator = TaskOrchestrator(runtime)
    try:
        runtime.start()
        for caller in callers:
            caller.start()
        ids = [f"noop-{i}" for i in range(TOTAL)]
        orchestrator.submit_tasks([{"id": task_id, "type": "noop"} for task_id in ids])
        # Every caller gets calls in while the tasks run, and once more after (the deadline is only a safety net).
        wait_for_calls(callers, 3)
        statuses = orchestrator.wait(ids, timeout=300)
        wait_for_calls(callers, 1)
        for caller in callers:
            caller.stop.set()
        for caller in callers:
            caller.join(60)
        assert {c.name: repr(c.error) for c in callers if c.error is not None} == {}

        assert all(s.state is TaskState.COMPLETED for s in statuses)
        assert sum(executions.values()) == TOTAL  # each task ran exactly once
        stored = runtime.store.count_by_state()
        assert stored == {"completed": TOTAL}
        report = performance.get_performance(window="1h")
        assert (report.overall.completed, report.overall.failed) == (TOTAL, 0)
        assert {a: f.completed for a, f in report.by_agent.items() if f.completed} == {
            a: n for a, n in executions.items() if n
        }
        figures = health.get_health_metrics()
        assert figures["agents"]["waiting_tasks"] == runtime.store.unfinished_count() == 0
        assert figures["agents"]["error_rate"] == 0.0
        assert figures["agents"]["stalled_tasks"] == 0
        loads = [balancer.get_agent_load(name) for name in AGENTS]
        assert [(load.running, load.queued) for load in loads] == [(0, 0.0)] * len(AGENTS)
    finally:
        for caller in callers:
            caller.stop.set()
        runtime.close()


def wait_for_calls(callers: list[Caller], more: int) -> None:
    """Until each caller made ``more`` calls from now (or failed)."""
    marks = [c.calls + more for c in callers]
    deadline = time.monotonic() + 300  # a safety net only
    while any(c.calls < mark and c.error is None and c.is_alive() for c, mark in zip(callers, marks, strict=True)):
        assert time.monotonic() < deadline, "the callers made no progress"
        time.sleep(0.01)
