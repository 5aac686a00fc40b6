"""What ``pepper.plan`` plans: a workflow read into the tasks it becomes, the agents it plans on and how
long each task takes (given, learned from the database, or assumed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pepper.agents.base import BaseAgent
from pepper.core.default import resolve
from pepper.core.runtime import Runtime
from pepper.core.workflow import WorkflowController
from pepper.errors import ValidationError, suggest
from pepper.model.agent import AgentSpec
from pepper.model.dag import topological_order
from pepper.model.resources import OffHost
from pepper.model.submission import build_task, unique_tasks
from pepper.model.task import Task
from pepper.model.task_spec import PLAN, task_arguments
from pepper.model.timing import MAX_DELAY
from pepper.model.units import parse_duration, parse_quantity
from pepper.model.workflow import MAX_EXPECTED_ITEMS, WorkflowSpec
from pepper.scheduling.performance import Performance
from pepper.scheduling.planning import (
    PlanAgent,
)
from pepper.store.location import may_hold_data
from pepper.workflow_file import parse_workflow_file

#: Who runs an approval step in a plan: the people deciding it (an agent of the plan, never of the runtime).
PEOPLE = "people-approving"
DEFAULT_DURATION = 1.0
#: The most tasks a plan simulates (a fan-out step is one task per item).
MAX_PLAN_TASKS = 50_000
#: The speeds an agent of a plan may have: a thousand times slower or faster than the usual pace at most.
MIN_SPEED, MAX_SPEED = 0.001, 1000.0


def read_workflow(workflow: Any) -> tuple[str, Callable[[], list[Task]], list[Any] | None]:
    """The workflow's name, what gives its tasks (they are made once the agents are known: a workflow of many
    items is not expanded for nothing) and its own agents (None: the registered ones). Checked: a workflow of
    more than ``MAX_PLAN_TASKS`` tasks is refused before any is made."""
    if isinstance(workflow, WorkflowController):
        workflow = workflow.spec
    if isinstance(workflow, WorkflowSpec):
        spec = workflow
        spec.validate()
        _check_size(spec)
        return spec.name, lambda: spec_tasks(spec), None
    if isinstance(workflow, (str, Path)):
        parsed = parse_workflow_file(Path(workflow))
        _check_size(parsed.spec)
        return parsed.spec.name, lambda: spec_tasks(parsed.spec), list(parsed.agents) or None  # none: registered
    if isinstance(workflow, Iterable) and not isinstance(workflow, Mapping):
        items = list(workflow)
        if len(items) > MAX_PLAN_TASKS:
            raise ValidationError(f"a plan has at most {MAX_PLAN_TASKS:,} tasks, got {len(items):,}", field="workflow")
        tasks = _dict_tasks(items)
        return "tasks", lambda: tasks, None
    raise ValidationError(
        "workflow must be a WorkflowController, a workflow file or a list of task mappings, "
        f"got {type(workflow).__name__}",
        field="workflow",
    )


def planned_count(spec: WorkflowSpec, most: int = MAX_PLAN_TASKS) -> int:
    """How many tasks ``spec_tasks`` makes of ``spec``, counted without making them; once past ``most``, a number
    past ``most`` (counting stops there). A sub-workflow used many times is counted once. A fan-out step expecting
    more than ``MAX_EXPECTED_ITEMS`` items is refused."""
    counted: dict[int, int] = {}  # id of a (sub-)workflow spec -> its count

    def count(inner: WorkflowSpec) -> int:
        known = counted.get(id(inner))
        if known is not None:
            return known
        total = 0
        for step in inner.steps:
            if step.workflow is not None:
                total += count(step.workflow)
            elif step.fans_out:
                written = isinstance(step.for_each, list)
                items = len(step.for_each) if written else step.expected_items
                if not written and items is not None and items > MAX_EXPECTED_ITEMS:
                    raise ValidationError(
                        f"expected_items must be at most {MAX_EXPECTED_ITEMS:,} (how many items a plan assumes), "
                        f"got {items:,} in step {step.step_id!r} of workflow {inner.name!r}",
                        field="expected_items",
                    )
                total += 1 if items is None else items
            else:
                total += 1
            if total > most:
                break
        counted[id(inner)] = total
        return total

    return count(spec)


def _check_size(spec: WorkflowSpec) -> None:
    count = planned_count(spec)
    if count > MAX_PLAN_TASKS:
        raise ValidationError(
            f"a plan has at most {MAX_PLAN_TASKS:,} tasks; workflow {spec.name!r} would be more than "
            f"{MAX_PLAN_TASKS:,} (its fan-out steps count one task per item, its sub-workflows all their steps: "
            "lower expected_items, shorten lists or plan a part)",
            field="workflow",
        )


def spec_tasks(spec: WorkflowSpec, prefix: str = "", outer: tuple[str, ...] = ()) -> list[Task]:
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
            inner = spec_tasks(step.workflow, f"{own}/", deps)
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


def people_agent(tasks: Sequence[Task]) -> PlanAgent | None:
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
            metadata["duration"] = _duration(duration, "duration")
            fields["metadata"] = metadata
        tasks.append(build_task(**fields))
    # As ``submit_tasks`` reads them: an id given twice is one task if both say the same, else a DuplicateTaskError.
    tasks = list(unique_tasks(tasks, "the tasks to plan").values())
    known = {t.task_id for t in tasks}
    for t in tasks:
        for dep in t.dependencies:
            if dep not in known:
                raise ValidationError(f"task {t.task_id!r} needs {dep!r}, which is not among the tasks"
                                      f"{suggest(dep, known)}", field="needs")  # fmt: skip
    topological_order({t.task_id: t.dependencies for t in tasks})  # raises CycleError naming the loop
    return tasks


def read_agents(agents: Iterable[Any] | None, runtime: Runtime | None) -> list[PlanAgent]:
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
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
                raise ValidationError(f"speed must be a number from {MIN_SPEED:g} to {MAX_SPEED:g} (1: the usual "
                                      f"pace), got {speed!r}", field="speed")  # fmt: skip
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


def _duration(value: Any, what: str) -> float:
    """Seconds of a task's duration in a plan: at most 366 days, as every duration pepper takes."""
    seconds = parse_duration(value, what)
    if seconds > MAX_DELAY:
        raise ValidationError(f"{what} must be at most 366 days, got {value!r}", field="durations")
    return seconds


def task_durations(
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
        seconds = _duration(value, f"duration of {t.task_id}")
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


def pool_limits(pool: Mapping[str, Any] | None) -> dict[str, float] | None:
    if pool is None:
        return None
    from pepper.model.resources import Resources

    Resources.parse(pool, "pool")  # names and amounts checked; it leaves out zeros, but none is a limit too
    return {name: parse_quantity(name, amount) for name, amount in pool.items()}
