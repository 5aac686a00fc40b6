"""The agents as the selector and the balancer see them: where they are, how loaded, how good.

They are read through the runtime's ``Backend``: with an engine in this process,
its live state - in place while it holds still, else on the engine's thread (the
state changes under any other thread); without one, the agents of the running workers as the database records
them, with a performance model learned from the stored history (refreshed every
few seconds). Both are an ``AgentsView``: one rule for an agent's standing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import isfinite
from typing import Any, TypeVar

from pepper.core.runtime import Runtime
from pepper.engine.inspection import AgentsView
from pepper.model.agent import AgentSpec
from pepper.model.slots import quick_init
from pepper.scheduling.performance import ScoreParts

T = TypeVar("T")


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
    #: Seconds until a task given now is projected to finish there; None when not asked, or when the agent
    #: frees a slot at no known time (calls that outlived their attempt hold them all: see ``notes``).
    projected_finish: float | None = None
    #: What a person should know about this choice (e.g. a minimum score that did not apply to a new agent).
    notes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, spec: AgentSpec, running: int, parts: ScoreParts, projected: float | None = None,
        notes: tuple[str, ...] = (),
    ) -> AgentProfile:  # fmt: skip
        return _new_profile(
            spec.agent_id, spec.type, spec.kind, spec.task_types, spec.skills, spec.capacity,
            spec.resources.to_dict(), dict(spec.config), parts.score, running, running / spec.capacity, parts,
            projected if projected is None or isfinite(projected) else None, notes,
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentProfile:
        """The profile ``to_dict`` gave (with its score unrounded, as the server's routes give it)."""
        details = data.get("score_details")
        parts = None if details is None else ScoreParts(
            data["performance_score"], details["success"], details["timeliness"], details["rating"],
            details["healthy"], details["observations"], details["ratings"],
        )  # fmt: skip
        return cls(
            data["agent_id"], data["type"], data["kind"], frozenset(data["task_types"]), frozenset(data["skills"]),
            data["capacity"], dict(data["resources"]), dict(data["config"]), data["performance_score"],
            data["running"], data["utilisation"], parts, data.get("projected_finish"), tuple(data.get("notes", ())),
        )  # fmt: skip

    def to_exact_dict(self) -> dict[str, Any]:
        """``to_dict`` with the score as it is (not rounded): what a server sends, so ``from_dict`` gives back
        the same profile."""
        return {**self.to_dict(), "performance_score": self.performance_score}


_new_profile = quick_init(AgentProfile)


def read_agents(runtime: Runtime, question: Callable[[AgentsView], T]) -> T:
    """``question`` answered over the agents through the runtime's backend: the live view when its engine runs
    (or has agents to run), else the stored view (see ``Runtime.read_agents``). Whatever ``question`` returns
    must not hold on to the view, and it must only read it: off the engine's thread it may be asked again."""
    return runtime.read_agents(question)


def known_agent_ids(runtime: Runtime) -> set[str]:
    """The ids of the agents registered in this process or by a live worker sharing its store."""
    local = {a.spec.agent_id for a in runtime.agents()}
    return local | {a.spec.agent_id for a in runtime.store.workers.agents()}
