"""``AgentSelector`` (who should take a task, and why the others cannot) and ``LoadBalancer`` (load, plans)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pepper.core.agents_view import AgentProfile, known_agent_ids, read_agents
from pepper.core.component import Component
from pepper.core.runtime import Runtime
from pepper.core.served import plan_agent, plan_task, server_of, stored_task_id
from pepper.engine.inspection import AgentsView
from pepper.errors import AgentNotFoundError, NoEligibleAgentError, TaskNotFoundError, ValidationError
from pepper.model.agent import AgentSpec
from pepper.model.requirements import Requirements
from pepper.model.submission import task_from_mapping, unique_tasks
from pepper.model.task import Task
from pepper.model.task_spec import FIELD_OF
from pepper.scheduling.balance import PlanTask, WorkloadPlan, distribute
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import NEUTRAL_SCORE, ScoreParts
from pepper.scheduling.selection import Candidate, Choice, asks_only_type_and_skills, choose

#: What ``AgentProfile.of`` makes a profile of: spec, tasks running, score parts, projected finish, notes.
_Standing = tuple[AgentSpec, int, ScoreParts, float, tuple[str, ...]]


def _task_type(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"task_type must be a non-empty string, got {value!r}", field="task_type")
    return value


class AgentSelector(Component):
    """Chooses the agent for a task: eligible (type, skills, availability, score, resources), then the earliest
    projected finish (see ``pepper.scheduling.selection``)."""

    def rank_agents(self, task_type: str, requirements: Mapping[str, Any] | None = None) -> list[AgentProfile]:
        """Every eligible agent, best first (empty if none is eligible)."""
        task_type, req = _task_type(task_type), Requirements.parse(requirements)
        if (server := server_of(self.runtime)) is not None:
            body = {"task_type": task_type, "requirements": req.to_dict()}
            return [AgentProfile.from_dict(p) for p in server.ask_server("POST", ("agents", "rank"), body)["items"]]

        def rank(view: AgentsView) -> list[AgentProfile]:
            choice = _choose(view, task_type, req)
            return [AgentProfile.of(c.spec, c.running, view.parts(c.agent_id), c.projected_finish,
                                    choice.notes.get(c.agent_id, ()) + _held_note(c.note, c.projected_finish))
                    for c in choice.eligible]  # fmt: skip

        return read_agents(self.runtime, rank)

    def select_agent(self, task_type: str, requirements: Mapping[str, Any] | None = None) -> AgentProfile:
        """The best eligible agent; ``NoEligibleAgentError`` lists every agent and why it was ruled out."""
        task_type, req = _task_type(task_type), Requirements.parse(requirements)
        if (server := server_of(self.runtime)) is not None:
            body = {"task_type": task_type, "requirements": req.to_dict()}
            return AgentProfile.from_dict(server.ask_server("POST", ("agents", "select"), body))

        def select(view: AgentsView) -> _Standing | list[Candidate]:
            if simple:  # the common case: ranked without building candidates, and without notes
                found = view.best_agent_in(view.directory().pool(task_type, req.skills), task_type)
                if found is not None:
                    agent, projected = found
                    notes = _held_note(agent.status_note, projected)
                    return agent.spec, agent.busy, view.parts(agent.spec.agent_id), projected, notes
                # Nobody is eligible: the type, the skills and whether an agent takes tasks are all the reasons
                # can name, so the rest of each agent's standing (costly to find for every agent) is left out.
                return [make((a.spec, a.busy, 0, NEUTRAL_SCORE, 1.0, 0.0, a.accepting, True, None, a.note,
                              None, True)) for a in view.directory().agents.values()]  # fmt: skip
            choice = _choose(view, task_type, req, best_only=True)
            best = choice.best
            if best is not None:
                notes = choice.notes.get(best.agent_id, ()) + _held_note(best.note, best.projected_finish)
                return best.spec, best.running, view.parts(best.agent_id), best.projected_finish, notes
            return [view.candidate(a, task_type, bool(req.resources)) for a in view.directory().agents.values()]

        simple, make = asks_only_type_and_skills(req), Candidate._make
        # What the answer is made of is immutable: the profile, or the reasons why nobody is eligible, are worked
        # out after the read, which is kept short.
        answer = read_agents(self.runtime, select)
        if isinstance(answer, list):
            raise NoEligibleAgentError(task_type, dict(choose(answer, task_type, req).rejected))
        return AgentProfile.of(*answer)

    def get_agent_capabilities(self, agent_id: str) -> AgentProfile:
        """Task types, skills, capacity, resources, config, score and load of an agent."""
        if (server := server_of(self.runtime)) is not None:
            return AgentProfile.from_dict(server.ask_server("GET", ("agents", agent_id, "profile")))

        def profile(view: AgentsView) -> AgentProfile:
            agent = view.directory().agents.get(agent_id)
            if agent is None:
                raise AgentNotFoundError(agent_id, view.directory().agents)
            return AgentProfile.of(agent.spec, agent.busy, view.parts(agent_id))

        return read_agents(self.runtime, profile)


def _held_note(note: str | None, projected: float) -> tuple[str, ...]:
    """What a person should know of a chosen agent whose slots are all held by calls that outlived their
    attempt: it is free at no known time (its projected finish is left out)."""
    if projected != float("inf"):
        return ()
    return (f"{note}; when it takes the task is not known" if note else "when it takes the task is not known",)


def _choose(view: AgentsView, task_type: str, req: Requirements, best_only: bool = False) -> Choice:
    """The eligible agents for a task (call inside ``read_agents``: a live view is read on the engine's thread)."""
    if best_only and asks_only_type_and_skills(req):  # the common case, ranked without building candidates
        best = view.best_in(view.directory().pool(task_type, req.skills), task_type)
        return Choice(best, (best,) if best else ())
    matching = view.directory().matching(task_type, req.skills)
    with_resources = bool(req.resources)
    candidates = [view.candidate(a, task_type, with_resources) for a in matching]
    return choose(candidates, task_type, req, best_only=best_only)


@dataclass(frozen=True, slots=True)
class AgentLoadReport:
    """How busy an agent is: tasks running, tasks waiting for it (shared ones counted in part), capacity, and
    slots held by calls that outlived their attempt (a timeout or cancel a thread cannot obey): those calls
    still run, so their slots are taken until they return."""

    agent_id: str
    running: int
    queued: float
    capacity: int
    held: int = 0
    #: Why the agent takes no tasks, or fewer than its capacity (None: nothing to say).
    note: str | None = None

    @property
    def busy(self) -> int:
        """Slots taken: tasks running and held slots."""
        return self.running + self.held

    @property
    def utilisation(self) -> float:
        return self.busy / self.capacity

    def to_dict(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "running": self.running, "held": self.held, "queued": self.queued,
                "capacity": self.capacity, "utilisation": self.utilisation, "note": self.note}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentLoadReport:
        """The report ``to_dict`` gave (what a server answers)."""
        return cls(data["agent_id"], data["running"], data["queued"], data["capacity"], data["held"], data["note"])


class LoadBalancer(Component):
    """Agent load, and plans that spread a workload so the last task finishes as early as possible."""

    def get_agent_load(self, agent_id: str) -> AgentLoadReport:
        if (server := server_of(self.runtime)) is not None:
            return AgentLoadReport.from_dict(server.ask_server("GET", ("agents", agent_id, "load")))

        def load(view: AgentsView) -> AgentLoadReport:
            agent = view.directory().agents.get(agent_id)
            if agent is None:
                raise AgentNotFoundError(agent_id, view.directory().agents)
            return AgentLoadReport(agent_id, len(agent.running), view.queued(agent), agent.spec.capacity,
                                   len(agent.held), agent.status_note)  # fmt: skip

        return read_agents(self.runtime, load)

    def distribute_workload(
        self, tasks: Iterable[Any], agents: Iterable[Any] | None = None, *, apply: bool = False
    ) -> WorkloadPlan:
        """Assign ``tasks`` (objects, dicts or ids) to ``agents`` (objects, dicts or ids; default: all),
        longest first onto the earliest-finishing agent, each after the tasks of the plan it depends on (those
        outside the plan, stored or to be submitted later as ``submit_tasks`` allows, are not waited for in the
        projection). A cycle is refused. ``apply=True`` pins the plan onto stored tasks."""
        runtime = self.runtime
        if (server := server_of(runtime)) is not None:  # planned (and placed, with apply) by the server
            chosen = None if agents is None else [plan_agent(a) for a in _items(agents, "agents")]
            body = {"tasks": [plan_task(t) for t in _items(tasks, "tasks")], "agents": chosen}
            return WorkloadPlan.from_dict(server.ask_server("POST", ("workload", "apply" if apply else "plan"), body))
        plan_tasks = self._plan_tasks(runtime, _items(tasks, "tasks"))
        chosen = None if agents is None else _items(agents, "agents")
        task_types = {t.task_type for t in plan_tasks}
        resources = any(t.requirements.resources for t in plan_tasks)  # then each agent's room is read, too

        def standing(view: AgentsView) -> tuple[list[Candidate], dict[tuple[str, str], float]]:
            candidates = self._candidates(view, chosen, resources)
            times = {(c.agent_id, t): view.expected(c.agent_id, t) for c in candidates for t in task_types}
            return candidates, times

        # The agents' standing is read in one go; the plan itself is worked out here, off the engine's thread.
        candidates, times = read_agents(runtime, standing)
        nobody = (
            "no agent was given (agents is empty)"
            if chosen == []
            else "no agent is registered here or on a live worker"
        )
        plan = distribute(plan_tasks, candidates, lambda agent_id, task_type: times.get((agent_id, task_type), 1.0),
                          nobody=nobody)  # fmt: skip
        if apply:
            _check_applicable(runtime, plan_tasks, chosen)
            runtime.place(plan.assignments)
        return plan

    @staticmethod
    def _plan_tasks(runtime: Runtime, items: list[Any]) -> list[PlanTask]:
        """The tasks of a plan. A dict is read as ``submit_tasks`` reads it (the same keys, aliases and checks);
        an id or an object naming a stored task is that task. An id given twice is one task if both say the same,
        else a ``DuplicateTaskError``."""
        now = runtime.clock.now()
        tasks = unique_tasks([_plan_task(runtime, item, now) for item in items], "the tasks to plan")
        return [PlanTask(t.task_id, t.task_type, t.requirements, t.dependencies) for t in tasks.values()]

    @staticmethod
    def _candidates(view: AgentsView, agents: list[Any] | None, resources: bool = False) -> list[Candidate]:
        """The agents of a plan; with ``resources``, each with what the pool (or its budget) has free for it, as
        the live scheduler checks a task's resources against."""
        directory = view.directory()

        def standing(agent: AgentLoad) -> Candidate:
            base = view.candidate(agent, "", resources)
            return base._replace(queued=round(view.queued(agent)))

        if agents is None:
            return [standing(a) for a in directory.agents.values()]
        out = []
        for item in agents:
            if isinstance(item, Mapping):
                described = item.get("agent_id")
                if not isinstance(described, str) or described not in directory.agents:  # described, not registered
                    out.append(Candidate(AgentSpec.from_dict({"task_types": ["*"], **item})))
                    continue
                item = item["agent_id"]
            agent_id = item if isinstance(item, str) else getattr(item, "agent_id", None)
            if agent_id not in directory.agents:
                raise AgentNotFoundError(str(agent_id), directory.agents)
            out.append(standing(directory.agents[agent_id]))
        return out


def _check_applicable(runtime: Runtime, tasks: list[PlanTask], agents: list[Any] | None) -> None:
    """A plan is applied to stored tasks and registered agents only: pinning a task to an agent described in the
    request (not running anywhere) would leave it waiting for ever, and a task not stored has nothing to pin."""
    if agents is not None:
        known = known_agent_ids(runtime)
        for item in agents:
            described = item.get("agent_id") if isinstance(item, Mapping) else None
            if isinstance(item, Mapping) and described not in known:
                raise ValidationError(
                    f"agent {described!r} is described, not registered: a plan applied to stored tasks may only "
                    f"name registered agents ({', '.join(sorted(known)) or 'none are registered'}); plan with "
                    "described agents without apply",
                    field="agents",
                )
    stored = runtime.store.get_tasks([t.task_id for t in tasks])
    missing = [t.task_id for t in tasks if t.task_id not in stored]
    if missing:
        raise ValidationError(
            f"task {missing[0]!r} is not stored{f' (nor {len(missing) - 1} more)' if len(missing) > 1 else ''}: "
            "a plan is applied to stored tasks; submit them first, or plan without apply",
            field="tasks",
        )


def _plan_task(runtime: Runtime, item: Any, now: float) -> Task:
    """The task ``item`` gives: a ``Task``, a dict (with an id), a stored record, or an id or status of a stored
    task."""
    if isinstance(item, Task):
        return item
    if isinstance(item, Mapping):
        if not any(FIELD_OF.get(key) == "task_id" and value is not None for key, value in item.items()
                   if isinstance(key, str)):  # fmt: skip
            raise ValidationError(
                f"a task of a plan needs an id ('id' or 'task_id'): the plan names tasks by it; got {dict(item)!r}",
                field="tasks",
            )
        return task_from_mapping(item, now)
    task = getattr(item, "task", None)
    if isinstance(task, Task):  # a stored record
        return task
    task_id = stored_task_id(item)
    record = runtime.store.get_tasks([task_id]).get(task_id)  # a status, say: the stored task it describes
    if record is None:
        raise TaskNotFoundError(task_id)
    return record.task


def _items(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(f"{what} must be a list (of objects, dicts or ids), got {type(values).__name__}")
    return list(values)
