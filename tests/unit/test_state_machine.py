"""EngineState: events in, actions out. No threads, no files, no clock: time is passed in."""

from __future__ import annotations

import pytest

from pepper.engine.inspection import wait_facts
from pepper.engine.state import EngineState
from pepper.errors import InvalidTransitionError
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    Abort,
    AgentAdded,
    AttemptEnded,
    CallReturned,
    CancelRequested,
    Draining,
    EndsStored,
    Forget,
    PeersChanged,
    RecordAttempt,
    Save,
    Settled,
    Start,
    TasksAdded,
    TasksLoaded,
    TimerFired,
    Trim,
    WakeAt,
    WorkersLost,
)
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.submission import build_task
from pepper.model.task import TaskState, check_transition
from pepper.scheduling.explain import explain

ME = "worker-a"


def agent(agent_id: str = "a", types=("t",), capacity: int = 1, skills=()) -> AgentSpec:
    return AgentSpec.build(agent_id, task_types=list(types), capacity=capacity, skills=list(skills))


def task(task_id: str, deps=(), priority="normal", **more):
    return build_task(
        task_id=task_id, task_type=more.pop("task_type", "t"), dependencies=list(deps), priority=priority, **more
    )


def starts(actions) -> list[str]:
    return [a.task_id for a in actions if isinstance(a, Start)]


def ok(state: EngineState, task_id: str, at: float, result=None):
    attempt = state.tasks[task_id].attempts
    return state.handle(AttemptEnded(task_id, attempt, at, True, result, None))


def fail(state: EngineState, task_id: str, at: float, message: str = "boom"):
    """The running attempt of ``task_id`` fails, and whatever that decided is stored (a failure's dependents are
    cancelled once it is)."""
    attempt = state.tasks[task_id].attempts
    return ends_stored(
        state, at, state.handle(AttemptEnded(task_id, attempt, at, False, error=TaskError("ValueError", message)))
    )


def ends_stored(state: EngineState, at: float, actions: list):
    """``actions``, and what follows once the cancels and failures they hold are stored."""
    stored = tuple(state.cascades_unstored)
    return actions + (state.handle(EndsStored(stored, at)) if stored else [])


def cancel(state: EngineState, task_id: str, at: float, reason: str):
    """Cancel ``task_id`` on request, and store that cancel: its dependents are cancelled too."""
    return ends_stored(state, at, state.handle(CancelRequested(task_id, at, reason)))


@pytest.fixture
def state() -> EngineState:
    return EngineState(ME, ageing=10.0, backoff=Backoff(delay=1.0, multiplier=2.0, max_delay=60.0, jitter=0.0))


def test_a_ready_task_is_claimed_and_started_on_a_free_agent(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    actions = state.handle(TasksAdded((task("t1"),), 1.0))
    assert actions == [Save("t1"), Start("t1", 1, "a")]
    t = state.tasks["t1"]
    assert (t.state, t.owner, t.agent_id, t.attempts, t.started_at) == (TaskState.IN_PROGRESS, ME, "a", 1, 1.0)


def test_an_agent_never_runs_more_than_its_capacity(state):
    state.handle(AgentAdded(agent("a", capacity=2), 0.0))
    actions = state.handle(TasksAdded(tuple(task(f"t{i}") for i in range(5)), 1.0))
    assert starts(actions) == ["t0", "t1"]
    assert len(state.agents["a"].running) == 2
    actions = ok(state, "t0", 2.0)
    assert starts(actions) == ["t2"]
    assert len(state.agents["a"].running) == 2


def test_higher_priority_is_served_first_then_submission_order(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("busy"),), 0.0))
    state.handle(TasksAdded((task("low", priority="low"), task("n1"), task("high", priority="high"), task("n2")), 1.0))
    order = []
    current = "busy"
    for step in range(4):
        actions = ok(state, current, 2.0 + step)
        (current,) = starts(actions)
        order.append(current)
    assert order == ["high", "n1", "n2", "low"]


def test_ageing_lets_a_long_waiting_low_priority_task_overtake_a_fresh_high_one(state):
    # Given a low priority task that has waited 3 minutes (10 points/minute = 30 points)
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("busy"),), 0.0))
    state.handle(TasksAdded((task("old-low", priority="low"),), 0.0))
    # When a high priority task (20 points more) arrives at t=180s
    state.handle(TasksAdded((task("new-high", priority="high", now=180.0),), 180.0))
    # Then the old low one still goes first
    assert starts(ok(state, "busy", 181.0)) == ["old-low"]


def test_a_dependent_waits_blocked_until_its_dependency_completes_and_gets_pending_then_runs(state):
    state.handle(AgentAdded(agent("a", capacity=2), 0.0))
    actions = state.handle(TasksAdded((task("parent"), task("child", deps=["parent"])), 1.0))
    assert starts(actions) == ["parent"]
    assert state.tasks["child"].state is TaskState.BLOCKED
    actions = ok(state, "parent", 2.0, result={"x": 1})
    assert Save("child") in actions and starts(actions) == ["child"]


def test_a_dependency_submitted_later_unblocks_its_dependents(state):
    state.handle(AgentAdded(agent("a", capacity=2), 0.0))
    state.handle(TasksAdded((task("child", deps=["late"]),), 1.0))
    assert state.awaiting == {"late": ["child"]}
    facts = wait_facts(state, "child", 1.0)
    assert [r.kind for r in explain(facts)] == ["dependency_missing"]
    state.handle(TasksAdded((task("late"),), 2.0))
    assert starts(ok(state, "late", 3.0)) == ["child"]


def test_a_failed_dependency_cancels_all_its_dependents_transitively_with_the_reason(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("root"), task("mid", deps=["root"]), task("leaf", deps=["mid"])), 1.0))
    actions = fail(state, "root", 2.0)
    assert state.tasks["root"].state is TaskState.FAILED
    assert state.tasks["mid"].state is TaskState.CANCELLED
    assert state.tasks["leaf"].state is TaskState.CANCELLED
    assert state.tasks["mid"].reason == "dependency 'root' failed"
    assert state.tasks["leaf"].reason == "dependency 'mid' cancelled"
    assert {a.task_id for a in actions if isinstance(a, Settled)} == {"root", "mid", "leaf"}


def test_a_task_depending_on_an_already_failed_task_is_cancelled_at_once(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("root"),), 1.0))
    fail(state, "root", 2.0)
    actions = state.handle(TasksAdded((task("late-child", deps=["root"]),), 3.0))
    assert state.tasks["late-child"].state is TaskState.CANCELLED
    assert Settled("late-child") in actions


def test_a_failure_with_retries_left_waits_its_backoff_then_runs_again(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("t", max_retries=2),), 0.0))
    actions = fail(state, "t", 10.0)
    t = state.tasks["t"]
    assert t.state is TaskState.PENDING and t.failures == 1 and t.next_attempt_at == 11.0
    assert WakeAt(("retry", "t"), 11.0) in actions
    assert [a.outcome for a in actions if isinstance(a, RecordAttempt)] == ["retry"]
    assert starts(state.handle(TimerFired(("retry", "t"), 11.0))) == ["t"]
    fail(state, "t", 12.0)
    assert state.tasks["t"].next_attempt_at == 14.0  # doubled
    state.handle(TimerFired(("retry", "t"), 14.0))
    actions = fail(state, "t", 15.0)
    assert state.tasks["t"].state is TaskState.FAILED and state.tasks["t"].attempts == 3
    assert Settled("t") in actions


def test_an_early_timer_is_re_armed_for_the_real_time(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("t", max_retries=1),), 0.0))
    fail(state, "t", 10.0)
    assert state.handle(TimerFired(("retry", "t"), 10.5)) == [WakeAt(("retry", "t"), 11.0)]


def test_a_late_report_of_an_old_attempt_is_ignored(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("t"),), 0.0))
    assert state.handle(AttemptEnded("t", 7, 1.0, True)) == []
    assert state.tasks["t"].state is TaskState.IN_PROGRESS


def test_cancelling_a_queued_task_cancels_it_and_once_that_is_stored_its_dependents(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("busy"), task("queued"), task("after", deps=["queued"])), 0.0))
    actions = state.handle(CancelRequested("queued", 1.0, "not needed"))
    assert state.tasks["queued"].state is TaskState.CANCELLED
    assert state.tasks["queued"].reason == "not needed"
    assert Settled("queued") in actions and state.tasks["after"].state is TaskState.BLOCKED
    actions = state.handle(EndsStored(("queued",), 1.5))
    assert state.tasks["after"].state is TaskState.CANCELLED
    assert actions == [Save("after"), Settled("after")]
    assert starts(ok(state, "busy", 2.0)) == []  # the cancelled one left the queue


def test_cancelling_a_running_task_aborts_it_and_frees_the_agent_once_its_call_stopped(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("running"), task("next")), 0.0))
    actions = state.handle(CancelRequested("running", 1.0, "stop"))
    assert Abort("running", 1, "stop") in actions
    assert starts(actions) == []  # its call may run on: the slot is held until the shell says it stopped
    assert state.handle(AttemptEnded("running", 1, 2.0, True)) == []  # its late end changes nothing
    assert starts(state.handle(CallReturned("a", "running", 1, 2.5))) == ["next"]


def test_cancelling_a_task_another_worker_runs_asks_that_worker_to_stop(state):
    record = _record(task("t"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1)
    state.handle(TasksLoaded((record,), 0.0))
    actions = state.handle(CancelRequested("t", 1.0, "please stop"))
    t = state.tasks["t"]
    assert t.state is TaskState.IN_PROGRESS and t.cancel_requested and actions == [Save("t")]


def test_running_tasks_of_a_lost_worker_run_again_here(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    record = _record(task("t"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1, agent_id="a")
    state.handle(TasksLoaded((record,), 0.0))
    actions = state.handle(WorkersLost(frozenset({"worker-b"}), 5.0))
    assert [a.outcome for a in actions if isinstance(a, RecordAttempt)] == ["interrupted"]
    assert starts(actions) == ["t"]
    assert state.tasks["t"].attempts == 2 and state.tasks["t"].owner == ME


def test_a_running_task_taken_over_elsewhere_is_aborted_here(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("t"),), 0.0))
    theirs = _record(task("t"), TaskState.IN_PROGRESS, owner="worker-b", attempts=2)
    actions = state.handle(TasksLoaded((theirs,), 1.0, "conflict"))
    assert Abort("t", 1, "the task was changed by another process") in actions
    assert not state.agents["a"].running


def test_a_task_completed_elsewhere_releases_its_dependents_here(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksLoaded((_record(task("p"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1),), 0.0))
    state.handle(TasksAdded((task("c", deps=["p"]),), 0.0))
    done = _record(task("p"), TaskState.COMPLETED, attempts=1, result=7)
    actions = state.handle(TasksLoaded((done,), 1.0))
    assert Settled("p") in actions and starts(actions) == ["c"]


def test_a_record_taken_in_the_same_batch_is_never_saved_back_under_our_name(state):
    # Another worker completed p and claimed c, which depended on it; both rows arrive together. Releasing c
    # (p's record comes first) must not leave a save of c behind: it would write their claim under our name.
    state.handle(TasksLoaded((_record(task("p"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1),), 0.0))
    state.handle(TasksAdded((task("c", deps=["p"]),), 0.0))
    done = _record(task("p"), TaskState.COMPLETED, attempts=1, result=7)
    claimed = _record(task("c", deps=["p"]), TaskState.IN_PROGRESS, owner="worker-b", attempts=1)
    actions = state.handle(TasksLoaded((done, claimed), 1.0))
    assert Save("c") not in actions and state.tasks["c"].owner == "worker-b"


def test_an_outcome_decided_here_survives_a_write_that_reached_the_row_first(state):
    # We completed t, but another process wrote the row (still showing our claim) before our save landed:
    # reloading it must keep our outcome and write it again, not bring the finished attempt back to life.
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("t"),), 0.0))
    ok(state, "t", 1.0, result="done")
    ours_in_their_row = _record(task("t"), TaskState.IN_PROGRESS, owner=ME, attempts=1, agent_id="a")
    actions = state.handle(TasksLoaded((ours_in_their_row,), 2.0, "conflict"))
    t = state.tasks["t"]
    assert (t.state, t.result) == (TaskState.COMPLETED, "done")
    assert actions == [Save("t"), Settled("t")]


def test_pinned_tasks_and_skills_route_to_matching_agents_only(state):
    state.handle(AgentAdded(agent("plain", types=["t"]), 0.0))
    state.handle(AgentAdded(agent("skilled", types=["t"], skills=["gpu"]), 0.0))
    actions = state.handle(TasksAdded((task("needs-gpu", requirements={"skills": ["gpu"]}),), 1.0))
    assert actions[-1] == Start("needs-gpu", 1, "skilled")
    actions = state.handle(TasksAdded((task("pinned", agent="skilled"),), 1.0))
    assert starts(actions) == []  # skilled is busy; plain may not take a task pinned elsewhere
    facts = wait_facts(state, "pinned", 1.0)
    assert [r.message for r in explain(facts)] == ["agent 'skilled' at capacity 1/1"]


def test_waiting_reasons_name_the_missing_agent_type(state):
    state.handle(TasksAdded((task("t", task_type="review"),), 1.0))
    (reason,) = explain(wait_facts(state, "t", 1.0))
    assert reason.kind == "no_agent" and "'review'" in reason.message


def test_a_draining_engine_starts_nothing_new(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(Draining(0.0))
    assert starts(state.handle(TasksAdded((task("t"),), 1.0))) == []
    assert [r.kind for r in explain(wait_facts(state, "t", 1.0))] == ["shutting_down"]


def test_trim_forgets_the_oldest_finished_tasks_beyond_the_budget():
    state = EngineState(ME, keep_finished=2)
    state.handle(AgentAdded(agent("a", capacity=5), 0.0))
    state.handle(TasksAdded(tuple(task(f"t{i}") for i in range(4)), 0.0))
    for i in range(4):
        ok(state, f"t{i}", 1.0 + i)
    assert state.handle(Trim(9.0)) == [Forget("t0"), Forget("t1")]
    assert set(state.tasks) == {"t2", "t3"}


def test_the_transition_table_refuses_illegal_moves():
    check_transition("t", TaskState.PENDING, TaskState.IN_PROGRESS)
    with pytest.raises(InvalidTransitionError) as caught:
        check_transition("t", TaskState.COMPLETED, TaskState.PENDING)
    assert "'completed'" in str(caught.value) and "final" in str(caught.value)


def test_the_same_events_give_the_same_actions():
    def run():
        s = EngineState(ME)
        out = s.handle(AgentAdded(agent("a", capacity=2), 0.0))
        out += s.handle(TasksAdded(tuple(task(f"t{i}", deps=[f"t{i - 1}"] if i % 3 else []) for i in range(9)), 1.0))
        for i in range(9):
            if s.tasks[f"t{i}"].state is TaskState.IN_PROGRESS:
                out += ok(s, f"t{i}", 2.0 + i)
        return out

    assert run() == run()


def _record(t, state: TaskState, **fields):
    from pepper.model.record import TaskRecord

    return TaskRecord(task=t, state=state, **fields)


def test_a_task_moved_to_another_workers_agent_is_freed_again_when_that_agent_goes_away():
    from pepper.model.events import PeersChanged

    state = EngineState(ME)
    state.handle(AgentAdded(agent("broken"), 0.0))
    state.handle(PeersChanged((agent("steady"),), 0.0))
    assert starts(state.handle(TasksAdded((task("job", policy="reassign -> dead_letter"),), 1.0))) == ["job"]
    fail(state, "job", 2.0)
    moved = state.tasks["job"]
    assert (moved.state, moved.placement, moved.recovery.moved_to) == (TaskState.PENDING, "steady", "steady")
    (reason,) = explain(wait_facts(state, "job", 2.5))
    assert reason.message == "agent 'steady' runs on another worker, which takes the task when it has room"
    assert state.handle(PeersChanged((agent("steady"), agent("other")), 3.0)) == []  # still there: nothing to do
    actions = state.handle(PeersChanged((), 4.0))  # its worker stopped: the task may go anywhere again
    assert state.tasks["job"].placement is None and starts(actions) == ["job"]
    assert fail(state, "job", 5.0) and state.tasks["job"].parked_at == 5.0  # and its policy goes on


# -- records of other processes arriving together ---------------------------------------------------------


def _claims(actions) -> list[tuple[str, int]]:
    return [(a.task_id, a.attempt) for a in actions if isinstance(a, Start)]


def test_a_dependent_released_elsewhere_in_the_same_batch_starts_once():
    # Another worker completed p and released c (pending, unclaimed); both rows arrive together, in either
    # order. Releasing c on p's record and then offering c again on its own record used to start it twice.
    done = _record(task("p"), TaskState.COMPLETED, attempts=1, result=7)
    released = _record(task("c", deps=["p"]), TaskState.PENDING, ready_at=0.5)
    for records in ((done, released), (released, done)):
        fresh = EngineState(ME)
        fresh.handle(AgentAdded(agent("a", capacity=4), 0.0))
        fresh.handle(TasksLoaded((_record(task("p"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1),), 0.0))
        fresh.handle(TasksAdded((task("c", deps=["p"]),), 0.0))
        actions = fresh.handle(TasksLoaded(records, 1.0))
        assert _claims(actions) == [("c", 1)]
        assert fresh.agents["a"].running == {"c"}


def test_a_dependent_claimed_elsewhere_in_the_same_batch_is_not_started_here(state):
    state.handle(AgentAdded(agent("a", capacity=4), 0.0))
    state.handle(TasksLoaded((_record(task("p"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1),), 0.0))
    state.handle(TasksAdded((task("c", deps=["p"], requirements={"resources": {"cpu": 1}}),), 0.0))
    done = _record(task("p"), TaskState.COMPLETED, attempts=1, result=7)
    claimed = _record(
        task("c", deps=["p"], requirements={"resources": {"cpu": 1}}),
        TaskState.IN_PROGRESS,
        owner="worker-b",
        attempts=1,
    )
    actions = state.handle(TasksLoaded((done, claimed), 1.0))
    assert _claims(actions) == [] and not state.agents["a"].running
    assert not [a for a in actions if type(a).__name__ == "TakeLease"]
    assert state.tasks["c"].owner == "worker-b"


def test_records_of_unknown_tasks_loaded_together_start_each_ready_task_once():
    # A fresh worker reads a completed dependency and its (already released) dependent in one batch.
    for order in (0, 1):
        state = EngineState(ME)
        state.handle(AgentAdded(agent("a", capacity=4), 0.0))
        done = _record(task("p"), TaskState.COMPLETED, attempts=1, result=7)
        blocked = _record(task("c", deps=["p"]), TaskState.BLOCKED)
        pending = _record(task("d", deps=["p"]), TaskState.PENDING, ready_at=0.5)
        records = (done, blocked, pending) if order == 0 else (pending, blocked, done)
        actions = state.handle(TasksLoaded(records, 1.0))
        assert sorted(_claims(actions)) == [("c", 1), ("d", 1)]


def test_a_failed_dependency_and_its_dependent_in_one_batch_cancel_the_dependent_once(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksLoaded((_record(task("p"), TaskState.IN_PROGRESS, owner="worker-b", attempts=1),), 0.0))
    state.handle(TasksAdded((task("c", deps=["p"]),), 0.0))
    failed = _record(task("p"), TaskState.FAILED, attempts=1)
    still_blocked = _record(task("c", deps=["p"]), TaskState.BLOCKED, placement="a")
    actions = state.handle(TasksLoaded((failed, still_blocked), 1.0))
    assert state.tasks["c"].state is TaskState.CANCELLED
    assert [a for a in actions if type(a) is Settled and a.task_id == "c"] == [Settled("c")]
    assert Save("c") in actions


# -- our decisions meeting other processes' writes ---------------------------------------------------------


def test_a_parked_outcome_written_again_after_a_conflict_still_wakes_waiters(state):
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("x", policy="dead_letter"),), 0.0))
    fail(state, "x", 1.0)
    assert state.tasks["x"].state is TaskState.PARKED
    ours_in_their_row = _record(task("x", policy="dead_letter"), TaskState.IN_PROGRESS, owner=ME, attempts=1)
    actions = state.handle(TasksLoaded((ours_in_their_row,), 2.0, "conflict"))
    assert actions == [Save("x"), Settled("x")]


def test_a_cancel_asked_while_our_retry_was_being_written_is_honoured():
    state = EngineState(ME, backoff=Backoff(delay=30.0, multiplier=1.0, max_delay=30.0, jitter=0.0))
    state.handle(AgentAdded(agent("a"), 0.0))
    state.handle(TasksAdded((task("y", max_retries=3),), 0.0))
    fail(state, "y", 1.0)  # a retry in 30 s
    row = _record(task("y", max_retries=3), TaskState.IN_PROGRESS, owner=ME, attempts=1, agent_id="a",
                  cancel_requested=True, reason="stop it")  # fmt: skip
    actions = state.handle(TasksLoaded((row,), 2.0, "conflict"))
    assert state.tasks["y"].state is TaskState.CANCELLED and Settled("y") in actions
    assert starts(state.handle(TimerFired(("retry", "y"), 31.0))) == []


def test_a_completion_the_database_refused_takes_back_the_dependents_it_released(state):
    from pepper.model.events import WriteRefused

    state.handle(AgentAdded(agent("a", capacity=2), 0.0))
    state.handle(TasksAdded((task("d"), task("c", deps=["d"])), 0.0))
    assert starts(ok(state, "d", 1.0, 5)) == ["c"]
    actions = state.handle(WriteRefused("d", TaskError("StoreError", "refused"), 1.1))
    assert state.tasks["d"].state is TaskState.FAILED
    assert state.tasks["c"].state is TaskState.CANCELLED and Abort("c", 1, "dependency 'd' failed") in actions
    assert not state.agents["a"].running


def test_a_dependent_released_or_claimed_on_an_end_is_stored_only_with_that_end(state):
    from pepper.engine.batch import Batch

    state.handle(AgentAdded(agent("a", capacity=2), 0.0))
    state.handle(TasksAdded((task("d"), task("c", deps=["d"]), task("e", deps=["d"], task_type="elsewhere"),
                             task("f"), task("g", deps=["f"])), 0.0))  # fmt: skip
    batch = Batch()
    for action in ok(state, "d", 1.0, 5):  # c is claimed on d's end, e released (no agent here takes it)
        if type(action) is Save:
            batch.dirty[action.task_id] = None
    assert state.tasks["c"].state is TaskState.IN_PROGRESS and state.tasks["e"].state is TaskState.PENDING
    versions = dict.fromkeys(batch.dirty, 1)
    assert batch.writes(state.tasks, versions, ME).needs == batch.needs(state.tasks) == {"c": ("d",), "e": ("d",)}


def test_a_claim_cancelled_before_its_batch_commits_stores_no_lease(state):
    from pepper.engine.batch import Batch
    from pepper.model.events import DropLease, LeasesLoaded, TakeLease

    state.handle(LeasesLoaded({"cpu": 4.0}, (), 0.0))
    state.handle(AgentAdded(agent("a"), 0.0))
    batch = Batch()

    def collect(actions):
        for a in actions:
            if type(a) is Save:
                batch.dirty[a.task_id] = None
            elif type(a) is TakeLease:
                batch.lease_takes.append((a.lease, a.attempt))
            elif type(a) is DropLease:
                batch.lease_drops.append(a.lease_id)

    collect(state.handle(TasksAdded((task("x", requirements={"resources": {"cpu": 1}}),), 0.0)))
    claim = state.handle(TasksAdded((task("y", requirements={"resources": {"cpu": 1}}),), 0.0))
    collect(claim)
    assert [a.lease.task_id for a in claim if type(a) is TakeLease] == []  # y waits: a has one slot
    assert len(batch.lease_takes) == 1
    writes = batch.writes(state.tasks, {"x": 1, "y": 1}, ME)
    assert [lease.task_id for lease in writes.lease_takes] == ["x"]  # a standing claim keeps its lease
    collect(state.handle(CancelRequested("x", 1.0, "changed my mind")))  # before the claim is committed
    collect(state.handle(CallReturned("", "x", 1, 1.0)))  # its attempt never started: reported stopped at once
    writes = batch.writes(state.tasks, {"x": 1, "y": 1}, ME)
    assert [lease.task_id for lease in writes.lease_takes] == ["y"]  # y took the freed slot; x stores none
    assert "x" in batch.dirty and state.tasks["x"].state is TaskState.CANCELLED


# -- several workers sharing a task type -------------------------------------------------------------------


def _beside(*peers: AgentSpec, worker_id: str = "other-worker") -> PeersChanged:
    """Another live worker runs ``peers``."""
    return PeersChanged(peers, 0.0, "", tuple((kind, worker_id) for spec in peers for kind in spec.task_types))


def _order_of(worker_id: str, peers: tuple[AgentSpec, ...]) -> list[str]:
    """The order in which a worker with one agent of capacity 1 runs 20 tasks that became ready together."""
    s = EngineState(worker_id, ageing=10.0)
    s.handle(_beside(*peers))
    s.handle(AgentAdded(agent("a"), 0.0))
    ran = starts(s.handle(TasksAdded(tuple(task(f"t{i:02d}") for i in range(20)), 1.0)))
    for at in range(2, 40):
        if len(ran) == 20:
            break
        ran += starts(ok(s, ran[-1], float(at)))
    return ran


def test_workers_sharing_a_task_type_take_tasks_ready_together_in_orders_of_their_own():
    # Alone, a worker keeps submission order; beside another worker with an agent for the same type, each takes
    # tasks ready at the same moment in its own order, so the two rarely claim the same task at once.
    ids = [f"t{i:02d}" for i in range(20)]
    assert _order_of("w1", ()) == ids
    beside = (agent("a"),)  # another worker's agent for the same type
    first, second = _order_of("w1", beside), _order_of("w2", beside)
    assert sorted(first) == sorted(second) == ids
    assert first != second and first[:5] != second[:5]
    assert _order_of("w1", beside) == first  # each worker's order is its own, and the same every time
    assert _order_of("w1", (agent("x", types=("other",)),)) == ids  # peers for other types change nothing


def test_priority_still_comes_first_for_workers_sharing_a_task_type():
    s = EngineState("w1", ageing=10.0)
    s.handle(_beside(agent("a")))
    s.handle(AgentAdded(agent("a"), 0.0))
    tasks = [task(f"low{i}", priority="low") for i in range(5)] + [task("urgent", priority="critical")]
    ran = starts(s.handle(TasksAdded(tuple(tasks), 1.0)))
    ran += starts(ok(s, ran[-1], 2.0))
    assert ran[0] == "urgent" and ran[1].startswith("low")


def _worker_reading(worker_id: str, other: str, capacity: int = 10) -> EngineState:
    s = EngineState(worker_id, ageing=10.0)
    s.handle(AgentAdded(agent("a", capacity=capacity), 0.0))
    s.handle(_beside(agent("a"), worker_id=other))
    return s


def test_workers_that_read_the_same_tasks_start_different_ones():
    # Two workers read the same 40 pending tasks (rows another process submitted): each has one first taker,
    # the same in both workers' eyes, so the first tasks each starts are its own and the two never race.
    records = tuple(_record(task(f"t{i:02d}"), TaskState.PENDING) for i in range(40))
    first = _worker_reading("w1", "w2")
    second = _worker_reading("w2", "w1")
    one = set(starts(first.handle(TasksLoaded(records, 1.0))))
    two = set(starts(second.handle(TasksLoaded(records, 1.0))))
    assert len(one) == len(two) == 10
    assert not one & two
    alone = EngineState("w1", ageing=10.0)  # without a peer, the rows' order
    alone.handle(AgentAdded(agent("a", capacity=10), 0.0))
    assert starts(alone.handle(TasksLoaded(records, 1.0))) == [f"t{i:02d}" for i in range(10)]


def test_an_idle_worker_takes_a_task_another_worker_should_take_first():
    # A first taker that is slow or dead delays nobody: a worker with a free slot and nothing of its own runs it.
    for i in range(50):
        s = _worker_reading("w1", "w2")
        records = (_record(task(f"only-{i}"), TaskState.PENDING),)
        assert starts(s.handle(TasksLoaded(records, 1.0))) == [f"only-{i}"]
