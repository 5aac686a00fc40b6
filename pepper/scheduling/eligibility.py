"""Which agents may run which tasks, and why not when they may not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from pepper.errors import suggest
from pepper.model.agent import AgentSpec

if TYPE_CHECKING:
    from pepper.model.workflow import Step


class Route(NamedTuple):
    """What decides which agents can take a task: its type, pinned agent and skills.

    Tasks with the same route share one ready queue and one list of candidates.
    """

    task_type: str
    agent: str | None
    skills: frozenset[str]


def rejection(spec: AgentSpec, route: Route) -> str | None:
    """Why ``spec`` cannot take tasks of ``route``, or ``None`` if it can."""
    if route.agent is not None and spec.agent_id != route.agent:
        return f"the task is pinned to agent {route.agent!r}"
    if not spec.accepts(route.task_type):
        return f"does not accept task type {route.task_type!r} (accepts {', '.join(sorted(spec.task_types))})"
    missing = route.skills - spec.skills
    if missing:
        return f"lacks skill{'s' if len(missing) > 1 else ''} {', '.join(sorted(missing))}"
    return None


def eligible(specs: Iterable[AgentSpec], route: Route) -> list[str]:
    """Ids of the agents among ``specs`` that may take tasks of ``route``, in the given order."""
    return [spec.agent_id for spec in specs if rejection(spec, route) is None]


def stranded(
    routes: Iterable[tuple[str, str | None, frozenset[str], int]], online: Sequence[AgentSpec]
) -> list[tuple[str, int]]:
    """(what they wait for and why nobody takes them, how many) of the ready tasks no agent in ``online`` can
    take: ``agent 'w', which is online but lacks skill b``, ``an agent taking 'x' tasks, and no agent online is
    one``."""
    out = []
    by_id = {spec.agent_id: spec for spec in online}
    for task_type, pinned, skills, n in routes:
        route = Route(task_type, pinned, skills)
        if any(rejection(spec, route) is None for spec in online):
            continue
        if pinned is not None:
            there = by_id.get(pinned)
            why = None if there is None else rejection(there, route)
            need = f"agent {pinned!r}, " + (
                "and no agent online is one" if why is None else f"which is online but {why}"
            )
        else:
            need = (
                f"an agent taking {task_type!r} tasks"
                + (f" with skills {', '.join(sorted(skills))}" if skills else "")
                + ", and no agent online is one"
            )
        out.append((need, n))
    merged: dict[str, int] = {}
    for need, n in out:  # routes differing only in what is not said (e.g. resources) count together
        merged[need] = merged.get(need, 0) + n
    return list(merged.items())


def _agent_steps(steps: Iterable[Step]) -> Iterable[Step]:
    """The steps an agent runs, those of sub-workflows included (an approval waits for a person)."""
    for step in steps:
        if step.workflow is not None:
            yield from _agent_steps(step.workflow.steps)
        elif step.runs_on_agent:
            yield step


def unrunnable_steps(steps: Iterable[Step], agents: Sequence[AgentSpec]) -> list[tuple[str, str, str]]:
    """(step id, key, message) for each step that none of ``agents`` can take (by type, pinned agent and
    skills, as the scheduler decides); ``key`` is the step's field at fault: ``agent``, ``type`` or ``skills``.

    A run with such a step could never finish, so callers refuse it before it starts.
    """
    by_id = {a.agent_id: a for a in agents}
    found = []
    for step in _agent_steps(steps):
        skills = step.template.requirements.skills
        route = Route(step.task_type, step.agent, skills)
        if any(rejection(spec, route) is None for spec in agents):
            continue
        name = f"step {step.step_id!r}"
        if step.agent:
            pinned = by_id.get(step.agent)
            if pinned is None:
                found.append((step.step_id, "agent", f"{name} is pinned to agent {step.agent!r}, which is not "
                              f"among the agents.{suggest(step.agent, by_id)}"))  # fmt: skip
            elif not pinned.accepts(step.task_type):
                found.append((step.step_id, "type", f"{name} is pinned to agent {step.agent!r}, which does not "
                              f"take {step.task_type!r} tasks (it takes {_listed(pinned.task_types)})"))  # fmt: skip
            else:
                found.append((step.step_id, "skills", f"{name} needs skills {_listed(skills)}, but its agent "
                              f"{step.agent!r} has {_listed(pinned.skills) or 'none'}"))  # fmt: skip
        elif not any(a.accepts(step.task_type) for a in agents):
            found.append((step.step_id, "type", f"{name} has type {step.task_type!r}, which none of the agents "
                          "takes"))  # fmt: skip
        else:
            takers = ", ".join(f"{a.agent_id} ({_listed(a.skills) or 'none'})" for a in agents
                               if a.accepts(step.task_type))  # fmt: skip
            found.append((step.step_id, "skills", f"{name} needs skills {_listed(skills)}, which no agent taking "
                          f"{step.task_type!r} tasks has all of (their skills: {takers})"))  # fmt: skip
    return found


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
