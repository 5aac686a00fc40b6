"""The agents as the selector and the balancer see them: where they are, how loaded, how good.

With an engine in this process, its live state is read on the engine's thread
(``read_agents`` hops there: the state changes under any other thread). Without
one, the agents of the running workers are read from the database, with a
performance model learned from the stored history (refreshed every few seconds).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pepper.core.runtime import Runtime
from pepper.engine.inspection import LiveAgents
from pepper.model.agent import AgentSpec
from pepper.model.requirements import NO_REQUIREMENTS
from pepper.scheduling.backlog import shares, waiting_from
from pepper.scheduling.choice import Chooser
from pepper.scheduling.directory import AgentDirectory
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance, ScoreParts
from pepper.scheduling.selection import Candidate, choose

T = TypeVar("T")
LiveView = LiveAgents  # the engine's agents, read on its thread
_STORED_VIEW_TTL = 2.0
# keyed by the runtime itself (weakly): an id() could be reused by a later runtime and serve it a stranger's view
_stored_views: weakref.WeakKeyDictionary[Runtime, tuple[float, StoredView]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent's capabilities and standing: what it takes, what it has, how loaded and how good it is."""

    agent_id: str
    type: str
    kind: str
    task_types: frozenset[str]
    skills: frozenset[str]
    capacity: int
    resources: dict[str, float]
    config: dict[str, Any]
    performance_score: float
    running: int
    utilisation: float
    score_details: ScoreParts | None = None
    projected_finish: float | None = None
    #: What a person should know about this choice (e.g. a minimum score that did not apply to a new agent).
    notes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, spec: AgentSpec, running: int, parts: ScoreParts, projected: float | None = None,
        notes: tuple[str, ...] = (),
    ) -> AgentProfile:  # fmt: skip
        return cls(
            spec.agent_id, spec.type, spec.kind, spec.task_types, spec.skills, spec.capacity,
            spec.resources.to_dict(), dict(spec.config), parts.score, running, running / spec.capacity, parts,
            projected, notes,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        details = self.score_details
        return {
            "agent_id": self.agent_id, "type": self.type, "kind": self.kind,
            "task_types": sorted(self.task_types), "skills": sorted(self.skills), "capacity": self.capacity,
            "resources": self.resources, "config": self.config, "performance_score": round(self.performance_score, 4),
            "running": self.running, "utilisation": self.utilisation, "projected_finish": self.projected_finish,
            "score_details": None if details is None else {
                "success": details.success, "timeliness": details.timeliness, "rating": details.rating,
                "healthy": details.healthy, "observations": details.observations, "ratings": details.ratings,
                "evidence": details.evidence,
            },
            "notes": list(self.notes),
        }  # fmt: skip


class StoredView:
    """The agents of the running workers, as recorded in the database."""

    def __init__(self, runtime: Runtime) -> None:
        store = runtime.store
        self.now = runtime.clock.now()
        self.performance = Performance(runtime.settings.score_half_life)
        since = self.now - 10 * runtime.settings.score_half_life
        outcomes, ratings = store.history.outcomes(since), store.feedback.ratings(since)
        for agent_id, task_type, ok, duration, at in outcomes:
            self.performance.record(agent_id, task_type, ok, duration, at)
        for agent_id, rating, at in ratings:
            self.performance.rate(agent_id, rating, at)
        self._running: dict[str, list[tuple[float, str]]] = {}
        for agent_id, task_type, started_at in store.running_tasks():
            self._running.setdefault(agent_id, []).append((started_at or self.now, task_type))
        self.chooser = Chooser(self.performance, lambda agent: self._running.get(agent.spec.agent_id, ()))
        loads = []
        for order, registered in enumerate(store.workers.agents()):
            load = AgentLoad(registered.spec, order)
            load.running.update(f"running-{i}" for i in range(len(self._running.get(registered.spec.agent_id, ()))))
            loads.append(load)
        self._directory = AgentDirectory(loads)
        waiting = waiting_from(store.ready_tasks(self.now))
        self._shares = shares(waiting, [load.spec for load in loads])

    def directory(self) -> AgentDirectory:
        return self._directory

    def candidate(self, agent: AgentLoad, task_type: str, resources: bool = False) -> Candidate:
        agent_id = agent.spec.agent_id
        estimate, expected, score = self.performance.standing(agent_id, task_type, self.now)
        return Candidate(agent.spec, len(agent.running), 0, score, estimate, self.chooser.available_in(agent, self.now),
                         healthy=self.performance.healthy(agent_id), expected=expected,
                         evidence=self.performance.has_evidence(agent_id, self.now))  # fmt: skip

    def best_matching(self, agents: list[AgentLoad], task_type: str) -> Candidate | None:
        """The best of ``agents`` that takes tasks (they match everything the request asks)."""
        return choose([self.candidate(a, task_type) for a in agents], task_type, NO_REQUIREMENTS, best_only=True).best

    def parts(self, agent_id: str) -> ScoreParts:
        return self.performance.parts(agent_id, self.now)

    def expected(self, agent_id: str, task_type: str) -> float:
        return self.performance.expected_time(agent_id, task_type, self.now)

    def queued(self, agent: AgentLoad) -> float:
        return self._shares.get(agent.spec.agent_id, 0.0)


def read_agents(runtime: Runtime, question: Callable[[LiveAgents | StoredView], T]) -> T:
    """``question`` answered from the live view when this runtime's engine runs (or has agents to run), on the
    engine's thread; else from the stored view. Whatever ``question`` returns must not hold on to the view."""
    if runtime.running or runtime.agents():
        if not runtime.running:
            runtime.start()
        now = runtime.clock.now()
        return runtime.ask_engine(lambda service: question(service.agents_view(now)))
    return question(_stored_view(runtime))


def _stored_view(runtime: Runtime) -> StoredView:
    cached = _stored_views.get(runtime)
    if cached is not None and time.monotonic() - cached[0] < _STORED_VIEW_TTL:
        return cached[1]
    view = StoredView(runtime)
    _stored_views[runtime] = (time.monotonic(), view)
    return view
