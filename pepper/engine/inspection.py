"""Read-only questions about an ``EngineState``: why a task waits, and whether work is left."""

from __future__ import annotations

from pepper.engine.live import LiveTask
from pepper.engine.state import EngineState
from pepper.model.task import TaskState
from pepper.scheduling.explain import WaitFacts


def wait_facts(state: EngineState, task_id: str, now: float) -> WaitFacts | None:
    """What ``scheduling.explain`` needs to say why ``task_id`` waits (None if not in memory)."""
    t = state.tasks.get(task_id)
    if t is None:
        return None
    deps = {}
    for dep in t.task.dependencies:
        d = state.tasks.get(dep)
        # Not in memory and nobody awaits it: it finished and was trimmed.
        deps[dep] = d.state if d is not None else (None if dep in state.awaiting else TaskState.COMPLETED)
    short, where = _resource_shortfall(state, t)
    return WaitFacts(
        task=t.task,
        state=t.state,
        now=now,
        dependency_states=deps,
        agents=[(a.spec, len(a.running)) for a in state.agents.values()],
        agent_notes={a.spec.agent_id: a.note for a in state.agents.values() if a.note},
        ahead=_ahead(state, t),
        next_attempt_at=t.next_attempt_at,
        failures=t.failures,
        last_error=t.error,
        accepting=state.accepting,
        resources_short=short,
        resources_where=where,
    )


def _ahead(state: EngineState, t: LiveTask) -> int:
    if not t.qseq or t.route is None:
        return 0
    return state.routing.ahead(t.route, t.qseq, t.task.priority, t.ready_at or 0.0)


def _resource_shortfall(state: EngineState, t: LiveTask) -> tuple[dict[str, float], str | None]:
    """What the least-short eligible agent lacks for ``t`` (empty if some agent has room)."""
    needs = t.task.requirements.resources
    if not needs or t.state is not TaskState.PENDING or t.route is None or not t.route.agents:
        return {}, None
    best: tuple[float, dict[str, float], str] | None = None
    for agent in t.route.agents:
        missing = state.resources.fits(needs, agent.spec.agent_id)
        if not missing:
            return {}, None
        _available, where = state.resources.available(agent.spec.agent_id)
        size = sum(missing.values())
        if best is None or size < best[0]:
            best = (size, missing, where)
    assert best is not None
    return best[1], best[2]


def has_local_work(state: EngineState) -> bool:
    """True while an agent here runs something, or a task here could be started or retried."""
    if any(a.running for a in state.agents.values()) or state.routing.has_queued_work():
        return True
    return any(
        t.state is TaskState.PENDING and t.next_attempt_at is not None and t.route is not None and t.route.agents
        for t in state.tasks.values()
    )
