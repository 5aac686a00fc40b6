"""Resource bookkeeping and resource-aware scheduling, in virtual time (no clock, no store)."""

from __future__ import annotations

from pepper.engine.inspection import wait_facts
from pepper.engine.state import POOL_EXPIRY, EngineState
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    AgentAdded,
    AttemptEnded,
    CancelRequested,
    ClaimRefused,
    DropLease,
    LeasesLoaded,
    Start,
    TakeLease,
    TasksAdded,
    TimerFired,
    WakeAt,
)
from pepper.model.lease import Lease, LeaseKind
from pepper.model.resources import Resources
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.resources.view import ResourceView
from pepper.scheduling.explain import explain

POOL = {"cpu": 2.0, "memory": 1024.0}


def needing(task_id, cpu=1.0, **more):
    return build_task(task_id=task_id, task_type="t", requirements={"resources": {"cpu": cpu}}, **more)


def budget_lease(agent_id, cpu, expires_at=None, lease_id=None):
    return Lease(lease_id or f"b-{agent_id}", agent_id, LeaseKind.BUDGET, Resources({"cpu": cpu}), 0.0, expires_at)


def engine(*agents, leases=()):
    state = EngineState("me")
    state.handle(LeasesLoaded(POOL, tuple(leases), 0.0))
    for spec in agents:
        state.handle(AgentAdded(spec, 0.0))
    return state


def agent(agent_id="a", capacity=10):
    return AgentSpec.build(agent_id, task_types=["t"], capacity=capacity)


def started(actions):
    return [a.task_id for a in actions if isinstance(a, Start)]


def end(state, task_id, at):
    return state.handle(AttemptEnded(task_id, state.tasks[task_id].attempts, at, True))


def test_the_view_counts_budgets_and_pool_leases_separately():
    view = ResourceView("me")
    view.load(POOL, [budget_lease("budgeted", 1.0)], now=0.0)
    assert view.shortfall(Resources({"cpu": 1}), "budgeted") == {}
    assert view.shortfall(Resources({"cpu": 2}), "budgeted") == {"cpu": 1.0}  # the budget, not the pool, bounds it
    inside = view.take("x", 1, "budgeted", Resources({"cpu": 1}), 0.0)
    assert inside.lease_id == "task:x:1@me" and inside.in_budget  # held inside the budget, for other processes
    assert view.shortfall(Resources({"cpu": 0.5}), "budgeted") == {"cpu": 0.5}
    lease = view.take("y", 1, "free-agent", Resources({"cpu": 1}), 0.0)
    assert lease.lease_id == "task:y:1@me" and lease.kind is LeaseKind.TASK and not lease.in_budget
    assert view.shortfall(Resources({"cpu": 0.5}), "free-agent") == {"cpu": 0.5}  # 2 - 1 budget - 1 task
    assert view.give_back("y") == (lease, True)
    assert view.give_back("x") == (inside, False)  # the budget is still held: the pool gained nothing
    assert view.shortfall(Resources({"cpu": 2}), "budgeted") == {"cpu": 1.0}


def test_tasks_inside_a_budget_that_ended_count_against_the_pool_until_they_end():
    view = ResourceView("me")
    assert view.load(POOL, [budget_lease("budgeted", 1.0, expires_at=5.0)], now=0.0) == 5.0
    inside = view.take("x", 1, "budgeted", Resources({"cpu": 1}), 0.0)
    assert view.shortfall(Resources({"cpu": 1}), "free-agent") == {}  # 2 - 1 budget
    view.refresh(5.0)  # the budget expired while x runs
    assert not view.has_budget("budgeted")
    assert view.shortfall(Resources({"cpu": 2}), "free-agent") == {"cpu": 1.0}  # x still holds 1 of the pool
    assert view.give_back("x") == (inside, True)  # now the pool gains it
    assert view.shortfall(Resources({"cpu": 2}), "free-agent") == {}


def test_a_budget_shrinking_under_its_tasks_counts_what_they_hold_beyond_it():
    view = ResourceView("me")
    two = [budget_lease("budgeted", 1.0, lease_id="b1"), budget_lease("budgeted", 1.0, lease_id="b2")]
    view.load({"cpu": 3.0}, two, now=0.0)
    view.take("x", 1, "budgeted", Resources({"cpu": 2}), 0.0)  # needs both budget leases
    assert view.shortfall(Resources({"cpu": 1}), "free-agent") == {}
    view.load({"cpu": 3.0}, two[:1], now=1.0)  # b2 was released by hand
    assert view.shortfall(Resources({"cpu": 1}), "free-agent") == {}  # 3 - 2 held by x
    assert view.shortfall(Resources({"cpu": 1.5}), "free-agent") == {"cpu": 0.5}
    assert view.shortfall(Resources({"cpu": 0.5}), "budgeted") == {"cpu": 0.5}  # its budget has no room left


def test_tasks_never_overcommit_the_pool_and_queued_ones_start_as_room_frees():
    state = engine(agent())
    actions = state.handle(TasksAdded(tuple(needing(f"t{i}") for i in range(5)), 1.0))
    assert started(actions) == ["t0", "t1"]
    assert [a.lease.lease_id for a in actions if isinstance(a, TakeLease)] == ["task:t0:1@me", "task:t1:1@me"]
    reasons = explain(wait_facts(state, "t2", 1.0))
    assert reasons[0].kind == "resources" and "cpu short by 1 core in the pool" in reasons[0].message
    actions = end(state, "t0", 2.0)
    assert DropLease("task:t0:1@me") in actions and started(actions) == ["t2"]


def test_fractional_cpu():
    state = engine(agent())
    actions = state.handle(TasksAdded(tuple(needing(f"t{i}", cpu=0.5) for i in range(5)), 1.0))
    assert started(actions) == ["t0", "t1", "t2", "t3"]


def test_tasks_without_resources_are_not_held_back_by_a_full_pool():
    state = engine(agent())
    state.handle(TasksAdded((needing("big", cpu=2),), 1.0))
    assert started(state.handle(TasksAdded((build_task(task_id="plain", task_type="t"),), 1.0))) == ["plain"]


def test_an_agent_with_a_budget_runs_tasks_within_it_holding_leases_of_it():
    state = engine(agent("budgeted"), leases=[budget_lease("budgeted", 1.5)])
    actions = state.handle(TasksAdded((needing("a", cpu=1), needing("b", cpu=1)), 1.0))
    assert started(actions) == ["a"]
    (take,) = [a for a in actions if isinstance(a, TakeLease)]
    assert take.lease.lease_id == "task:a:1@me" and take.lease.in_budget  # stored with the claim, checked there
    (reason,) = [r for r in explain(wait_facts(state, "b", 1.0)) if r.kind == "resources"]
    assert "in the budget of agent 'budgeted'" in reason.message
    actions = end(state, "a", 2.0)
    assert DropLease("task:a:1@me") in actions and started(actions) == ["b"]


def test_another_agent_waits_while_a_task_runs_in_a_budget_that_expired():
    state = engine(agent("budgeted"), agent("other"), leases=[budget_lease("budgeted", 2.0, expires_at=3.0)])
    state.handle(TasksAdded((build_task(task_id="a", task_type="t", agent="budgeted",
                                        requirements={"resources": {"cpu": 2}}),), 1.0))  # fmt: skip
    assert state.tasks["a"].state is TaskState.IN_PROGRESS
    assert started(state.handle(TimerFired(POOL_EXPIRY, 3.0))) == []  # the budget ended; a still holds cpu 2
    actions = state.handle(TasksAdded((build_task(task_id="b", task_type="t", agent="other",
                                                  requirements={"resources": {"cpu": 1}}),), 4.0))  # fmt: skip
    assert started(actions) == []
    (reason,) = [r for r in explain(wait_facts(state, "b", 4.0)) if r.kind == "resources"]
    assert "cpu short by 1 core in the pool" in reason.message
    actions = end(state, "a", 5.0)
    assert DropLease("task:a:1@me") in actions and started(actions) == ["b"]


def test_a_refused_claim_goes_back_to_the_queue_and_runs_when_leases_allow():
    state = engine(agent())
    state.handle(TasksAdded((needing("t", cpu=2),), 1.0))
    assert state.tasks["t"].state is TaskState.IN_PROGRESS
    state.handle(ClaimRefused("t", 1, 1.1))  # another process took the pool meanwhile
    t = state.tasks["t"]
    assert (t.state, t.attempts, t.owner) == (TaskState.PENDING, 0, None)
    other = Lease("x", "elsewhere", LeaseKind.BUDGET, Resources({"cpu": 2}), 1.0, expires_at=5.0)
    actions = state.handle(LeasesLoaded(POOL, (other,), 1.2))
    assert started(actions) == [] and WakeAt(POOL_EXPIRY, 5.0) in actions
    assert started(state.handle(TimerFired(POOL_EXPIRY, 5.0))) == ["t"]  # the lease expired by itself


def test_cancelling_a_running_task_gives_its_lease_back():
    state = engine(agent())
    state.handle(TasksAdded((needing("a", cpu=2), needing("b", cpu=2)), 1.0))
    actions = state.handle(CancelRequested("a", 2.0, "stop"))
    assert DropLease("task:a:1@me") in actions and started(actions) == ["b"]


def test_an_agent_waiting_for_its_budget_takes_no_tasks_and_says_why():
    state = EngineState("me")
    state.handle(LeasesLoaded(POOL, (), 0.0))
    state.handle(AgentAdded(agent("late"), 0.0, "is waiting for its budget: cpu short by 1 core in the pool"))
    state.handle(TasksAdded((build_task(task_id="t", task_type="t"),), 1.0))
    (reason,) = explain(wait_facts(state, "t", 1.0))
    assert reason.kind == "agent_waiting" and "waiting for its budget" in reason.message
