"""Health verdicts: facts about each component in, ``healthy`` / ``degraded`` / ``unhealthy`` and reasons out.

Pure: whoever holds the state gathers the facts (``core.health_facts``); the
rules live here, one function per component, so they can be read and tested
on their own. The overall verdict is the worst component's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pepper.model.units import format_duration

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
COMPONENTS = ("agents", "resources", "workflows", "store", "engine")
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

#: Thresholds of the rules (seconds, fractions).
AGENT_ERROR_RATE = 0.5  # an agent failing at least this share of its recent attempts (of at least 5)
STALLED_FACTOR, STALLED_MIN = 5.0, 60.0  # a task running 5x its usual time, and at least a minute
NEARLY_EXHAUSTED = 0.05  # less than 5% of a resource free
EXPIRING_SOON = 60.0
RUN_STUCK_AFTER = 600.0  # a running workflow with no step settled for 10 minutes
RUN_FAILURE_RATE = 0.5
WAL_LARGE_MB = 512.0
LAG_DEGRADED, LAG_UNHEALTHY = 1.0, 10.0


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default=HEALTHY)


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One component's verdict, why, and the numbers behind it."""

    name: str
    status: str
    reasons: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": list(self.reasons), "metrics": dict(self.metrics)}


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Every component checked, and the overall verdict (the worst one)."""

    status: str
    components: Mapping[str, ComponentHealth]
    checked_at: float

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 degraded, 2 unhealthy (for scripts and probes)."""
        return _RANK[self.status]

    def __getitem__(self, name: str) -> ComponentHealth:
        return self.components[name]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checked_at": self.checked_at,
                "components": {name: c.to_dict() for name, c in self.components.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthReport:
        """The report ``to_dict`` gave (an HTTP answer's)."""
        components = {
            name: ComponentHealth(name, c["status"], tuple(c.get("reasons") or ()), dict(c.get("metrics") or {}))
            for name, c in data["components"].items()
        }
        return cls(data["status"], components, data["checked_at"])


def report(components: Sequence[ComponentHealth], now: float) -> HealthReport:
    return HealthReport(worst(c.status for c in components), {c.name: c for c in components}, now)


def _verdict(name: str, problems: list[tuple[str, str]], metrics: Mapping[str, Any]) -> ComponentHealth:
    return ComponentHealth(name, worst(s for s, _ in problems), tuple(r for _, r in problems), metrics)


# -- agents -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """What is known about one agent's health."""

    agent_id: str
    check_ok: bool | None = None  # its health_check() answer (None: not checked here)
    check_error: str | None = None  # it raised, or did not answer in time
    worker_alive: bool = True
    attempts: int = 0  # recent ended attempts
    failures: int = 0
    stalled: tuple[tuple[str, float, float], ...] = ()  # (task id, running for, usual time)


def _tasks_wait(n: int) -> str:
    return "1 task waits" if n == 1 else f"{n} tasks wait"


def agents_health(
    agents: Sequence[AgentFacts], waiting: int = 0, stranded: Sequence[tuple[str, int]] = ()
) -> ComponentHealth:
    """``waiting``: tasks not ended yet (parked ones aside); ``stranded``: (what they wait for and why nobody
    takes them, how many) for ready tasks that no agent online can take (a type nobody takes, a pinned agent
    that is not there or cannot take them)."""
    problems: list[tuple[str, str]] = []
    for need, n in stranded:
        problems.append((DEGRADED, f"{_tasks_wait(n)} for {need}"))
    if not agents:
        if waiting:
            problems.insert(0, (DEGRADED, f"no agent is registered: {_tasks_wait(waiting)} until a worker starts"))
        return _verdict("agents", problems, {"agents": 0, "unhealthy_agents": 0, "waiting_tasks": waiting})
    sick = 0
    for a in agents:
        if a.check_error is not None or a.check_ok is False or not a.worker_alive:
            sick += 1
            why = (
                "its worker stopped sending heartbeats" if not a.worker_alive
                else a.check_error or "its health_check() said it is not healthy"
            )  # fmt: skip
            problems.append((DEGRADED, f"agent {a.agent_id!r} is unhealthy: {why}"))
        if a.attempts >= 5 and a.failures / a.attempts >= AGENT_ERROR_RATE:
            problems.append((DEGRADED, f"agent {a.agent_id!r} failed {a.failures} of its last {a.attempts} attempts"))
        for task_id, running, usual in a.stalled:
            problems.append((DEGRADED, f"agent {a.agent_id!r} has run {task_id!r} for {format_duration(running)} "
                                       f"(usually {format_duration(usual)}): it may be stuck"))  # fmt: skip
    if sick == len(agents):
        problems.append((UNHEALTHY, "no agent is healthy"))
    attempts = sum(a.attempts for a in agents)
    metrics = {"agents": len(agents), "unhealthy_agents": sick,
               "error_rate": sum(a.failures for a in agents) / attempts if attempts else None,
               "stalled_tasks": sum(len(a.stalled) for a in agents), "waiting_tasks": waiting}  # fmt: skip
    return _verdict("agents", problems, metrics)


def stalled(running_for: float, usual: float | None) -> bool:
    """Whether a task running this long, on an agent where such tasks usually take ``usual``, looks stuck."""
    return usual is not None and running_for >= max(STALLED_MIN, STALLED_FACTOR * usual)


# -- resources -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceFacts:
    capacity: Mapping[str, float] = field(default_factory=dict)
    free: Mapping[str, float] = field(default_factory=dict)
    waiting: int = 0  # tasks waiting for resources
    leases: int = 0
    expiring: tuple[tuple[str, str, float], ...] = ()  # (lease id, holder, seconds left)
    overuse: tuple[tuple[str, str, float, float], ...] = ()  # (agent, metric, measured, allocated)


def resources_health(f: ResourceFacts) -> ComponentHealth:
    problems: list[tuple[str, str]] = []
    metrics: dict[str, Any] = {"leases": f.leases, "tasks_waiting_for_resources": f.waiting}
    for name, capacity in sorted(f.capacity.items()):
        free = f.free.get(name, capacity)
        metrics[f"{name}_capacity"], metrics[f"{name}_free"] = capacity, free
        if capacity > 0 and free / capacity < NEARLY_EXHAUSTED:
            waiting = f"; {f.waiting} task{'s' if f.waiting != 1 else ''} wait for resources" if f.waiting else ""
            problems.append((DEGRADED, f"{name} is nearly exhausted: {free:g} of {capacity:g} free{waiting}"))
    for lease_id, holder, left in f.expiring:
        problems.append((DEGRADED, f"lease {lease_id!r} of {holder} expires in {format_duration(left)}"))
    for agent, metric, used, allocated in f.overuse:
        over = f"agent {agent!r} uses {used:g} {metric}, more than its allocation of {allocated:g}"
        problems.append((DEGRADED, over))
    return _verdict("resources", problems, metrics)


# -- workflows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkflowFacts:
    running: int = 0
    stuck: tuple[tuple[str, float], ...] = ()  # (run id, seconds since a step last settled)
    finished: int = 0  # runs that ended in the last hour
    failed: int = 0  # of which failed
    parked: tuple[str, ...] = ()  # steps parked in the dead-letter queue


def workflows_health(f: WorkflowFacts) -> ComponentHealth:
    problems: list[tuple[str, str]] = []
    for run_id, quiet in f.stuck:
        problems.append((DEGRADED, f"run {run_id!r} has not moved for {format_duration(quiet)}"))
    if f.finished >= 2 and f.failed / f.finished >= RUN_FAILURE_RATE:
        problems.append((DEGRADED, f"{f.failed} of the {f.finished} runs that ended in the last hour failed"))
    for task_id in f.parked:
        problems.append((DEGRADED, f"step {task_id!r} is parked in the dead-letter queue"))
    metrics = {"running_runs": f.running, "stuck_runs": len(f.stuck), "runs_finished_last_hour": f.finished,
               "runs_failed_last_hour": f.failed, "parked_steps": len(f.parked)}  # fmt: skip
    return _verdict("workflows", problems, metrics)


# -- store and engine ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreFacts:
    writable: bool
    error: str | None = None
    size_mb: float | None = None
    wal_mb: float | None = None


def store_health(f: StoreFacts) -> ComponentHealth:
    problems: list[tuple[str, str]] = []
    if not f.writable:
        problems.append((UNHEALTHY, f"the database cannot be written: {f.error or 'unknown reason'}"))
    if f.wal_mb is not None and f.wal_mb > WAL_LARGE_MB:
        problems.append((DEGRADED, f"the write-ahead log is {f.wal_mb:.0f} MB: checkpoints are not keeping up"))
    return _verdict("store", problems, {"writable": f.writable, "size_mb": f.size_mb, "wal_mb": f.wal_mb})


@dataclass(frozen=True, slots=True)
class EngineFacts:
    engine_here: bool
    live_workers: int = 0
    loop_lag: float | None = None  # seconds a timer fired late, recently at most
    accepting: bool = True
    waiting: int = 0  # tasks not ended yet (parked ones aside)
    stuck_threads: int = 0  # synchronous agent calls that ignored their timeout or cancel and still run
    executors: tuple[tuple[str, str], ...] = ()  # (executor, why it cannot run attempts now)


def engine_health(f: EngineFacts) -> ComponentHealth:
    problems: list[tuple[str, str]] = []
    if not f.engine_here and f.live_workers == 0 and f.waiting:  # nothing to run, nothing missing
        problems.append(
            (DEGRADED, f"no worker is running: {_tasks_wait(f.waiting)} until one starts (`pepper worker`)")
        )
    if f.loop_lag is not None and f.loop_lag >= LAG_UNHEALTHY:
        problems.append((UNHEALTHY, f"the engine's event loop is {format_duration(f.loop_lag)} late: it is blocked"))
    elif f.loop_lag is not None and f.loop_lag >= LAG_DEGRADED:
        problems.append((DEGRADED, f"the engine's event loop is {format_duration(f.loop_lag)} late: "
                                   "something blocks it (an async agent that does not await?)"))  # fmt: skip
    if f.engine_here and not f.accepting:
        problems.append((DEGRADED, "the engine is shutting down: it starts no new tasks"))
    if f.stuck_threads:
        problems.append((DEGRADED, f"{f.stuck_threads} synchronous agent call(s) ignored their timeout or cancel "
                                   "and still run in threads of their own (new attempts are not held up; make "
                                   "the agent check task.cancelled)"))  # fmt: skip
    for name, why in f.executors:  # its agents' tasks wait (none is lost) until it can run them again
        problems.append((DEGRADED, f"the {name} executor cannot run attempts: {why}; its agents' tasks wait"))
    metrics = {"engine_here": f.engine_here, "live_workers": f.live_workers, "loop_lag": f.loop_lag,
               "stuck_threads": f.stuck_threads}  # fmt: skip
    return _verdict("engine", problems, metrics)
