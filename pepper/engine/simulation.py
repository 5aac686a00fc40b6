"""Running tasks in virtual time on a described pool, with the live scheduler's own state machine.

The simulation feeds ``EngineState`` the events a real engine would - agents
join, tasks are submitted, attempts end ``duration / speed`` after they start,
timers fire - with time taken from a priority queue instead of a clock. There
is no second scheduler: what the plan says is what the engine would decide.
The engine learns durations from outcomes; the simulation tells it each agent's
mean duration per task type up front, as if it had run them before, and keeps
those (speeds are known; the tasks an agent happens to run must not skew them).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping, Sequence

from pepper.engine.state import EngineState
from pepper.model import events as ev
from pepper.model.lease import Lease, LeaseKind
from pepper.model.task import Task
from pepper.scheduling.planning import PlanAgent, Slot

#: Room of a resource the pool is not limited in.
_UNLIMITED = 1e15


def simulate(
    tasks: Sequence[Task],
    agents: Sequence[PlanAgent],
    durations: Mapping[str, float],
    pool: Mapping[str, float] | None = None,
) -> tuple[list[Slot], list[str]]:
    """Run ``tasks`` (durations at speed 1, by task id) on ``agents`` from time 0; the slots, in start order,
    and the ids of tasks that could never start (no agent can take them)."""
    speed = {a.agent_id: a.speed for a in agents}
    # what it is taught never fades: however long the virtual run, agents keep their speeds
    state = EngineState("planner", keep_finished=len(tasks) + 1, score_half_life=math.inf)
    _teach(state, tasks, agents, durations)
    state.performance.learning = False  # speeds are known: the mix of tasks an agent happens to run must not skew them
    names = {n for t in tasks for n in t.requirements.resources} | {n for a in agents for n in a.spec.resources}
    if names:
        capacity = {n: _UNLIMITED for n in names} | dict(pool or {})
        budgets = tuple(Lease(f"budget:{a.agent_id}", a.agent_id, LeaseKind.BUDGET, a.pooled_budget, 0.0)
                        for a in agents if a.pooled_budget)  # fmt: skip
        state.handle(ev.LeasesLoaded(capacity, budgets, 0.0))
    queue: list[tuple[float, int, ev.Event]] = []
    order = itertools.count()
    starts: dict[str, tuple[str, float]] = {}
    timers: dict[tuple[str, str], float] = {}  # a key holds its latest time only, as the engine's timers do
    slots: list[Slot] = []

    def act(actions: list[ev.Action], now: float) -> None:
        for action in actions:
            if type(action) is ev.Start:
                task_id, agent_id = action.task_id, action.agent_id
                end = now + durations[task_id] / speed[agent_id]
                starts[task_id] = (agent_id, now)
                event = ev.AttemptEnded(task_id, action.attempt, end, True, started_at=now)
                heapq.heappush(queue, (end, next(order), event))
            elif type(action) is ev.WakeAt:
                key, at = action.key, max(action.at, now)
                if timers.get(key) != at:
                    timers[key] = at
                    heapq.heappush(queue, (at, next(order), ev.TimerFired(key, at)))

    for agent in agents:
        act(state.handle(ev.AgentAdded(agent.spec, 0.0, off_host=agent.off_host)), 0.0)
    act(state.handle(ev.TasksAdded(tuple(tasks), 0.0)), 0.0)
    while queue:
        now, _, event = heapq.heappop(queue)
        if isinstance(event, ev.AttemptEnded):
            agent_id, began = starts.pop(event.task_id)
            slots.append(Slot(event.task_id, agent_id, began, now))
        elif isinstance(event, ev.TimerFired):
            if timers.get(event.key) != event.at:
                continue  # replaced by a later one
            del timers[event.key]
        act(state.handle(event), now)
    placed = {s.task_id for s in slots}
    never = [t.task_id for t in tasks if t.task_id not in placed]
    slots.sort(key=lambda s: (s.start, s.task_id))
    return slots, never


def _teach(
    state: EngineState, tasks: Sequence[Task], agents: Sequence[PlanAgent], durations: Mapping[str, float]
) -> None:
    """Tell the engine each agent's mean duration per task type, as learned history would."""
    by_type: dict[str, list[float]] = {}
    for task in tasks:
        by_type.setdefault(task.task_type, []).append(durations[task.task_id])
    for task_type, values in by_type.items():
        mean = sum(values) / len(values)
        for agent in agents:
            if agent.spec.accepts(task_type):
                state.performance.record(agent.agent_id, task_type, True, mean / agent.speed, 0.0)
