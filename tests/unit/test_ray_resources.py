"""Resources of agents on Ray (``OffHost``), pure: their tasks' machine needs are checked within the budget the
agent declares to Ray and charge nothing to pepper's pool; only shared pools are pepper's. Live, and in plans."""

from __future__ import annotations

import pytest

import pepper
from pepper.engine.inspection import wait_facts
from pepper.engine.state import EngineState
from pepper.model.agent import AgentSpec
from pepper.model.events import AgentAdded, AttemptEnded, LeasesLoaded, Start, TakeLease, TasksAdded
from pepper.model.lease import LeaseKind
from pepper.model.resources import OffHost, Resources
from pepper.model.submission import build_task
from pepper.resources.view import ResourceView
from pepper.scheduling.explain import explain
from pepper.scheduling.planning import (
    PlanAgent,
    PlanTask,
    Slot,
    budget_problem,
    can_run,
    check_schedule,
    never_runnable,
    resource_bound,
)

POOL = {"cpu": 2.0, "memory": 1024.0, "licences": 2.0}
SHARED = {"licences"}


def needing(task_id: str, **resources: float):
    return build_task(task_id=task_id, task_type="t", requirements={"resources": resources})


def spec(agent_id: str, capacity: int = 10, **budget: float) -> AgentSpec:
    return AgentSpec.build(agent_id, task_types=["t"], capacity=capacity, resources=budget or None)


def engine(*agents: tuple[AgentSpec, OffHost | None]) -> EngineState:
    state = EngineState("me")
    state.handle(LeasesLoaded(POOL, (), 0.0))
    for agent_spec, off_host in agents:
        state.handle(AgentAdded(agent_spec, 0.0, off_host=off_host))
    return state


def on_ray(agent_spec: AgentSpec) -> tuple[AgentSpec, OffHost]:
    return agent_spec, OffHost(agent_spec.resources, SHARED)


def started(actions) -> list[tuple[str, str]]:
    return [(a.task_id, a.agent_id) for a in actions if isinstance(a, Start)]


def test_off_host_splits_a_budget_into_what_ray_places_and_the_shared_pools_pepper_grants():
    off_host = OffHost({"cpu": 4, "gpu": 1, "licences": 2}, SHARED)
    assert off_host.placed == Resources({"cpu": 4, "gpu": 1}) and off_host.pooled == Resources({"licences": 2})
    assert off_host.split(Resources({"cpu": 1, "licences": 1})) == (Resources({"licences": 1}), Resources({"cpu": 1}))


def test_the_view_checks_a_ray_agents_machine_needs_within_its_declared_budget_and_leases_only_shared_pools():
    view = ResourceView("me")
    view.load(POOL, [], now=0.0)
    view.set_off_host("r", OffHost({"cpu": 8}, SHARED))
    assert view.shortfall(Resources({"cpu": 6}), "r") == {}  # beyond the pool (2), within the budget (8)
    assert view.shortfall(Resources({"cpu": 9}), "r") == {"cpu": 1.0}
    assert view.shortfall(Resources({"gpu": 1}), "r") == {"gpu": 1.0}  # it declared none
    assert view.take("big", 1, "r", Resources({"cpu": 6}), 0.0) is None  # nothing taken from the pool
    assert view.shortfall(Resources({"cpu": 2}), "local") == {}  # the pool is whole
    assert view.shortfall(Resources({"cpu": 3}), "r") == {"cpu": 1.0}  # 8 - 6 left of its budget
    lease = view.take("licensed", 1, "r", Resources({"cpu": 1, "licences": 1}), 0.0)
    assert lease is not None and lease.kind is LeaseKind.TASK and lease.resources == Resources({"licences": 1})
    assert view.shortfall(Resources({"licences": 2}), "local") == {"licences": 1.0}
    assert view.give_back("licensed") == (lease, True)
    assert view.give_back("big") == (None, False)
    assert view.shortfall(Resources({"cpu": 8}), "r") == {}
    assert view.most_given() == {**POOL, "cpu": 8.0}  # what a new task is checked against


def test_a_ray_agent_runs_tasks_within_its_declared_budget_without_pool_leases():
    state = engine(on_ray(spec("r", cpu=2)))
    actions = state.handle(TasksAdded(tuple(needing(f"t{i}", cpu=1) for i in range(3)), 1.0))
    assert started(actions) == [("t0", "r"), ("t1", "r")] and not any(isinstance(a, TakeLease) for a in actions)
    (reason,) = [r for r in explain(wait_facts(state, "t2", 1.0)) if r.kind == "resources"]
    assert "cpu short by 1 core in the budget agent 'r' declares to Ray" in reason.message
    assert started(state.handle(AttemptEnded("t0", 1, 2.0, True))) == [("t2", "r")]


def test_a_task_needing_more_than_a_ray_agents_budget_is_never_given_to_it():
    state = engine(on_ray(spec("r", cpu=2)))
    assert started(state.handle(TasksAdded((needing("big", cpu=3),), 1.0))) == []
    (reason,) = [r for r in explain(wait_facts(state, "big", 1.0)) if r.kind == "resources"]
    assert "cpu short by 1 core in the budget agent 'r' declares to Ray" in reason.message
    # an agent run here with room in the pool takes it
    state.handle(LeasesLoaded({**POOL, "cpu": 4.0}, (), 1.5))
    assert started(state.handle(AgentAdded(spec("local"), 2.0))) == [("big", "local")]


def test_a_ray_agent_with_no_budget_takes_no_task_with_machine_needs_but_takes_shared_ones_from_the_pool():
    state = engine(on_ray(spec("r")))
    actions = state.handle(TasksAdded((needing("licensed", licences=1),), 1.0))
    assert started(actions) == [("licensed", "r")]
    (lease,) = [a.lease for a in actions if isinstance(a, TakeLease)]
    assert lease.resources == Resources({"licences": 1})
    assert started(state.handle(TasksAdded((needing("cpu", cpu=1),), 1.0))) == []
    (reason,) = [r for r in explain(wait_facts(state, "cpu", 1.0)) if r.kind == "resources"]
    assert reason.message.endswith("cpu short by 1 core in the budget agent 'r' declares to Ray")
    state.handle(
        TasksAdded((needing("licensed-too", licences=2),), 1.0)
    )  # queued behind it, and short itself: 1 licence is left
    (reason,) = [r for r in explain(wait_facts(state, "licensed-too", 1.0)) if r.kind == "resources"]
    assert reason.message.endswith("licences short by 1 in the pool")


# -- plans -----------------------------------------------------------------------------------------


def plan_agent(agent_id: str, off_host: bool = False, **budget: float) -> PlanAgent:
    agent_spec = spec(agent_id, capacity=2, **budget)
    return PlanAgent(agent_spec, 1.0, OffHost(agent_spec.resources, SHARED) if off_host else None)


def task(task_id: str, duration: float = 1.0, **resources: float) -> PlanTask:
    return PlanTask(task_id, "t", duration, resources=Resources(resources))


def test_planning_checks_a_ray_agents_machine_needs_within_its_budget_and_not_the_pool():
    ray, local = plan_agent("r", off_host=True, cpu=8), plan_agent("l")
    limits = {"cpu": 2.0, "licences": 1.0}
    assert can_run(ray, task("big", cpu=6)) and not can_run(ray, task("huge", cpu=9))
    assert not can_run(plan_agent("bare", off_host=True), task("needs-cpu", cpu=1))
    assert can_run(plan_agent("bare", off_host=True), task("needs-licence", licences=1))
    assert budget_problem([ray], limits) is None  # its cpu is Ray's, not the pool's
    assert budget_problem([plan_agent("l8", cpu=8)], limits) is not None
    tasks = [task("big", cpu=6), task("huge", cpu=9), task("small", cpu=1)]
    assert never_runnable(tasks, [ray, local], limits) == {"huge"}  # big runs on Ray, beyond the pool
    assert never_runnable(tasks, [local], limits) == {"big", "huge"}
    # only what must come from the pool bounds the plan: small may run on Ray too
    assert resource_bound(tasks[:1] + tasks[2:], {"big": 1.0, "small": 1.0}, limits, [ray, local]) == 0.0
    assert resource_bound(tasks[2:], {"small": 4.0}, limits, [local]) == 2.0


def test_a_schedule_of_a_ray_agent_is_checked_against_its_budget_not_the_pool():
    ray = plan_agent("r", off_host=True, cpu=4)
    tasks = [task("a", cpu=3), task("b", cpu=3), task("c", cpu=1)]
    fine = [Slot("a", "r", 0.0, 1.0), Slot("c", "r", 0.0, 1.0), Slot("b", "r", 1.0, 2.0)]
    assert check_schedule(fine, tasks, [ray], pool={"cpu": 1.0}) == []
    over = [Slot("a", "r", 0.0, 1.0), Slot("b", "r", 0.0, 1.0), Slot("c", "r", 1.0, 2.0)]
    assert any("more than its budget" in problem for problem in check_schedule(over, tasks, [ray]))


@pytest.fixture
def runtime():
    rt = pepper.Runtime(db=":memory:", resources={"cpu": 2})
    yield rt
    rt.close()


def test_pepper_plan_puts_a_task_beyond_the_pool_on_a_ray_agent_whose_budget_holds_it(runtime):
    tasks = [{"id": "big", "type": "t", "resources": {"cpu": 6}, "duration": 1},
             {"id": "huge", "type": "t", "resources": {"cpu": 16}, "duration": 1},
             {"id": "small", "type": "t", "resources": {"cpu": 1}, "duration": 1}]  # fmt: skip
    agents = [{"agent_id": "r", "task_types": ["t"], "executor": "ray", "resources": {"cpu": 8}},
              {"agent_id": "l", "task_types": ["t"]}]  # fmt: skip
    plan = pepper.plan(tasks, agents, pool={"cpu": 2}, runtime=runtime)
    assert plan.unplaced == ("huge",)
    assert {s.task_id: s.agent_id for s in plan.schedule}["big"] == "r"
    # without Ray, the same budget is the pool's, which cannot give it
    local = [{**agents[0], "executor": "local"}, agents[1]]
    with pytest.raises(pepper.errors.ValidationError, match="the whole pool cannot give"):
        pepper.plan(tasks, local, pool={"cpu": 2}, runtime=runtime)
