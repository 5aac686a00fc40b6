"""Planning maths: critical paths, upward ranks, lower bounds, and checking a schedule. Pure.

A workflow to plan is a DAG of tasks with a duration each (seconds at speed 1)
and a pool of agents, each with a capacity, task types, skills, an optional
resource budget and a speed (a task of duration d takes d / speed on it). An agent
on Ray (``off_host``) runs its tasks' machine needs within the budget it declares to
Ray and draws only shared pools from pepper's pool, as live.

- ``upward_rank(t)`` = t's fastest duration + the largest upward rank of the tasks that
  depend on it: how much work must still follow once t starts. Serving the ready task
  with the largest rank first is the heart of HEFT-style list scheduling.
- The critical path is the chain of largest total fastest duration.
- Lower bounds on any schedule's makespan: that critical path; the least time the pool
  needs for all the work if it could be split freely among the agents able to do it
  (``pepper.scheduling.work_bound``); and, for each limited resource of the pool, the
  resource-seconds the tasks hold over the pool's amount. ``lower_bound`` is the largest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pepper.model.agent import AgentSpec
from pepper.model.dag import topological_order
from pepper.model.resources import OffHost, Resources, describe_shortfall
from pepper.scheduling.work_bound import least_time

#: The largest priority a task can have (``Priority.parse`` accepts up to a million).
MAX_PRIORITY = 1_000_000


@dataclass(frozen=True, slots=True)
class PlanTask:
    """A task to place: its type, dependencies, duration at speed 1, skills and resources."""

    task_id: str
    task_type: str
    duration: float
    dependencies: tuple[str, ...] = ()
    skills: frozenset[str] = frozenset()
    resources: Resources = field(default_factory=Resources)
    agent: str | None = None  # pinned
    not_before: float = 0.0  # it may not start earlier (a delay, from the start of the plan)


@dataclass(frozen=True, slots=True)
class PlanAgent:
    """An agent of the pool: its spec (capacity, types, skills, budget), its speed, and, for an agent on Ray,
    how it finds resources (``off_host``; None: it runs on pepper's host)."""

    spec: AgentSpec
    speed: float = 1.0
    off_host: OffHost | None = None

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    @property
    def pooled_budget(self) -> Resources:
        """The part of its budget pepper's pool grants: all of it, or only the shared pools for an agent on Ray."""
        return self.spec.resources if self.off_host is None else self.off_host.pooled

    def from_pool(self, task: PlanTask) -> Resources:
        """What ``task`` on this agent holds of pepper's pool (within the agent's budget, or leased from the pool)."""
        return task.resources if self.off_host is None else self.off_host.split(task.resources)[0]


@dataclass(frozen=True, slots=True)
class Slot:
    """Where and when a task runs in a schedule (virtual seconds from the start); ``slot["start"]`` works too,
    like the entries of ``Plan.to_dict()["schedule"]``."""

    task_id: str
    agent_id: str
    start: float
    end: float

    def __getitem__(self, key: str) -> str | float:
        if key not in _SLOT_KEYS:
            raise KeyError(key)
        value: str | float = getattr(self, key)
        return value

    @property
    def duration(self) -> float:
        return self.end - self.start


_SLOT_KEYS = frozenset({"task_id", "agent_id", "start", "end"})


def can_run(agent: PlanAgent, task: PlanTask) -> bool:
    spec = agent.spec
    if task.agent is not None and task.agent != spec.agent_id:
        return False
    if not spec.accepts(task.task_type) or not task.skills <= spec.skills:
        return False
    off_host = agent.off_host
    if off_host is not None:  # its machine needs within the budget declared to Ray, its shared ones as below
        pooled, placed = off_host.split(task.resources)
        return not placed.shortfall(off_host.placed) and (not off_host.pooled or not pooled.shortfall(off_host.pooled))
    return not spec.resources or not task.resources.shortfall(spec.resources)


def fastest(tasks: Sequence[PlanTask], agents: Sequence[PlanAgent]) -> dict[str, float]:
    """Each task's duration on the fastest agent that can run it (its own duration if none can)."""
    out = {}
    for task in tasks:
        speeds = [a.speed for a in agents if can_run(a, task)]
        out[task.task_id] = task.duration / max(speeds) if speeds else task.duration
    return out


def upward_ranks(tasks: Sequence[PlanTask], cost: Mapping[str, float]) -> dict[str, float]:
    """Each task's upward rank: its cost plus the largest rank among the tasks depending on it."""
    dependents: dict[str, list[str]] = {t.task_id: [] for t in tasks}
    for t in tasks:
        for dep in t.dependencies:
            if dep in dependents:
                dependents[dep].append(t.task_id)
    order = topological_order({t.task_id: t.dependencies for t in tasks})
    ranks: dict[str, float] = {}
    for task_id in reversed(order):
        ranks[task_id] = cost[task_id] + max((ranks[d] for d in dependents[task_id]), default=0.0)
    return ranks


def critical_path(tasks: Sequence[PlanTask], cost: Mapping[str, float]) -> tuple[float, list[str]]:
    """The length of the longest chain of tasks (summing ``cost``, a task starting no sooner than its
    ``not_before``) and the chain itself, first task first."""
    if not tasks:
        return 0.0, []
    by_id = {t.task_id: t for t in tasks}
    order = topological_order({t.task_id: t.dependencies for t in tasks})
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}
    for task_id in order:
        deps = [d for d in by_id[task_id].dependencies if d in by_id]
        prior = max(deps, key=lambda d: (finish[d], d), default=None)
        ready = finish[prior] if prior is not None else 0.0
        if by_id[task_id].not_before > ready:  # held back by its delay: the chain starts here
            ready, prior = by_id[task_id].not_before, None
        finish[task_id] = cost[task_id] + ready
        before[task_id] = prior
    last = max(finish, key=lambda t: (finish[t], t))
    path = [last]
    while before[path[-1]] is not None:
        path.append(before[path[-1]])  # type: ignore[arg-type]
    return finish[last], path[::-1]


def work_bound(tasks: Sequence[PlanTask], agents: Sequence[PlanAgent]) -> float:
    """The least time the pool needs for all of the work, ignoring dependencies: the largest, over every set of
    agents, of the work only that set can do over its total speed x capacity (see ``work_bound`` module)."""
    confined: dict[frozenset[str], float] = {}
    for task in tasks:
        able = frozenset(a.agent_id for a in agents if can_run(a, task))
        if able:
            confined[able] = confined.get(able, 0.0) + task.duration
    return least_time(confined, {a.agent_id: a.speed * a.spec.capacity for a in agents})


def resource_bound(
    tasks: Sequence[PlanTask], cost: Mapping[str, float], limits: Mapping[str, float],
    agents: Sequence[PlanAgent] = (),
) -> float:  # fmt: skip
    """The largest, over the pool's limited resources, of the resource-seconds the tasks hold (each for its
    ``cost``, its fastest run) over the pool's amount: agents' budgets come out of the pool too. Given the
    ``agents``, a task counts only what it holds of the pool on every agent able to run it (an agent on Ray
    holds none of its machine resources)."""
    best = 0.0
    for name, amount in limits.items():
        if amount > 0:
            held = sum(
                t.resources[name] * cost[t.task_id]
                for t in tasks
                if name in t.resources and all(name in a.from_pool(t) for a in agents if can_run(a, t))
            )
            best = max(best, held / amount)
    return best


def budget_problem(agents: Sequence[PlanAgent], limits: Mapping[str, float]) -> str | None:
    """What is wrong with the agents' budgets in a pool of ``limits``: one larger than the pool, or all of
    them together (live, the last would wait for theirs); None if they fit."""
    budgets: dict[str, float] = {}
    for agent in agents:
        pooled = agent.pooled_budget  # an agent on Ray: only the shared pools
        short = {n: a - limits[n] for n, a in pooled.items() if n in limits and a > limits[n] + 1e-9}
        if short:
            return f"agent {agent.agent_id!r} asks for a budget the whole pool cannot give: {describe_shortfall(short)}"
        for name, amount in pooled.items():
            budgets[name] = budgets.get(name, 0.0) + amount
    over = {n: a - limits[n] for n, a in budgets.items() if n in limits and a > limits[n] + 1e-9}
    if over:
        return f"the agents' budgets together ask for more than the pool has: {describe_shortfall(over)}"
    return None


def never_runnable(tasks: Sequence[PlanTask], agents: Sequence[PlanAgent], limits: Mapping[str, float]) -> set[str]:
    """Tasks no agent of the pool can run (on any, needing more of a resource than the pool has), and their
    dependents."""

    def runs_on(agent: PlanAgent, task: PlanTask) -> bool:
        held = agent.from_pool(task)
        return can_run(agent, task) and not any(held[n] > limits[n] + 1e-9 for n in held if n in limits)

    out = {t.task_id for t in tasks if not any(runs_on(a, t) for a in agents)}
    if out:
        by_id = {t.task_id: t for t in tasks}
        for task_id in topological_order({t.task_id: t.dependencies for t in tasks}):
            if any(dep in out for dep in by_id[task_id].dependencies):
                out.add(task_id)
    return out


def round_robin(tasks: Sequence[PlanTask], agents: Sequence[PlanAgent]) -> dict[str, str]:
    """Each task not already pinned, pinned to the next agent (in turn) that can run it (a yardstick policy)."""
    turn = 0
    out = {}
    for task in tasks:
        able = [a for a in agents if can_run(a, task)]
        if not able or task.agent is not None:
            continue
        out[task.task_id] = able[turn % len(able)].agent_id
        turn += 1
    return out


def utilisation(
    schedule: Sequence[Slot], agents: Sequence[PlanAgent], makespan: float
) -> tuple[dict[str, float], str | None]:
    """Each agent's busy share of its capacity over the makespan, and the busiest agent (None if nothing ran)."""
    busy: dict[str, float] = {a.agent_id: 0.0 for a in agents}
    for s in schedule:
        busy[s.agent_id] += s.end - s.start
    use = {a.agent_id: busy[a.agent_id] / (a.spec.capacity * makespan) if makespan else 0.0 for a in agents}
    bottleneck = max(use, key=lambda a: (use[a], busy[a], a)) if use and makespan else None
    return use, bottleneck


def priorities(ranks: Mapping[str, float]) -> dict[str, int]:
    """Task priorities proportional to their ranks (the largest gets ``MAX_PRIORITY``), ties kept apart
    by nothing but the order the queue already keeps."""
    top = max(ranks.values(), default=0.0)
    if top <= 0:
        return {t: 0 for t in ranks}
    return {t: round(rank / top * MAX_PRIORITY) for t, rank in ranks.items()}


def check_schedule(
    schedule: Sequence[Slot],
    tasks: Sequence[PlanTask],
    agents: Sequence[PlanAgent],
    tolerance: float = 1e-6,
    pool: Mapping[str, float] | None = None,
) -> list[str]:
    """Everything wrong with ``schedule`` (empty: it is valid): every task placed once, on an agent that can
    run it, for its duration at that agent's speed, not before its delay, after its dependencies ended, never
    more tasks at once than an agent's capacity, never more resources than its budget, and (given a ``pool``)
    never more than the pool holds: the agents' budgets plus what tasks on agents without one lease from it."""
    problems: list[str] = []
    by_task = {t.task_id: t for t in tasks}
    by_agent = {a.agent_id: a for a in agents}
    placed: dict[str, Slot] = {}
    for slot in schedule:
        if slot.task_id in placed:
            problems.append(f"{slot.task_id} is placed twice")
        placed[slot.task_id] = slot
    for task_id in by_task.keys() - placed.keys():
        problems.append(f"{task_id} is not placed")
    for slot in placed.values():
        task, agent = by_task.get(slot.task_id), by_agent.get(slot.agent_id)
        if task is None or agent is None:
            problems.append(f"{slot.task_id} on {slot.agent_id}: unknown task or agent")
            continue
        if not can_run(agent, task):
            problems.append(f"{slot.task_id} is placed on {slot.agent_id}, which cannot run it")
        expected = task.duration / agent.speed
        if abs((slot.end - slot.start) - expected) > tolerance + 1e-9 * expected:
            problems.append(f"{slot.task_id} takes {slot.end - slot.start:g}s, not {expected:g}s")
        if slot.start < task.not_before - tolerance:
            problems.append(f"{slot.task_id} starts at {slot.start:g}, before its delay ends at {task.not_before:g}")
        for dep in task.dependencies:
            if dep in placed and slot.start < placed[dep].end - tolerance:
                problems.append(f"{slot.task_id} starts at {slot.start:g} before its dependency {dep} ends")
    for agent in agents:
        # a task of no duration holds no room at any instant
        mine = sorted((s for s in placed.values() if s.agent_id == agent.agent_id and s.end > s.start),
                      key=lambda s: s.start)  # fmt: skip
        events = sorted([(s.start, 1, s.task_id) for s in mine] + [(s.end, -1, s.task_id) for s in mine])
        running: set[str] = set()
        for _at, change, task_id in events:  # ends sort before starts at the same instant
            if change < 0:
                running.discard(task_id)
                continue
            running.add(task_id)
            if len(running) > agent.spec.capacity:
                problems.append(f"{agent.agent_id} runs {len(running)} tasks at once, over its capacity")
            if agent.spec.resources or agent.off_host is not None:
                used: dict[str, float] = {}
                for other in running:
                    for name, amount in by_task[other].resources.items():
                        used[name] = used.get(name, 0.0) + amount
                within = agent.spec.resources
                if agent.off_host is not None and not agent.off_host.pooled:  # shared needs come from the pool
                    used = dict(agent.off_host.split(used)[1])
                over = {n: a for n, a in used.items() if a > within.get(n, 0.0) + tolerance}
                if over:
                    problems.append(f"{agent.agent_id}'s tasks use more than its budget at once: {over}")
    if pool:
        problems += _pool_problems(placed.values(), by_task, by_agent, pool, tolerance)
    return problems


def _pool_problems(
    slots: Iterable[Slot], by_task: Mapping[str, PlanTask], by_agent: Mapping[str, PlanAgent],
    pool: Mapping[str, float], tolerance: float,
) -> list[str]:  # fmt: skip
    base: dict[str, float] = {}
    for agent in by_agent.values():
        for name, amount in agent.pooled_budget.items():
            base[name] = base.get(name, 0.0) + amount
    budgets_over = {n: a for n, a in base.items() if n in pool and a > pool[n] + tolerance}
    if budgets_over:
        return [f"the agents' budgets alone hold more than the pool has: {budgets_over}"]
    leasing = [
        s
        for s in slots
        if s.end > s.start
        and s.task_id in by_task
        and s.agent_id in by_agent
        and not by_agent[s.agent_id].pooled_budget
        and by_agent[s.agent_id].from_pool(by_task[s.task_id])
    ]
    events = sorted([(s.end, -1, s.task_id, s.agent_id) for s in leasing]
                    + [(s.start, 1, s.task_id, s.agent_id) for s in leasing])  # fmt: skip
    used = dict(base)
    problems = []
    for at, change, task_id, agent_id in events:  # ends sort before starts at the same instant
        for name, amount in by_agent[agent_id].from_pool(by_task[task_id]).items():
            used[name] = used.get(name, 0.0) + change * amount
        over = {n: a for n, a in used.items() if n in pool and a > pool[n] + tolerance}
        if change > 0 and over:
            problems.append(f"at {at:g}s the tasks hold more than the pool has: {over}")
    return problems
