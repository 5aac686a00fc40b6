"""``LoadBalancer.distribute_workload`` reads task dicts as ``submit_tasks`` does: every key and alias it
takes counts, an unknown key or a reused id is refused, and nothing given is dropped from the plan."""

from __future__ import annotations

from typing import Any

import pytest

import pepper
from pepper.core import LoadBalancer, TaskOrchestrator
from pepper.errors import DuplicateTaskError, TaskNotFoundError, ValidationError


@pytest.fixture
def balancer(runtime: pepper.Runtime) -> LoadBalancer:
    pepper.agent("writer", task_types=["documentation"], skills=["markdown"], runtime=runtime)(str)
    pepper.agent("typesetter", task_types=["documentation"], skills=["markdown", "latex"], runtime=runtime)(str)
    pepper.agent("reviewer", task_types=["review"], runtime=runtime)(str)
    return LoadBalancer(runtime)


@pytest.mark.parametrize(
    "task",
    [
        {"id": "tex", "type": "documentation", "skills": ["latex"]},
        {"task_id": "tex", "task_type": "documentation", "requirements": {"skills": ["latex"]}},
        {"id": "tex", "type": "documentation", "skills": ["latex"], "priority": "high", "needs": ["other"]},
    ],
)
def test_a_plan_task_needing_a_skill_goes_only_to_an_agent_that_has_it(balancer, task):
    # Given agents of which only one has skill latex, and a task needing it written with any accepted key
    # When the work is planned, Then the task goes to that agent
    assert balancer.distribute_workload([task]).assignments == {"tex": "typesetter"}


def test_a_need_nobody_meets_leaves_the_task_unassigned_with_each_agents_reason(balancer):
    tex = {"id": "tex", "type": "review", "skills": ["latex"]}
    pdf = {"id": "pdf", "type": "documentation", "skills": ["latex", "pdf"]}
    plan = balancer.distribute_workload([tex, pdf])
    assert plan.placements == () and set(plan.unassigned) == {"tex", "pdf"}
    assert plan.unassigned["tex"]["reviewer"] == ("lacks skill latex",)
    assert plan.unassigned["pdf"]["typesetter"] == ("lacks skill pdf",)
    assert plan.unassigned["pdf"]["writer"] == ("lacks skills latex, pdf",)


@pytest.mark.parametrize(
    ("task", "match"),
    [
        ({"id": "a", "type": "documentation", "colour": "red"}, r"unknown task field 'colour'; valid keys: id \(or"),
        ({"id": "a", "type": "documentation", "skils": ["md"]}, r"Did you mean 'skills'\?"),
        ({"id": "a", "type": "documentation", "when": "true"}, r"'when' has no meaning here"),
        ({"id": "a", "type": "documentation", "skills": ["x"], "requirements": {"skills": ["y"]}}, "given twice"),
        ({"id": "a", "type": "documentation", "id ": "b"}, "unknown task field"),
        ({"id": "a"}, "needs a type"),
        ({"id": "a", "type": "documentation", "priority": "urgent"}, "unknown priority"),
        ({"id": "a", "type": "documentation", "requirements": {"performance_score": 2}}, "performance_score"),
    ],
)
def test_a_task_submit_tasks_would_refuse_is_refused_by_the_plan_with_its_message(balancer, runtime, task, match):
    # When the plan is asked for with a task dict that is wrong
    with pytest.raises(ValidationError, match=match) as planned:
        balancer.distribute_workload([task], apply=True)
    # Then submit_tasks refuses the same dict with the same message, and neither stored anything
    with pytest.raises(ValidationError) as submitted:
        TaskOrchestrator(runtime).submit_tasks([task])
    assert str(submitted.value) == str(planned.value)
    assert TaskOrchestrator(runtime).list_tasks() == []


@pytest.mark.parametrize("task", [{"type": "review"}, {"id": None, "type": "review"}, {"task_id": None, "type": "r"}])
def test_a_plan_task_needs_an_id_since_the_plan_names_tasks_by_it(balancer, task):
    with pytest.raises(ValidationError, match=r"a task of a plan needs an id \('id' or 'task_id'\)"):
        balancer.distribute_workload([task])


def test_the_same_id_twice_with_different_specs_is_refused_as_submit_tasks_refuses_it(balancer, runtime):
    tasks: list[Any] = [{"id": "a", "type": "documentation"}, {"id": "a", "type": "review"}]
    with pytest.raises(DuplicateTaskError, match="'a' appears twice in the tasks to plan, with different task_type"):
        balancer.distribute_workload(tasks)
    with pytest.raises(DuplicateTaskError, match="'a' appears twice in this submission, with different task_type"):
        TaskOrchestrator(runtime).submit_tasks(tasks)
    with pytest.raises(DuplicateTaskError, match="different requirements"):
        balancer.distribute_workload([{"id": "a", "type": "documentation"},
                                      {"id": "a", "type": "documentation", "skills": ["latex"]}])  # fmt: skip


def test_the_same_task_given_twice_is_planned_once(balancer, runtime):
    TaskOrchestrator(runtime).submit_task("stored", "documentation", requirements={"skills": ["latex"]}, delay="1h")
    stored = TaskOrchestrator(runtime).get_task_status("stored")
    plan = balancer.distribute_workload(
        [
            {"id": "a", "type": "review"},
            {"id": "a", "type": "review"},
            "stored",
            stored,
            {"id": "stored", "type": "documentation", "skills": ["latex"]},
        ]
    )
    assert sorted(p.task_id for p in plan.placements) == ["a", "stored"]
    assert plan.assignments == {"a": "reviewer", "stored": "typesetter"}
    with pytest.raises(DuplicateTaskError, match="'stored' appears twice in the tasks to plan, with different"):
        balancer.distribute_workload(["stored", {"id": "stored", "type": "documentation"}])


def test_a_status_is_planned_as_the_stored_task_it_describes(balancer, runtime):
    # Given a stored task needing latex, and its status (which does not carry its requirements)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("tex", "documentation", requirements={"skills": ["latex"]}, delay="1h")
    status = orchestrator.get_task_status("tex")
    # Then planning the status plans the stored task, with its needs
    assert balancer.distribute_workload([status]).assignments == {"tex": "typesetter"}
    with pytest.raises(TaskNotFoundError):
        balancer.distribute_workload([type("Named", (), {"task_id": "nowhere", "task_type": "review"})()])
    with pytest.raises(ValidationError, match="cannot read a task from 42"):
        balancer.distribute_workload([42])


def test_a_plan_with_no_agent_lists_every_task_with_why(runtime):
    balancer = LoadBalancer(runtime)  # no agent is registered, here or on a live worker
    tasks = [{"id": "a", "type": "review"}, {"id": "b", "type": "review", "needs": ["a"]}]
    given_none = balancer.distribute_workload(tasks, agents=[])
    assert given_none.placements == ()
    assert given_none.unassigned == {t: {"*": ("no agent was given (agents is empty)",)} for t in ("a", "b")}
    none_known = balancer.distribute_workload(tasks)
    assert none_known.unassigned == {t: {"*": ("no agent is registered here or on a live worker",)} for t in ("a", "b")}
    assert none_known.to_dict()["unassigned"]["a"] == {"*": ["no agent is registered here or on a live worker"]}
