"""Which agents may run which tasks, and why not when they may not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from pepper.model.agent import AgentSpec


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
    """(what they need, how many) of the ready tasks no agent in ``online`` can take."""
    out = []
    for task_type, pinned, skills, n in routes:
        if any(rejection(spec, Route(task_type, pinned, skills)) is None for spec in online):
            continue
        if pinned is not None:
            need = f"agent {pinned!r}"
        else:
            need = f"an agent taking {task_type!r} tasks" + (
                f" with skills {', '.join(sorted(skills))}" if skills else ""
            )
        out.append((need, n))
    merged: dict[str, int] = {}
    for need, n in out:  # routes differing only in what is not said (e.g. resources) count together
        merged[need] = merged.get(need, 0) + n
    return list(merged.items())
