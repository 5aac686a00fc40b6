"""What the health monitor and the metrics read of a running engine, copied on the engine's thread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pepper.engine.state import EngineState
from pepper.model.task import TaskState


@dataclass(frozen=True, slots=True)
class RunningAttempt:
    """A task running on an agent of this engine."""

    task_id: str
    task_type: str
    started_at: float


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """What the health monitor needs of a running engine, copied on the engine's thread."""

    worker_id: str
    accepting: bool
    loop_lag: float
    running: Mapping[str, tuple[RunningAttempt, ...]]  # agent id -> its running attempts
    waiting_for_resources: int  # pending tasks that ask for pool resources
    stuck_threads: int = 0  # synchronous agent calls that outlived their attempt and still run
    executors: Mapping[str, str] = field(default_factory=dict)  # executor that cannot run attempts now -> why


def engine_figures(
    state: EngineState,
    worker_id: str,
    loop_lag: float,
    stuck_threads: int = 0,
    executors: Mapping[str, str] | None = None,
) -> EngineFigures:
    """A copy of the figures ``HealthMonitor`` reads (call on the engine's thread)."""
    tasks = state.tasks
    running: dict[str, tuple[RunningAttempt, ...]] = {}
    for agent_id, agent in state.agents.items():
        found = []
        for task_id in agent.running:
            t = tasks.get(task_id)
            if t is not None and t.started_at is not None:
                found.append(RunningAttempt(task_id, t.task.task_type, t.started_at))
        running[agent_id] = tuple(found)
    waiting = sum(1 for t in tasks.values() if t.state is TaskState.PENDING and t.task.requirements.resources)
    return EngineFigures(worker_id, state.accepting, loop_lag, running, waiting, stuck_threads, dict(executors or {}))


@dataclass(frozen=True, slots=True)
class EngineCounters:
    """This engine's own counters, histograms and agent loads, copied on its thread (for Prometheus)."""

    #: (counter, task type, agent id or "") -> count
    counters: Mapping[tuple[str, str, str], int]
    #: (task type, agent id) -> (cumulative buckets, sum), of queue waits and of run times
    waits: Mapping[tuple[str, str], tuple[list[tuple[str, int]], float]]
    runs: Mapping[tuple[str, str], tuple[list[tuple[str, int]], float]]
    #: (agent id, slots taken, share of the ready tasks, slots held) of every agent here, by id: the slots
    #: taken are its running tasks and its held slots (calls that outlived their attempt and still run)
    loads: tuple[tuple[str, int, float, int], ...]
    loop_lag: float
