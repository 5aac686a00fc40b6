"""The agents online: those of live workers, with their load, learned score and queue (``pepper agents``, the
HTTP API's ``/agents``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pepper.core.distribution import AgentSelector, LoadBalancer
from pepper.core.runtime import Runtime
from pepper.errors import AgentNotFoundError


@dataclass(frozen=True, slots=True)
class AgentStanding:
    """What pepper learned about an agent: its score (0-1), its parts, and how many tasks wait for it."""

    score: float
    queued: float
    parts: Mapping[str, Any] | None = None


def agent_standing(runtime: Runtime, agent_ids: set[str]) -> dict[str, AgentStanding]:
    """Score and queue of each agent (one that went offline meanwhile is left out)."""
    selector, balancer = AgentSelector(runtime), LoadBalancer(runtime)
    standing = {}
    for agent_id in sorted(agent_ids):
        try:
            capabilities = selector.get_agent_capabilities(agent_id)
            queued = balancer.get_agent_load(agent_id).queued
        except AgentNotFoundError:
            continue
        parts = capabilities.to_dict()["score_details"]
        standing[agent_id] = AgentStanding(capabilities.performance_score, queued, parts)
    return standing


def agent_dict(agent: Any, running: Mapping[str, int], standing: Mapping[str, AgentStanding]) -> dict[str, Any]:
    """JSON form of one agent of a live worker."""
    known = standing.get(agent.spec.agent_id)
    return {
        **agent.spec.to_dict(),
        "running": running.get(agent.spec.agent_id, 0),
        "queued": None if known is None else known.queued,
        "score": None if known is None else round(known.score, 4),
        "score_parts": None if known is None else known.parts,
        "worker_id": agent.worker_id,
        "hostname": agent.hostname,
        "pid": agent.pid,
        "registered_at": agent.registered_at,
    }


def online_agents(runtime: Runtime, agent_id: str | None = None) -> list[dict[str, Any]]:
    """The agents of live workers (only ``agent_id``'s entries, if given: one per worker running it) as
    ``pepper agents --json`` prints them; ``AgentNotFoundError`` if ``agent_id`` is not online."""
    online = runtime.store.workers.agents()
    if agent_id is not None:
        known = {a.spec.agent_id for a in online}
        online = [a for a in online if a.spec.agent_id == agent_id]
        if not online:
            raise AgentNotFoundError(agent_id, known)
    running = runtime.store.running_by_agent()
    standing = agent_standing(runtime, {a.spec.agent_id for a in online})
    return [agent_dict(a, running, standing) for a in online]
