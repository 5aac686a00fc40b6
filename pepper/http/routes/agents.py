"""``/api/v1/agents``: the agents of live workers, with load, capacity, score and skills; who would take a task
(``AgentSelector``), an agent's profile and load (``LoadBalancer``), its resources and usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pepper.core import AgentSelector, LoadBalancer, ResourceManager, ResourceMonitor
from pepper.core.online import online_agents
from pepper.http.auth import READ, WRITE
from pepper.http.lists import Limit, Page, listed
from pepper.http.paths import IdRoute
from pepper.http.routes import runtime_of

router = APIRouter(prefix="/agents", tags=["agents"], route_class=IdRoute)

#: ``/api/v1/workload``: plans that spread tasks over agents (``LoadBalancer.distribute_workload``).
workload_router = APIRouter(prefix="/workload", tags=["agents"])

_REQUIREMENTS = 'What the task needs, e.g. {"skills": ["markdown"], "performance_score": 0.8}.'
_TASKS = 'Each a stored task\'s id, or a task as `submit_task` takes it, e.g. {"id": "t1", "type": "review"}.'
_AGENTS = "Agent ids (or dicts describing agents); none: every agent online."


class ChoiceBody(BaseModel):
    """A task to choose an agent for: its type, and what it needs."""

    task_type: str = Field(description="The task's type, e.g. 'documentation'.")
    requirements: dict[str, Any] | None = Field(default=None, description=_REQUIREMENTS)


@router.get("", dependencies=[READ], response_model=Page)
def list_agents(request: Request, limit: Limit = 1000) -> Page:
    """The agents online, as `pepper agents --json` lists them."""
    listed(limit)
    return Page(items=online_agents(runtime_of(request))[:limit])


@router.post("/select", dependencies=[READ], response_model=dict[str, Any])
def select_agent(request: Request, body: ChoiceBody) -> dict[str, Any]:
    """The agent `AgentSelector.select_agent` chooses for the task, as a profile (its score unrounded); 404
    (NoEligibleAgentError) says, agent by agent, why none can take it. Chooses only: nothing is placed."""
    profile = AgentSelector(runtime_of(request)).select_agent(body.task_type, body.requirements)
    return profile.to_exact_dict()


@router.post("/rank", dependencies=[READ], response_model=Page)
def rank_agents(request: Request, body: ChoiceBody) -> Page:
    """Every agent that could take the task, best first (`AgentSelector.rank_agents`); empty if none can."""
    ranked = AgentSelector(runtime_of(request)).rank_agents(body.task_type, body.requirements)
    return Page(items=[profile.to_exact_dict() for profile in ranked])


@router.get("/{agent_id}/profile", dependencies=[READ], response_model=dict[str, Any])
def agent_profile(request: Request, agent_id: str) -> dict[str, Any]:
    """An agent's task types, skills, capacity, resources, config, score and load
    (`AgentSelector.get_agent_capabilities`)."""
    return AgentSelector(runtime_of(request)).get_agent_capabilities(agent_id).to_exact_dict()


@router.get("/{agent_id}/load", dependencies=[READ], response_model=dict[str, Any])
def agent_load(request: Request, agent_id: str) -> dict[str, Any]:
    """How busy an agent is: tasks running and waiting for it, capacity, held slots (`LoadBalancer.get_agent_load`)."""
    return LoadBalancer(runtime_of(request)).get_agent_load(agent_id).to_dict()


@router.get("/{agent_id}/resources", dependencies=[READ], response_model=dict[str, Any])
def agent_resources(request: Request, agent_id: str) -> dict[str, Any]:
    """What an agent was given (its budget, its running tasks' leases) beside what it really uses
    (`ResourceManager.get_resource_usage`)."""
    return ResourceManager(runtime_of(request)).get_resource_usage(agent_id).to_dict()


@router.get("/{agent_id}/usage", dependencies=[READ], response_model=dict[str, Any])
def agent_usage(request: Request, agent_id: str, metrics: str = "cpu,memory,storage") -> dict[str, Any]:
    """What an agent really uses, as its worker last measured it (`ResourceMonitor.get_usage`): the `metrics`
    named (comma-separated: cpu, memory, storage; empty for none)."""
    names = [name for name in metrics.split(",") if name]
    return ResourceMonitor(runtime_of(request)).get_usage(agent_id, names).to_dict()


@router.get("/{agent_id}", dependencies=[READ], response_model=dict[str, Any])
def get_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """One agent online (the first worker's entry when several run it; `workers` lists them all)."""
    entries = online_agents(runtime_of(request), agent_id)
    return {**entries[0], "workers": [e["worker_id"] for e in entries]}


class WorkloadBody(BaseModel):
    """Tasks to spread over agents."""

    tasks: list[str | dict[str, Any]] = Field(max_length=10_000, description=_TASKS)
    agents: list[str | dict[str, Any]] | None = Field(default=None, max_length=10_000, description=_AGENTS)


@workload_router.post("/plan", dependencies=[READ], response_model=dict[str, Any])
def plan_workload(request: Request, body: WorkloadBody) -> dict[str, Any]:
    """Where each task would go so the last one finishes earliest (`LoadBalancer.distribute_workload`), and
    why any could not be placed. Plans only: nothing is placed."""
    return LoadBalancer(runtime_of(request)).distribute_workload(body.tasks, body.agents).to_dict()


@workload_router.post("/apply", dependencies=[WRITE], response_model=dict[str, Any])
def apply_workload(request: Request, body: WorkloadBody) -> dict[str, Any]:
    """The plan of `/workload/plan`, pinned onto the stored tasks it names (`distribute_workload(apply=True)`)."""
    return LoadBalancer(runtime_of(request)).distribute_workload(body.tasks, body.agents, apply=True).to_dict()
