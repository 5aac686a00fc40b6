"""``pepper.plan``: predict a workflow's timeline on an agent pool before anything runs.

The workflow runs in virtual time on the live scheduler's own state machine
(``engine.simulation``); the result says when and where each task would run,
the makespan beside a lower bound no schedule can beat, the critical path and
the busiest agent. Policies:

- ``default``: the live scheduler as it is (task priorities, then age; the agent
  where a task would finish first);
- ``critical_path``: the same, with each task's priority its upward rank (the
  work that must still follow it), as in HEFT list scheduling - also for live
  runs: ``WorkflowController(..., policy="critical_path")``;
- ``round_robin``: tasks pinned to the eligible agents in turn (a yardstick).

Reading the inputs (the workflow's tasks, the agents, the durations) is ``core.plan_inputs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pepper.core.plan_inputs import (
    DEFAULT_DURATION,
    PEOPLE,
    people_agent,
    pool_limits,
    read_agents,
    read_workflow,
    spec_tasks,
    task_durations,
)
from pepper.core.runtime import Runtime
from pepper.engine.simulation import simulate
from pepper.errors import ValidationError, suggest
from pepper.model.workflow import WorkflowSpec
from pepper.scheduling.planning import (
    PlanTask,
    Slot,
    budget_problem,
    critical_path,
    fastest,
    never_runnable,
    priorities,
    resource_bound,
    round_robin,
    upward_ranks,
    utilisation,
    work_bound,
)

__all__ = ["PEOPLE", "POLICIES", "Plan", "plan", "prepare_run"]

POLICIES = ("default", "critical_path", "round_robin")


@dataclass(frozen=True, slots=True)
class Plan:
    """A predicted timeline: ``schedule`` (when and where each task runs, in seconds from the start), the
    makespan beside a lower bound, the critical path and each agent's utilisation."""

    workflow: str
    policy: str
    schedule: tuple[Slot, ...]
    makespan: float
    lower_bound: float
    critical_path: tuple[str, ...]
    critical_path_length: float
    work_bound: float
    utilisation: Mapping[str, float]
    bottleneck: str | None
    unplaced: tuple[str, ...] = ()  # tasks no agent of the pool can run
    notes: tuple[str, ...] = ()
    durations: Mapping[str, float] = field(default_factory=dict)
    assumed: tuple[str, ...] = ()  # tasks whose duration nobody gave and nothing taught: 1 s assumed
    resource_bound: float = 0.0  # the pool's limited resources held long enough by the tasks

    def slot(self, task_id: str) -> Slot:
        for s in self.schedule:
            if s.task_id == task_id:
                return s
        raise KeyError(task_id)

    @property
    def utilization(self) -> Mapping[str, float]:
        """``utilisation``, spelt the American way."""
        return self.utilisation

    @property
    def ratio(self) -> float | None:
        """Makespan over lower bound (1.0 is optimal)."""
        return self.makespan / self.lower_bound if self.lower_bound > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow, "policy": self.policy, "makespan": self.makespan,
            "lower_bound": self.lower_bound, "critical_path": list(self.critical_path),
            "critical_path_length": self.critical_path_length, "work_bound": self.work_bound,
            "resource_bound": self.resource_bound,
            "utilisation": dict(self.utilisation), "bottleneck": self.bottleneck, "unplaced": list(self.unplaced),
            "notes": list(self.notes), "assumed": list(self.assumed),
            "schedule": [{"task_id": s.task_id, "agent_id": s.agent_id, "start": s.start, "end": s.end}
                         for s in self.schedule],
        }  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_gantt(self, path: str | Path) -> Path:
        """Write the predicted timeline as a Gantt chart (PNG): one row per agent."""
        from pepper.drawing import Bar, write_gantt

        deps = dict(self._dependencies)
        bars = [Bar(s.task_id, s.agent_id, s.start, s.end, "planned", deps.get(s.task_id, ())) for s in self.schedule]
        notes = [f"makespan {self.makespan:.4g}s, lower bound {self.lower_bound:.4g}s; bottleneck: {self.bottleneck}"]
        if self.unplaced:
            notes.append(f"no agent can run: {', '.join(self.unplaced)}")
        return write_gantt(bars, path, f"{self.workflow} - planned ({self.policy})", notes=[*notes, *self.notes])

    _dependencies: tuple[tuple[str, tuple[str, ...]], ...] = ()


def plan(
    workflow: Any,
    agents: Iterable[Any] | None = None,
    durations: Mapping[str, Any] | None = None,
    policy: str = "default",
    *,
    pool: Mapping[str, Any] | None = None,
    runtime: Runtime | None = None,
) -> Plan:
    """Predict how ``workflow`` runs on ``agents`` (see the module docstring).

    ``workflow``: a ``WorkflowController``, a workflow file, or task mappings (``id``, ``type``, ``needs``,
    ``duration``, ``resources``, ``skills``, ``agent``). ``agents``: mappings (``agent_id``, ``task_types``,
    ``skills``, ``capacity``, ``resources`` - its budget -, ``executor`` and ``speed``), agent objects, or by
    default the workflow file's agents or the registered ones; an agent on Ray runs its tasks' machine needs
    within its budget, not the pool's (as live). ``durations``: seconds by task id or task type; otherwise
    a task's own ``duration``, else what the database learned of its type, else 1 second (said in
    ``notes``).
    """
    if policy not in POLICIES:
        raise ValidationError(
            f"unknown planning policy {policy!r}; valid: {', '.join(POLICIES)}.{suggest(str(policy), POLICIES)}",
            field="policy",
        )
    name, make_tasks, default_agents = read_workflow(workflow)
    pool_agents = read_agents(agents if agents is not None else default_agents, runtime)  # before any task is made
    tasks = make_tasks()
    people = people_agent(tasks)
    if people is not None:
        pool_agents = [*pool_agents, people]
    durations_of, notes, assumed = task_durations(tasks, durations, runtime)
    plan_tasks = [PlanTask(t.task_id, t.task_type, durations_of[t.task_id], t.dependencies, t.requirements.skills,
                           t.requirements.resources, t.agent, t.not_before or 0.0) for t in tasks]  # fmt: skip
    quickest = fastest(plan_tasks, pool_agents)
    if policy == "critical_path":
        ranks = priorities(upward_ranks(plan_tasks, quickest))
        tasks = [replace(t, priority=ranks[t.task_id]) for t in tasks]
    elif policy == "round_robin":
        pins = round_robin(plan_tasks, pool_agents)
        tasks = [replace(t, agent=pins[t.task_id]) if t.task_id in pins else t for t in tasks]
    limits = pool_limits(pool)
    problem = budget_problem(pool_agents, limits or {})
    if problem:
        raise ValidationError(problem, field="agents")
    # as the live engine refuses them at submit, tasks that can never run are kept out (they would hold a
    # route's queue), with every task that needs them
    hopeless = never_runnable(plan_tasks, pool_agents, limits or {})
    schedule, never = simulate([t for t in tasks if t.task_id not in hopeless], pool_agents, durations_of, limits)
    unplaced = set(never) | hopeless
    never = [t.task_id for t in tasks if t.task_id in unplaced]
    placed = [t for t in plan_tasks if t.task_id not in unplaced]  # bounds of what runs, not of what cannot
    length, path = critical_path(placed, quickest)
    bound = work_bound(placed, pool_agents)
    held = resource_bound(placed, quickest, limits or {}, pool_agents)
    makespan = max((s.end for s in schedule), default=0.0)
    use, bottleneck = utilisation(schedule, pool_agents, makespan)
    if people is not None:  # a person waited for is no agent of the pool: neither its load nor its bottleneck
        use.pop(PEOPLE, None)
        workers = [a for a in pool_agents if a is not people]
        bottleneck = utilisation([x for x in schedule if x.agent_id != PEOPLE], workers, makespan)[1]
    return Plan(name, policy, tuple(schedule), makespan, max(length, bound, held), tuple(path), length, bound, use,
                bottleneck, tuple(never), tuple(notes), durations_of, assumed, held,
                _dependencies=tuple((t.task_id, t.dependencies) for t in tasks))  # fmt: skip


def prepare_run(spec: WorkflowSpec, runtime: Runtime, policy: str) -> tuple[WorkflowSpec, dict[str, Any] | None]:
    """The spec a run starts with (steps ranked by the critical path under that policy) and its predicted
    timeline (None when no agent is known to plan on); steps with no known duration are listed as assumed."""
    try:
        predicted: Plan | None = plan(spec, policy=policy if policy in POLICIES else "default", runtime=runtime)
    except ValidationError:  # no agent registered yet (workers may come later): run unpredicted
        predicted = None
    if policy == "critical_path":
        if predicted is not None:
            cost = {s.task_id: s.end - s.start for s in predicted.schedule} | _fallback(spec, predicted)
            durations = dict(predicted.durations)
        else:  # ranked on durations alone
            durations = cost = task_durations(spec_tasks(spec), None, runtime)[0]
        for s in spec.steps:  # a step planned as several tasks (items, a sub-workflow): its longest
            parts = [v for k, v in durations.items() if k.startswith((f"{s.step_id}[", f"{s.step_id}/"))]
            durations.setdefault(s.step_id, max(parts, default=DEFAULT_DURATION))
            cost.setdefault(s.step_id, durations[s.step_id])
        ranks = priorities(upward_ranks(
            [PlanTask(s.step_id, s.task_type, durations[s.step_id], s.dependencies) for s in spec.steps], cost,
        ))  # fmt: skip
        steps = tuple(replace(s, template=replace(s.template, priority=ranks[s.step_id])) for s in spec.steps)
        spec = replace(spec, steps=steps)
    if predicted is None:
        return spec, None
    timeline = {"policy": predicted.policy, "makespan": predicted.makespan, "lower_bound": predicted.lower_bound,
                "steps": {s.task_id: [s.agent_id, s.start, s.end] for s in predicted.schedule},
                "assumed": list(predicted.assumed)}  # fmt: skip
    return spec, timeline


def _fallback(spec: WorkflowSpec, predicted: Plan) -> dict[str, float]:
    placed = {s.task_id for s in predicted.schedule}
    known = predicted.durations
    return {s.step_id: known[s.step_id] for s in spec.steps if s.step_id not in placed and s.step_id in known}
