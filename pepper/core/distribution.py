"""``AgentSelector`` (who should take a task, and why the others cannot) and ``LoadBalancer`` (load, plans)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pepper.core.agents_view import AgentProfile, LiveView, StoredView, agents_view
from pepper.core.component import Component
from pepper.core.runtime import Runtime
from pepper.errors import AgentNotFoundError, NoEligibleAgentError, TaskNotFoundError, ValidationError
from pepper.model.agent import AgentSpec
from pepper.model.requirements import Requirements
from pepper.scheduling.balance import PlanTask, WorkloadPlan, distribute
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.selection import Candidate, Choice, asks_only_type_and_skills, choose


def _task_type(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"task_type must be a non-empty string, got {value!r}", field="task_type")
    return value


class AgentSelector(Component):
    """Chooses the agent for a task: eligible (type, skills, availability, score, resources), then the earliest
    projected finish (see ``pepper.scheduling.selection``)."""

    def rank_agents(self, task_type: str, requirements: Mapping[str, Any] | None = None) -> list[AgentProfile]:
        """Every eligible agent, best first (empty if none is eligible)."""
        view, choice = self._choose(task_type, requirements)
        return [AgentProfile.of(c.spec, c.running, view.parts(c.agent_id), c.projected_finish) for c in choice.eligible]

    def select_agent(self, task_type: str, requirements: Mapping[str, Any] | None = None) -> AgentProfile:
        """The best eligible agent; ``NoEligibleAgentError`` lists every agent and why it was ruled out."""
        view, choice = self._choose(task_type, requirements, best_only=True)
        best = choice.best
        if best is None:
            req = Requirements.parse(requirements)
            everyone = [view.candidate(a, task_type, bool(req.resources)) for a in view.directory().agents.values()]
            raise NoEligibleAgentError(task_type, dict(choose(everyone, task_type, req).rejected))
        return AgentProfile.of(best.spec, best.running, view.parts(best.agent_id), best.projected_finish)

    def _choose(self, task_type: str, requirements: Mapping[str, Any] | None, best_only: bool = False):  # type: ignore[no-untyped-def]
        task_type = _task_type(task_type)
        req = Requirements.parse(requirements)
        view = agents_view(self.runtime)
        matching = view.directory().matching(task_type, req.skills)
        if best_only and asks_only_type_and_skills(req):  # the common case, ranked without building candidates
            best = view.best_matching(matching, task_type)
            return view, Choice(best, (best,) if best else ())
        with_resources = bool(req.resources)
        candidates = [view.candidate(a, task_type, with_resources) for a in matching]
        return view, choose(candidates, task_type, req, best_only=best_only)

    def get_agent_capabilities(self, agent_id: str) -> AgentProfile:
        """Task types, skills, capacity, resources, config, score and load of an agent."""
        view = agents_view(self.runtime)
        agent = view.directory().agents.get(agent_id)
        if agent is None:
            raise AgentNotFoundError(agent_id, view.directory().agents)
        return AgentProfile.of(agent.spec, len(agent.running), view.parts(agent_id))


@dataclass(frozen=True, slots=True)
class AgentLoadReport:
    """How busy an agent is: tasks running, tasks waiting for it (shared ones counted in part), capacity."""

    agent_id: str
    running: int
    queued: float
    capacity: int

    @property
    def utilisation(self) -> float:
        return self.running / self.capacity

    def to_dict(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "running": self.running, "queued": self.queued,
                "capacity": self.capacity, "utilisation": self.utilisation}  # fmt: skip


class LoadBalancer(Component):
    """Agent load, and plans that spread a workload so the last task finishes as early as possible."""

    def get_agent_load(self, agent_id: str) -> AgentLoadReport:
        view = agents_view(self.runtime)
        agent = view.directory().agents.get(agent_id)
        if agent is None:
            raise AgentNotFoundError(agent_id, view.directory().agents)
        return AgentLoadReport(agent_id, len(agent.running), view.queued(agent), agent.spec.capacity)

    def distribute_workload(
        self, tasks: Iterable[Any], agents: Iterable[Any] | None = None, *, apply: bool = False
    ) -> WorkloadPlan:
        """Assign ``tasks`` (objects, dicts or ids) to ``agents`` (objects, dicts or ids; default: all),
        longest first onto the earliest-finishing agent. ``apply=True`` pins the plan onto stored tasks."""
        runtime = self.runtime
        view = agents_view(runtime)
        plan_tasks = [self._plan_task(runtime, item) for item in _items(tasks, "tasks")]
        candidates = self._candidates(view, agents)
        known = {c.agent_id for c in candidates}

        def expected(agent_id: str, task_type: str) -> float:
            return view.expected(agent_id, task_type) if agent_id in known else 1.0

        plan = distribute(plan_tasks, candidates, expected)
        if apply:
            runtime.place(plan.assignments)
        return plan

    @staticmethod
    def _plan_task(runtime: Runtime, item: Any) -> PlanTask:
        if isinstance(item, str):
            record = runtime.store.get_tasks([item]).get(item)
            if record is None:
                raise TaskNotFoundError(item)
            return PlanTask(item, record.task.task_type, record.task.requirements)
        if isinstance(item, Mapping):
            task_id = item.get("task_id", item.get("id"))
            task_type = item.get("task_type", item.get("type"))
            if not isinstance(task_id, str) or not isinstance(task_type, str):
                raise ValidationError(f"a task needs an id and a type, got {dict(item)!r}", field="tasks")
            return PlanTask(task_id, task_type, Requirements.parse(item.get("requirements")))
        task_id, task_type = getattr(item, "task_id", None), getattr(item, "task_type", None)
        if not isinstance(task_id, str) or not isinstance(task_type, str):
            raise ValidationError(f"cannot read a task from {item!r}; give a Task, a dict or an id", field="tasks")
        task = getattr(item, "task", item)
        return PlanTask(task_id, task_type, getattr(task, "requirements", Requirements()))

    @staticmethod
    def _candidates(view: LiveView | StoredView, agents: Iterable[Any] | None) -> list[Candidate]:
        directory = view.directory()

        def standing(agent: AgentLoad) -> Candidate:
            base = view.candidate(agent, "")
            return base._replace(queued=round(view.queued(agent)))

        if agents is None:
            return [standing(a) for a in directory.agents.values()]
        out = []
        for item in _items(agents, "agents"):
            if isinstance(item, Mapping):
                if item.get("agent_id") not in directory.agents:  # an agent described, not registered
                    out.append(Candidate(AgentSpec.from_dict({"task_types": ["*"], **item})))
                    continue
                item = item["agent_id"]
            agent_id = item if isinstance(item, str) else getattr(item, "agent_id", None)
            if agent_id not in directory.agents:
                raise AgentNotFoundError(str(agent_id), directory.agents)
            out.append(standing(directory.agents[agent_id]))
        return out


def _items(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(f"{what} must be a list (of objects, dicts or ids), got {type(values).__name__}")
    return list(values)
