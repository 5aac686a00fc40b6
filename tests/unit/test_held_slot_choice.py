"""An agent whose slots are all held by calls that outlived their attempt frees one at no known time: the
live scheduler does not keep a task back for it, the selector does not rank it as free, a plan leaves it
out, and an agent unregistered and registered again while such a call runs keeps its slot taken. Events in,
actions out; time is passed in."""

from __future__ import annotations

import json

import pytest

from pepper.core.agents_view import AgentProfile
from pepper.engine.inspection import directory, live_agents
from pepper.engine.state import EngineState
from pepper.model.events import (
    AgentAdded,
    AgentRemoved,
    AttemptEnded,
    CallHeld,
    CallReturned,
    HistoryLoaded,
    TasksAdded,
    TimerFired,
    WakeAt,
)
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from pepper.scheduling.balance import PlanTask, distribute
from tests.unit.test_state_machine import agent, ok, starts, task

TIMEOUT = TaskError("TimeoutError", "too long", kind="timeout")
INF = float("inf")


@pytest.fixture
def state() -> EngineState:
    return EngineState("worker-a", backoff=Backoff(delay=1.0, multiplier=2.0, max_delay=60.0, jitter=0.0))


def hold(state: EngineState, agent_id: str, task_id: str, at: float) -> None:
    """``task_id``'s call outlives its attempt on ``agent_id``, whose slot stays taken."""
    attempt = state.tasks[task_id].attempts
    assert state.handle(CallHeld(agent_id, task_id, attempt, at)) == []
    state.handle(AttemptEnded(task_id, attempt, at, False, error=TIMEOUT))


def fast_and_slow(state: EngineState) -> None:
    """'fast' takes 1 s a task, 'slow' 10 s; the stuck call of a task holds fast's only slot."""
    state.handle(AgentAdded(agent("fast"), 0.0))
    state.handle(AgentAdded(agent("slow"), 0.0))
    history = tuple(("fast", "t", True, 1.0, 1.0 + i) for i in range(20))
    state.handle(HistoryLoaded(history + tuple(("slow", "t", True, 10.0, 1.0 + i) for i in range(20)), (), 30.0))
    assert starts(state.handle(TasksAdded((task("stuck", max_retries=0),), 100.0))) == ["stuck"]
    assert state.tasks["stuck"].agent_id == "fast"
    hold(state, "fast", "stuck", 105.0)


def test_a_free_slower_agent_takes_the_task_while_the_faster_ones_slots_are_all_held(state):
    fast_and_slow(state)
    assert state.chooser.available_in(state.agents["fast"], 106.0) == INF
    actions = state.handle(TasksAdded((task("next"),), 106.0))
    assert starts(actions) == ["next"] and state.tasks["next"].agent_id == "slow"
    assert not [a for a in actions if isinstance(a, WakeAt)]  # not kept back for fast


def test_a_task_kept_back_for_a_busy_agent_starts_on_the_free_one_once_the_busy_ones_call_is_held(state):
    state.handle(AgentAdded(agent("fast"), 0.0))
    state.handle(AgentAdded(agent("slow"), 0.0))
    history = tuple(("fast", "t", True, 1.0, 1.0 + i) for i in range(20))
    state.handle(HistoryLoaded(history + tuple(("slow", "t", True, 10.0, 1.0 + i) for i in range(20)), (), 30.0))
    state.handle(TasksAdded((task("first", max_retries=0),), 100.0))
    deferred = state.handle(TasksAdded((task("next"),), 100.5))
    assert starts(deferred) == []  # fast is projected to get it done sooner: slow looks again later
    (wake,) = [a for a in deferred if isinstance(a, WakeAt)]
    hold(state, "fast", "first", 101.0)
    assert starts(state.handle(TimerFired(wake.key, wake.at))) == ["next"]
    assert state.tasks["next"].agent_id == "slow"


def test_the_selector_ranks_an_agent_whose_slots_are_all_held_last_and_says_why(state):
    fast_and_slow(state)
    view = live_agents(state, 106.0)
    pool = directory(state).pool("t", frozenset())
    fast = view.candidate(state.agents["fast"], "t")
    assert fast.available_in == INF and fast.projected_finish == INF and fast.running == 1
    best = view.best_in(pool, "t")
    assert best is not None and best.agent_id == "slow"
    found = view.best_agent_in(pool, "t")
    assert found is not None and found[0].spec.agent_id == "slow" and found[1] == view.expected("slow", "t")
    # Once slow runs a task too, fast is still the one free at no known time.
    assert starts(state.handle(TasksAdded((task("next"),), 106.0))) == ["next"]
    best = live_agents(state, 107.0).best_in(pool, "t")
    assert best is not None and best.agent_id == "slow"


def test_among_agents_with_no_record_the_one_with_a_held_slot_is_not_the_idle_one(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(AgentAdded(agent("b"), 0.0))
    state.handle(TasksAdded((task("stuck", max_retries=0),), 1.0))
    assert state.tasks["stuck"].agent_id == "a"
    hold(state, "a", "stuck", 2.0)
    pool = directory(state).pool("t", frozenset())
    view = live_agents(state, 3.0)
    for best in (view.best_in(pool, "t"), view.best_matching(pool.agents, "t")):
        assert best is not None and best.agent_id == "b"
    state.handle(AgentRemoved("b", 4.0))  # a is the only one left: it is named, free at no known time
    pool = directory(state).pool("t", frozenset())
    view = live_agents(state, 5.0)
    found = view.best_agent_in(pool, "t")
    assert found is not None and found[0].spec.agent_id == "a" and found[1] == INF


def test_a_profile_of_an_agent_free_at_no_known_time_leaves_its_projected_finish_out(state):
    fast_and_slow(state)
    view = live_agents(state, 106.0)
    fast = view.candidate(state.agents["fast"], "t")
    profile = AgentProfile.of(fast.spec, fast.running, view.parts("fast"), fast.projected_finish)
    assert profile.projected_finish is None and profile.running == 1 and profile.utilisation == 1.0
    json.dumps(profile.to_dict(), allow_nan=False)  # what the HTTP service sends


def test_a_plan_leaves_out_an_agent_whose_slots_are_all_held(state):
    fast_and_slow(state)
    view = live_agents(state, 106.0)
    candidates = [view.candidate(a, "t") for a in state.agents.values()]
    plan = distribute([PlanTask("p1", "t"), PlanTask("p2", "t")], candidates, view.expected)
    assert plan.assignments == {"p1": "slow", "p2": "slow"} and plan.makespan != INF
    only_fast = distribute([PlanTask("p1", "t")], [c for c in candidates if c.agent_id == "fast"], view.expected)
    assert only_fast.placements == ()
    (why,) = only_fast.unassigned["p1"]["fast"]
    assert "1 of its 1 slot(s) held by calls that outlived their attempt" in why


def test_a_held_slot_beside_a_running_task_frees_when_the_task_is_projected_to_end(state):
    state.handle(AgentAdded(agent("a", capacity=2), 0.0))
    state.handle(HistoryLoaded(tuple(("a", "t", True, 4.0, 1.0 + i) for i in range(20)), (), 30.0))
    assert starts(state.handle(TasksAdded((task("stuck", max_retries=0), task("run")), 100.0))) == ["stuck", "run"]
    hold(state, "a", "stuck", 101.0)
    a = state.agents["a"]
    assert a.free == 0 and a.busy == 2
    # The running task started at 100 and takes about 4 s: a slot frees then, whatever the held call does.
    assert state.chooser.available_in(a, 101.0) == pytest.approx(state.performance.estimate("a", "t", 101.0) - 1.0)


def test_an_agent_registered_again_while_its_call_is_held_keeps_that_slot_taken(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("stuck", max_retries=0),), 1.0))
    hold(state, "a", "stuck", 2.0)
    state.handle(AgentRemoved("a", 3.0))
    assert starts(state.handle(AgentAdded(agent("a"), 4.0))) == []
    assert starts(state.handle(TasksAdded((task("next"),), 5.0))) == []  # the call still runs
    assert state.agents["a"].held == {("stuck", 1)} and state.agents["a"].free == 0
    assert starts(state.handle(CallReturned("a", "stuck", 1, 6.0))) == ["next"]
    ok(state, "next", 7.0)
    assert state.tasks["next"].state is TaskState.COMPLETED and not state.held_away


def test_a_call_that_returns_while_its_agent_is_away_leaves_nothing_held(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("stuck", max_retries=0), task("next")), 1.0))
    hold(state, "a", "stuck", 2.0)
    state.handle(AgentRemoved("a", 3.0))
    assert state.handle(CallReturned("a", "other", 1, 3.5)) == [] and state.held_away == {"a": {("stuck", 1)}}
    assert state.handle(CallReturned("a", "stuck", 1, 4.0)) == [] and not state.held_away
    assert starts(state.handle(AgentAdded(agent("a"), 5.0))) == ["next"]


def test_a_call_held_after_its_agent_left_is_held_when_the_agent_comes_back(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("stuck", max_retries=0), task("next")), 1.0))
    state.handle(AgentRemoved("a", 2.0))  # it leaves while its task runs; then the attempt times out
    hold(state, "a", "stuck", 3.0)
    assert starts(state.handle(AgentAdded(agent("a"), 4.0))) == []
    assert starts(state.handle(CallReturned("a", "stuck", 1, 5.0))) == ["next"]
