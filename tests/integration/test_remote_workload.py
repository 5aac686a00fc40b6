"""``LoadBalancer.distribute_workload`` over ``pepper.connect``: the server's plan, the same as its own runtime
makes; placed only when asked (``apply=True``, a write token), as locally."""

from __future__ import annotations

import httpx
import pytest

from pepper.core import LoadBalancer, TaskOrchestrator
from pepper.errors import (
    AgentNotFoundError,
    CycleError,
    DuplicateTaskError,
    ScopeError,
    TaskNotFoundError,
    ValidationError,
)
from pepper.model.task import Task
from tests.integration.served import PATIENCE, Served, served  # noqa: F401

AGENTS = ["documentation_agent", "review_agent"]


def test_the_seed_plan_is_the_servers(served: Served) -> None:  # noqa: F811
    tasks = [{"id": "t1", "type": "documentation"}, {"id": "t2", "type": "documentation", "requirements": {
        "skills": ["api_docs"]}}, Task("t3", "review"), {"id": "t4", "type": "translation"}]  # fmt: skip
    remote = LoadBalancer(served.reader).distribute_workload(tasks=tasks, agents=AGENTS)
    local = LoadBalancer(served.local).distribute_workload(tasks=tasks, agents=AGENTS)
    assert remote == local
    assert remote.assignments["t2"] == "documentation_agent" and remote.assignments["t3"] == "review_agent"
    assert "t4" in remote.unassigned
    everyone = LoadBalancer(served.reader).distribute_workload([{"id": "t1", "type": "documentation"}])
    assert everyone == LoadBalancer(served.local).distribute_workload([{"id": "t1", "type": "documentation"}])
    described = [{"agent_id": "elsewhere", "capacity": 3}]
    made_there = LoadBalancer(served.reader).distribute_workload(tasks[:1], described)
    assert made_there == LoadBalancer(served.local).distribute_workload(tasks[:1], described)
    assert made_there.assignments == {"t1": "elsewhere"}
    chained = [Task("first", "documentation"), Task("second", "documentation", dependencies=("first",))]
    after = LoadBalancer(served.reader).distribute_workload(chained, AGENTS)
    assert after == LoadBalancer(served.local).distribute_workload(chained, AGENTS)
    first, second = sorted(after.placements, key=lambda p: p.task_id)
    assert second.start == pytest.approx(first.end)  # the dependency went to the server with the task


def test_a_plan_places_only_when_applied_with_a_write_token(served: Served) -> None:  # noqa: F811
    orchestrator = TaskOrchestrator(runtime=served.remote)
    ids = [f"placed-{n}" for n in range(4)]
    orchestrator.submit_tasks([{"id": i, "type": "documentation", "needs": ["placed-gate"]} for i in ids])
    with pytest.raises(ScopeError):
        LoadBalancer(served.reader).distribute_workload(ids, AGENTS, apply=True)
    planned = LoadBalancer(served.reader).distribute_workload(ids, AGENTS)
    assert all(orchestrator.get_task_status(i).agent_id is None for i in ids)  # planning placed nothing
    plan = LoadBalancer(served.remote).distribute_workload(ids, AGENTS, apply=True)
    assert plan == planned and set(plan.assignments.values()) == set(AGENTS)
    orchestrator.submit_task("placed-gate", "review")
    statuses = orchestrator.wait(ids, timeout=PATIENCE)
    assert {s.task_id: s.agent_id for s in statuses} == plan.assignments


def test_bad_plans_are_refused_with_the_same_errors(served: Served) -> None:  # noqa: F811
    balancer = LoadBalancer(served.reader)
    with pytest.raises(TaskNotFoundError, match="never-stored"):
        balancer.distribute_workload(["never-stored"])
    with pytest.raises(AgentNotFoundError, match="ghost"):
        balancer.distribute_workload([{"id": "t1", "type": "documentation"}], ["ghost"])
    with pytest.raises(DuplicateTaskError):
        balancer.distribute_workload([{"id": "t1", "type": "documentation"}, {"id": "t1", "type": "review"}])
    with pytest.raises(ValidationError, match="needs an id"):
        balancer.distribute_workload([{"type": "documentation"}])
    with pytest.raises(CycleError):
        balancer.distribute_workload([{"id": "x", "type": "documentation", "needs": ["x"]}])
    with pytest.raises(ValidationError, match="must be a list"):
        balancer.distribute_workload("t1")
    with pytest.raises(ValidationError, match="cannot read a task"):
        balancer.distribute_workload([3.5])
    headers = {"Authorization": f"Bearer {served.tokens['read']}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers, timeout=PATIENCE) as client:
        answer = client.post("/workload/plan", json={"tasks": "t1"})
        assert answer.status_code == 422 and "tasks" in answer.json()["error"]["message"]
        paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/workload/plan" in paths and "/api/v1/workload/apply" in paths
