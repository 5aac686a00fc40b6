"""Planning a workload: assign tasks to agents so that the last one finishes as early as possible.

Longest-processing-time first: of the tasks whose dependencies are placed, the
longest (by its best expected time) goes next, to the eligible agent slot where
it would finish earliest (the selector's objective), starting no earlier than
the end of the tasks it depends on. Each agent has ``capacity`` slots, busy
until its current load is done. A task that cannot be placed holds back its
dependents, which are listed with it. Dependencies outside the plan are taken
as done. Round-robin is kept as the yardstick.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pepper.model.dag import check_acyclic
from pepper.model.requirements import NO_REQUIREMENTS, Requirements
from pepper.scheduling.selection import Candidate, rejection_reasons

#: (agent_id, task_type) -> expected time of such a task on that agent.
ExpectedTime = Callable[[str, str], float]
#: The key of ``WorkloadPlan.unassigned`` that gives a reason true of every agent (no agent id is ``*``).
EVERY_AGENT = "*"
#: Why a task is not placed when the plan has no agent at all.
NO_AGENT = "there is no agent to place it on"


@dataclass(frozen=True, slots=True)
class PlanTask:
    task_id: str
    task_type: str
    requirements: Requirements = NO_REQUIREMENTS
    dependencies: tuple[str, ...] = ()  # ids of tasks it waits for (those of the plan start it no earlier)


@dataclass(frozen=True, slots=True)
class Placement:
    task_id: str
    agent_id: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    """Where each task goes, when it is projected to run, and what could not be placed: for each such task,
    each agent's reasons for refusing it (``EVERY_AGENT`` holds a reason true of all, e.g. there is none)."""

    placements: tuple[Placement, ...]
    unassigned: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def assignments(self) -> dict[str, str]:
        return {p.task_id: p.agent_id for p in self.placements}

    @property
    def makespan(self) -> float:
        """When the last task is projected to finish (seconds from now)."""
        return max((p.end for p in self.placements), default=0.0)

    def by_agent(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for placement in self.placements:
            out.setdefault(placement.agent_id, []).append(placement.task_id)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignments": self.assignments,
            "makespan": self.makespan,
            "placements": [{"task_id": p.task_id, "agent_id": p.agent_id, "start": p.start, "end": p.end}
                           for p in self.placements],
            "unassigned": {t: {a: list(r) for a, r in why.items()} for t, why in self.unassigned.items()},
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkloadPlan:
        """The plan ``to_dict`` gave."""
        placements = tuple(Placement(p["task_id"], p["agent_id"], p["start"], p["end"]) for p in data["placements"])
        unassigned = {t: {a: tuple(r) for a, r in why.items()} for t, why in data["unassigned"].items()}
        return cls(placements, unassigned)


def _slots(agents: Sequence[Candidate]) -> dict[str, list[float]]:
    """Each agent's slots as heaps of the times they become free (its current load fills them first)."""
    slots = {}
    for agent in agents:
        times = [0.0] * agent.spec.capacity
        busy = min(agent.running, agent.spec.capacity)
        for i in range(busy):
            times[i] = agent.available_in if agent.available_in > 0 else agent.estimate
        for _ in range(agent.queued):  # queued work lands on the earliest slots
            times.sort()
            times[0] += agent.estimate
        heapq.heapify(times)
        slots[agent.agent_id] = times
    return slots


def _eligibility(
    tasks: Sequence[PlanTask], agents: Sequence[Candidate], nobody: str = NO_AGENT
) -> tuple[dict[str, list[Candidate]], dict[str, dict[str, tuple[str, ...]]]]:
    eligible: dict[str, list[Candidate]] = {}
    unassigned: dict[str, dict[str, tuple[str, ...]]] = {}
    if not agents:
        return eligible, {task.task_id: {EVERY_AGENT: (nobody,)} for task in tasks}
    for task in tasks:
        fits: list[Candidate] = []
        why: dict[str, tuple[str, ...]] = {}
        for agent in agents:
            reasons = rejection_reasons(agent, task.task_type, task.requirements)
            if not reasons and agent.available_in == float("inf"):  # no slot frees at a known time
                reasons = (agent.note or "has no slot that frees at a known time",)
            if reasons:
                why[agent.agent_id] = reasons
            else:
                fits.append(agent)
        if fits:
            eligible[task.task_id] = fits
        else:
            unassigned[task.task_id] = why
    return eligible, unassigned


def distribute(
    tasks: Sequence[PlanTask], agents: Sequence[Candidate], expected: ExpectedTime, *, nobody: str = NO_AGENT
) -> WorkloadPlan:
    """Longest-processing-time first onto the earliest-finishing eligible slot, each task after the tasks of the
    plan it depends on (which must not form a cycle: ``CycleError``). ``nobody``: why no task is placed when
    there is no agent."""
    eligible, unassigned = _eligibility(tasks, agents, nobody)
    slots = _slots(agents)
    by_id = {t.task_id: t for t in tasks}
    needs = {t.task_id: {d for d in t.dependencies if d in by_id} for t in tasks}
    check_acyclic(needs, lambda task_id: needs.get(task_id, ()))
    dependents: dict[str, list[str]] = {}
    for task_id, deps in needs.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(task_id)

    def longest(task_id: str) -> float:
        task = by_id[task_id]
        return min(expected(a.agent_id, task.task_type) for a in eligible[task_id])

    # a task waiting for one that cannot be placed cannot be placed either, nor can those waiting for it
    stuck = [(later, task_id) for task_id in unassigned for later in dependents.get(task_id, ())]
    while stuck:
        task_id, dep = stuck.pop()
        if task_id in unassigned:
            continue
        why = f"waits for task {dep!r}, which could not be placed"
        unassigned[task_id] = {a.agent_id: (why,) for a in eligible.pop(task_id)}
        stuck.extend((later, task_id) for later in dependents.get(task_id, ()))
    waiting = {task_id: len(needs[task_id]) for task_id in eligible}
    ready = [(-longest(tid), tid) for tid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    ends: dict[str, float] = {}
    placements = []
    while ready:
        _, task_id = heapq.heappop(ready)
        task = by_id[task_id]
        after = max((ends[d] for d in needs[task_id]), default=0.0)
        best = None
        for agent in eligible[task_id]:
            # the slot it starts earliest on; of those, the one freed last (earlier ones stay for other tasks)
            free = min(slots[agent.agent_id], key=lambda at: (max(at, after), -at))
            start = max(free, after)
            end = start + expected(agent.agent_id, task.task_type)
            if best is None or (end, start, agent.agent_id) < best[:3]:
                best = (end, start, agent.agent_id, free)
        assert best is not None
        end, start, agent_id, free = best
        agent_slots = slots[agent_id]
        agent_slots[agent_slots.index(free)] = end
        heapq.heapify(agent_slots)
        ends[task_id] = end
        placements.append(Placement(task_id, agent_id, start, end))
        for later in dependents.get(task_id, ()):
            if later in waiting:
                waiting[later] -= 1
                if waiting[later] == 0:
                    heapq.heappush(ready, (-longest(later), later))
    return WorkloadPlan(tuple(placements), unassigned)


def round_robin(tasks: Sequence[PlanTask], agents: Sequence[Candidate], expected: ExpectedTime) -> WorkloadPlan:
    """Each task to the next eligible agent in turn (the yardstick ``distribute`` must beat)."""
    eligible, unassigned = _eligibility(tasks, agents)
    slots = _slots(agents)
    turn = 0
    placements = []
    for task in tasks:
        choices = eligible.get(task.task_id)
        if not choices:
            continue
        agent = choices[turn % len(choices)]
        turn += 1
        start = slots[agent.agent_id][0]
        end = start + expected(agent.agent_id, task.task_type)
        heapq.heapreplace(slots[agent.agent_id], end)
        placements.append(Placement(task.task_id, agent.agent_id, start, end))
    return WorkloadPlan(tuple(placements), unassigned)
