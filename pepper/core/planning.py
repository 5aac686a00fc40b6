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

Over 400 lines: reading a workflow into the tasks it becomes and planning them are one face, read together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pepper.agents.base import BaseAgent
from pepper.core.runtime import Runtime, resolve
from pepper.core.workflow import WorkflowController
from pepper.engine.simulation import simulate
from pepper.errors import ValidationError, suggest
from pepper.model.agent import AgentSpec
from pepper.model.dag import topological_order
from pepper.model.resources import OffHost
from pepper.model.submission import build_task
from pepper.model.task import Task
from pepper.model.task_spec import PLAN, task_arguments
from pepper.model.units import parse_duration, parse_quantity
from pepper.model.workflow import WorkflowSpec
from pepper.scheduling.performance import Performance
from pepper.scheduling.planning import (
    PlanAgent,
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
from pepper.store.location import may_hold_data
from pepper.workflow_file import parse_workflow_file

POLICIES = ("default", "critical_path", "round_robin")
#: Who runs an approval step in a plan: the people deciding it (an agent of the plan, never of the runtime).
PEOPLE = "people-approving"
DEFAULT_DURATION = 1.0


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
    name, tasks, default_agents = _read_workflow(workflow)
    pool_agents = _read_agents(agents if agents is not None else default_agents, runtime)
    people = _people(tasks)
    if people is not None:
        pool_agents = [*pool_agents, people]
    durations_of, notes, assumed = _durations(tasks, durations, runtime)
    plan_tasks = [PlanTask(t.task_id, t.task_type, durations_of[t.task_id], t.dependencies, t.requirements.skills,
                           t.requirements.resources, t.agent, t.not_before or 0.0) for t in tasks]  # fmt: skip
    quickest = fastest(plan_tasks, pool_agents)
    if policy == "critical_path":
        ranks = priorities(upward_ranks(plan_tasks, quickest))
        tasks = [replace(t, priority=ranks[t.task_id]) for t in tasks]
    elif policy == "round_robin":
        pins = round_robin(plan_tasks, pool_agents)
        tasks = [replace(t, agent=pins[t.task_id]) if t.task_id in pins else t for t in tasks]
    limits = _pool(pool)
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


# -- reading the inputs ---------------------------------------------------------------------------


def _read_workflow(workflow: Any) -> tuple[str, list[Task], list[Any] | None]:
    if isinstance(workflow, WorkflowController):
        workflow.spec.validate()
        return workflow.name, _spec_tasks(workflow.spec), None
    if isinstance(workflow, WorkflowSpec):
        workflow.validate()
        return workflow.name, _spec_tasks(workflow), None
    if isinstance(workflow, (str, Path)):
        parsed = parse_workflow_file(Path(workflow))
        return parsed.spec.name, _spec_tasks(parsed.spec), list(parsed.agents) or None  # none: registered ones
    if isinstance(workflow, Iterable) and not isinstance(workflow, Mapping):
        return "tasks", _dict_tasks(list(workflow)), None
    raise ValidationError(
        "workflow must be a WorkflowController, a workflow file or a list of task mappings, "
        f"got {type(workflow).__name__}",
        field="workflow",
    )


def _spec_tasks(spec: WorkflowSpec, prefix: str = "", outer: tuple[str, ...] = ()) -> list[Task]:
    """The tasks a run of ``spec`` becomes, as far as can be known before it runs: a fan-out step one task per
    item (``step[i]``: its list written out, else ``expected_items``, else one; with ``max_parallel`` k, item i
    follows item i-k, so no more than k run at once), an approval step a wait of
    its ``expected_wait`` (else its timeout) on the people deciding (``PEOPLE``), a sub-workflow its child's
    steps (``step/child``). ``prefix``/``outer``: the ids and dependencies of a sub-workflow's steps."""
    order = spec.validate()
    by_id = spec.by_id
    ends: dict[str, tuple[str, ...]] = {}  # step id -> the task ids its dependents wait for
    tasks: list[Task] = []
    for step_id in order:
        step = by_id[step_id]
        deps = tuple(d for dep in step.dependencies for d in ends[dep]) if step.dependencies else outer
        own = f"{prefix}{step_id}"
        # a step's delay counts from the start of the plan (time 0)
        not_before = step.delay if step.delay else step.template.not_before
        template = replace(step.template, task_id=own, dependencies=deps, not_before=not_before)
        if step.workflow is not None:
            inner = _spec_tasks(step.workflow, f"{own}/", deps)
            tasks += inner
            ends[step_id] = tuple(t.task_id for t in inner)
        elif step.fans_out:
            count = len(step.for_each) if isinstance(step.for_each, list) else step.expected_items
            limit = step.max_parallel
            items = [replace(template, task_id=f"{own}[{i}]",
                             dependencies=deps if limit is None or i < limit else (*deps, f"{own}[{i - limit}]"))
                     for i in range(1 if count is None else count)]  # fmt: skip
            tasks += items
            ends[step_id] = tuple(t.task_id for t in items) or deps
        elif step.approval is not None:
            wait = step.approval.expected_wait if step.approval.expected_wait is not None else step.approval.timeout
            tasks.append(replace(template, agent=PEOPLE, metadata={**template.metadata, "duration": wait}))
            ends[step_id] = (own,)
        else:
            tasks.append(template)
            ends[step_id] = (own,)
    return tasks


def _people(tasks: Sequence[Task]) -> PlanAgent | None:
    """The people deciding the approval steps among ``tasks``, as an agent that is never short of room."""
    waits = [t for t in tasks if t.agent == PEOPLE]
    if not waits:
        return None
    return PlanAgent(AgentSpec.build(PEOPLE, task_types=sorted({t.task_type for t in waits}), capacity=len(waits)))


def _dict_tasks(items: Sequence[Any]) -> list[Task]:
    tasks = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValidationError(f"each task must be a mapping such as {{'id': 'a', 'type': 't'}}, got {item!r}")
        fields = task_arguments(item, PLAN)
        duration = fields.pop("duration", None)
        if duration is not None:
            metadata = dict(fields.get("metadata") or {})
            metadata["duration"] = parse_duration(duration, "duration")
            fields["metadata"] = metadata
        tasks.append(build_task(**fields))
    known = {t.task_id for t in tasks}
    if len(known) != len(tasks):
        raise ValidationError("task ids must be unique", field="id")
    for t in tasks:
        for dep in t.dependencies:
            if dep not in known:
                raise ValidationError(f"task {t.task_id!r} needs {dep!r}, which is not among the tasks"
                                      f"{suggest(dep, known)}", field="needs")  # fmt: skip
    topological_order({t.task_id: t.dependencies for t in tasks})  # raises CycleError naming the loop
    return tasks


def _read_agents(agents: Iterable[Any] | None, runtime: Runtime | None) -> list[PlanAgent]:
    if agents is None:
        live = resolve(runtime)
        found = {a.agent_id: a.spec for a in live.agents()}
        for registered in live.store.workers.agents():
            found.setdefault(registered.spec.agent_id, registered.spec)
        if not found:
            raise ValidationError("no agents to plan on: pass agents=[...] or register some", field="agents")
        where = _where(live)
        return [_plan_agent(spec, 1.0, where) for spec in found.values()]
    where = _where(runtime)
    pool = []
    for item in agents:
        if isinstance(item, PlanAgent):
            pool.append(item)
        elif isinstance(item, BaseAgent):
            pool.append(_plan_agent(item.spec, 1.0, where))
        elif isinstance(item, AgentSpec):
            pool.append(_plan_agent(item, 1.0, where))
        elif isinstance(item, Mapping):
            data = dict(item)
            speed = data.pop("speed", 1.0)
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0 < speed < math.inf:
                raise ValidationError(f"speed must be a positive number, got {speed!r}", field="speed")
            spec = AgentSpec.build(data.pop("agent_id", data.pop("id", None)), task_types=data.pop("task_types", None),
                                   skills=data.pop("skills", None), capacity=data.pop("capacity", 1),
                                   resources=data.pop("resources", None),
                                   executor=data.pop("executor", None))  # fmt: skip
            if data:
                raise ValidationError(f"unknown agent field {next(iter(data))!r}; valid: agent_id, task_types, "
                                      "skills, capacity, resources, executor, speed", field="agents")  # fmt: skip
            pool.append(_plan_agent(spec, float(speed), where))
        else:
            raise ValidationError(f"an agent is a mapping or an agent object, got {item!r}", field="agents")
    if not pool:
        raise ValidationError("plan on at least one agent", field="agents")
    if len({a.agent_id for a in pool}) != len(pool):
        raise ValidationError("agent ids must be unique", field="agents")
    return pool


def _where(runtime: Runtime | None) -> tuple[str, frozenset[str]]:
    """Where agents that name no executor run, and the shared pools' names (none known without a runtime)."""
    if runtime is None:
        return "local", frozenset()
    return runtime.settings.executor, frozenset(runtime.store.leases.shared())


def _plan_agent(spec: AgentSpec, speed: float, where: tuple[str, frozenset[str]]) -> PlanAgent:
    """An agent to plan on; one on Ray finds its machine resources within its declared budget, as live."""
    on_ray = (spec.executor or where[0]) == "ray"
    return PlanAgent(spec, speed, OffHost(spec.resources, where[1]) if on_ray else None)


def _durations(
    tasks: Sequence[Task], given: Mapping[str, Any] | None, runtime: Runtime | None
) -> tuple[dict[str, float], list[str], tuple[str, ...]]:
    """Seconds per task, notes for people, and the tasks whose duration was assumed."""
    if given is not None and not isinstance(given, Mapping):
        raise ValidationError(f"durations must map task ids or task types to seconds, got {given!r}",
                              field="durations")  # fmt: skip
    given = dict(given or {})
    names = {t.task_id for t in tasks} | {t.task_type for t in tasks}
    for key in given:
        if key not in names:
            raise ValidationError(f"durations names {key!r}, which is neither a task id nor a task type of the "
                                  f"workflow.{suggest(str(key), names)}", field="durations")  # fmt: skip
    out: dict[str, float] = {}
    unknown_types: set[str] = set()
    assumed: list[str] = []
    learned: Performance | None = None
    for t in tasks:
        value = given.get(t.task_id, given.get(t.task_type))
        if value is None:
            value = t.metadata.get("duration")
        if value is None:
            if learned is None:
                learned = _history(runtime)
            value = learned.type_estimate(t.task_type, _now(runtime)) if learned is not None else None
        if value is None:
            unknown_types.add(t.task_type)
            assumed.append(t.task_id)
            value = DEFAULT_DURATION
        seconds = parse_duration(value, f"duration of {t.task_id}")
        out[t.task_id] = seconds
    notes = []
    if unknown_types:
        notes.append(f"no duration given or learned for type{'s' if len(unknown_types) > 1 else ''} "
                     f"{', '.join(sorted(unknown_types))}: {DEFAULT_DURATION:g}s assumed")  # fmt: skip
    return out, notes, tuple(assumed)


def _history(runtime: Runtime | None) -> Performance | None:
    try:
        live = resolve(runtime)
    except Exception:  # noqa: BLE001 - no runtime to learn from: durations default
        return None
    if runtime is None and not may_hold_data(live.settings.db):
        return None  # nothing learned yet, and planning creates no database
    performance = Performance(live.settings.score_half_life)
    now = live.clock.now()
    outcomes = live.store.history.outcomes(now - 10 * live.settings.score_half_life)
    for agent_id, task_type, ok, duration, at in outcomes:
        performance.record(agent_id, task_type, ok, duration, at)
    return performance


def _now(runtime: Runtime | None) -> float:
    return resolve(runtime).clock.now()


def _pool(pool: Mapping[str, Any] | None) -> dict[str, float] | None:
    if pool is None:
        return None
    from pepper.model.resources import Resources

    Resources.parse(pool, "pool")  # names and amounts checked; it leaves out zeros, but none is a limit too
    return {name: parse_quantity(name, amount) for name, amount in pool.items()}


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
            durations = cost = _durations(_spec_tasks(spec), None, runtime)[0]
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
