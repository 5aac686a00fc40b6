"""Recovery policies as pure decisions: each strategy, chaining, exact backoff and jitter bounds, bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pepper.errors import ConflictError, ValidationError
from pepper.model.recovery import (
    NO_RECOVERY,
    Abort,
    DeadLetter,
    Fallback,
    Options,
    Policy,
    Reassign,
    RecoveryState,
    Retry,
    Skip,
    decide,
    default_policy,
)
from pepper.model.recovery_policy import stored_policy
from pepper.model.retry import Backoff, unit_jitter
from pepper.model.status import TaskError, error_types
from pepper.model.task import Task
from pepper.scheduling.explain import WaitFacts, explain, retry_of

NOBODY_ELSE = Options()


def run_chain(policy, failures, options=NOBODY_ELSE, error="RuntimeError", agent="a"):
    """Decide ``failures`` failures in a row; the decisions."""
    state, decisions = NO_RECOVERY, []
    for n in range(failures):
        decision = decide(Policy.parse(policy), state, error, agent, f"task:{n + 1}", options)
        decisions.append(decision)
        state = decision.state
        agent = decision.agent or agent
    return decisions


def test_retry_backs_off_exactly_within_its_jitter_bounds_then_hands_over():
    policy = Retry(max_attempts=4, delay=1.0, multiplier=3.0, max_delay=5.0, jitter=0.5)
    decisions = run_chain(Policy((policy,)), 5)
    assert [d.action for d in decisions] == ["retry"] * 4 + ["fail"]
    for n, d in enumerate(decisions[:4], start=1):
        base = min(5.0, 1.0 * 3.0 ** (n - 1))
        assert d.delay == pytest.approx(base * (1 - 0.5 * unit_jitter(f"task:{n}:{n}")))
        assert base * 0.5 <= d.delay <= base
    assert (
        decisions[-1].message
        == "its recovery policy (retry(max_attempts=4, multiplier=3.0, max_delay=5.0, jitter=0.5)) is exhausted"
    )


def test_no_jitter_means_exact_delays_and_the_default_policy_uses_the_runtime_settings():
    decisions = run_chain(Policy((Retry(3, delay=2, multiplier=2, max_delay=100, jitter=0),)), 3)
    assert [d.delay for d in decisions] == [2.0, 4.0, 8.0]
    default = default_policy(2, Backoff(0.5, 2.0, 10.0, 0.0))
    assert [d.delay for d in run_chain(default, 3)] == [0.5, 1.0, 0.0] and run_chain(default, 3)[-1].action == "fail"


def test_max_delay_caps_how_far_the_delay_grows_never_a_longer_first_delay():
    hour = run_chain(Policy((Retry(3, delay=3600, jitter=0),)), 3)
    assert [d.delay for d in hour] == [3600.0, 3600.0, 3600.0]  # the default max_delay (60 s) cuts none of them
    assert [d.message for d in hour] == [f"retry {n} of 3 in 3600.00s" for n in (1, 2, 3)]
    steep = run_chain(Policy((Retry(1000, delay=1, multiplier=1e300, max_delay=90, jitter=0),)), 4)
    assert [d.delay for d in steep] == [1.0, 90.0, 90.0, 90.0]  # a growth past any float stops at the cap
    assert Retry(1000).max_attempts == 1000 and Policy.parse("retry(2, delay=366d)").strategies[0].delay == 366 * 86400


def test_errors_that_are_not_retryable_go_straight_to_the_next_strategy():
    policy = "retry(5, never_retry=[ValueError]) -> dead_letter"
    assert run_chain(policy, 1, error="ValueError")[0].action == "dead_letter"
    assert run_chain(policy, 1, error="KeyError")[0].action == "retry"
    only = "retry(5, retry_on=[TimeoutError]) -> skip"
    assert run_chain(only, 1, error="TimeoutError")[0].action == "retry"
    assert run_chain(only, 1, error="ZeroDivisionError")[0].action == "skip"


def test_retry_on_and_never_retry_match_any_class_the_error_inherits_from():
    connection = ("ConnectionError", "OSError", "Exception", "BaseException")
    assert run_chain("retry(2, retry_on=[OSError]) -> skip", 1, error=connection)[0].action == "retry"
    assert run_chain("retry(2, never_retry=[OSError]) -> skip", 1, error=connection)[0].action == "skip"
    assert run_chain("retry(2, retry_on=[TimeoutError]) -> skip", 1, error=connection)[0].action == "skip"
    assert run_chain("retry(2, retry_on=[OSError]) -> skip", 1, error="ConnectionError")[0].action == "skip"

    class Transient(ConnectionError):
        pass

    error = TaskError("Transient", "try again", types=error_types(Transient()))
    assert error.names == ("Transient", *connection)
    assert TaskError.from_dict(error.to_dict()) == error and TaskError("X", "y").names == ("X",)


def test_reassign_never_returns_to_an_agent_that_failed_and_hands_over_when_none_is_left():
    agents = ["a", "b", "c"]

    def other(excluded):
        return next((x for x in agents if x not in excluded), None)

    decisions = run_chain("reassign -> dead_letter", 4, Options(other_agent=other))
    assert [(d.action, d.agent) for d in decisions] == [
        ("reassign", "b"), ("reassign", "c"), ("dead_letter", None), ("dead_letter", None)
    ]  # fmt: skip
    assert decisions[1].state.failed_agents == ("a", "b") and decisions[1].penalize == "b"
    limited = run_chain(Policy((Reassign(max_times=1, penalize=False), Abort())), 2, Options(other_agent=other))
    assert [d.action for d in limited] == ["reassign", "abort"] and limited[0].penalize is None


def test_reassign_says_who_failed_the_task_and_why_it_handed_over():
    def only(agent):
        return Options(other_agent=lambda excluded: None if agent in excluded else agent)

    moved = decide(Policy.parse("reassign"), NO_RECOVERY, "E", "a", "s", only("b"))
    assert (moved.action, moved.agent, moved.message) == ("reassign", "b", "moved to agent 'b' (failed on a)")
    never_ran = decide(Policy.parse("reassign -> skip"), NO_RECOVERY, "E", None, "s", only("b"))
    assert never_ran.action == "skip"  # the only eligible agent is the one it would run on anyway
    exhausted = decide(Policy.parse("reassign"), NO_RECOVERY, "E", "b", "s", only("b"))
    assert (
        exhausted.message == "its recovery policy (reassign) is exhausted (reassign: no eligible agent other than 'b')"
    )
    pinned = Options(
        other_agent=lambda excluded: next((a for a in ("a", "b") if a not in excluded), None), placed_on="a"
    )
    away = decide(Policy.parse("reassign"), NO_RECOVERY, "E", None, "s", pinned)
    assert (away.agent, away.message) == ("b", "moved to agent 'b' from agent 'a' (it has not failed on any yet)")
    stuck = decide(Policy.parse("reassign"), NO_RECOVERY, "E", None, "s", replace(pinned, placed_on="b"))
    assert (stuck.agent, stuck.message) == ("a", "moved to agent 'a' from agent 'b' (it has not failed on any yet)")
    alone = decide(Policy.parse("reassign"), NO_RECOVERY, "E", None, "s", replace(only("a"), placed_on="a"))
    assert alone.message == "its recovery policy (reassign) is exhausted (reassign: no eligible agent other than 'a')"


def test_fallback_runs_once_on_a_named_agent_or_as_another_task_type():
    can = Options(can_run=lambda agent, task_type: agent == "backup", agent_for_type=lambda t: "generalist")
    assert [d.action for d in run_chain("fallback(backup) -> skip", 2, can)] == ["fallback", "skip"]
    as_type = run_chain(Policy((Fallback(task_type="manual_review"),)), 2, can)
    assert (as_type[0].action, as_type[0].agent, as_type[0].state.run_as) == ("fallback", "generalist", "manual_review")
    assert as_type[1].action == "fail"
    missing = run_chain("fallback(agent=ghost) -> abort", 1, can)
    assert missing[0].action == "abort"  # no such agent: the next strategy decides


def test_terminal_strategies_decide_at_once():
    for strategy, action in ((Skip(), "skip"), (Abort(), "abort"), (DeadLetter(), "dead_letter")):
        assert run_chain(Policy((strategy, Retry())), 1)[0].action == action


def test_policies_read_from_text_mappings_and_lists_and_round_trip():
    text = (
        "retry(3, delay=2s, max_delay=1m, never_retry=[ValueError, KeyError]) -> reassign(max_times=2) -> dead_letter"
    )
    policy = Policy.parse(text)
    assert policy.strategies == (
        Retry(3, delay=2.0, max_delay=60.0, never_retry=frozenset({"ValueError", "KeyError"})),
        Reassign(max_times=2),
        DeadLetter(),
    )
    assert Policy.parse(str(policy)) == policy == Policy.parse(policy.to_data())
    assert Policy.parse(["retry", {"strategy": "skip"}]).strategies == (Retry(), Skip())
    assert Policy.parse("retry(2) → dead-letter").strategies == (Retry(2), DeadLetter())
    assert RecoveryState.from_data(RecoveryState(2, 1, ("a",), "x").to_data()) == RecoveryState(2, 1, ("a",), "x")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("retyr", r"unknown recovery strategy 'retyr'; valid strategies: retry, reassign, .* Did you mean 'retry'"),
        ("retry(-1)", "max_attempts must be a whole number from 0 to 1000"),
        ("retry(1001)", "max_attempts must be a whole number from 0 to 1000, got 1001"),
        ("retry(1000000000)", "max_attempts must be a whole number from 0 to 1000"),
        ("retry(3, delay=-2)", "cannot be negative"),
        ("retry(2, delay=1e300, max_delay=1e300)", r"retry delay must be from 0 to 366 days \(31622400s\)"),
        ("retry(2, max_delay=367d)", "retry max_delay must be from 0 to 366 days"),
        ("retry(3, multiplier=0.5)", "multiplier must be >= 1"),
        ("retry(3, multiplier=inf)", "multiplier must be >= 1 and finite"),
        ("retry(3, jitter=2)", "jitter must be between 0 and 1"),
        ("retry(3, attempts=2)", "retry takes no argument 'attempts'"),
        ("reassign(-2)", "max_times must be a whole number from 0 to 1000"),
        ("reassign(1001)", "max_times must be a whole number from 0 to 1000"),
        ("fallback", "exactly one of agent"),
        ("retry -> ", "cannot be empty"),
        ("", "cannot be empty"),
        ([], "at least one strategy"),
        (42, "recovery policy is text"),
        ({"strategy": "nap"}, "unknown recovery strategy 'nap'"),
    ],
)
def test_bad_policies_are_refused_with_what_is_valid(value, message):
    with pytest.raises(ValidationError, match=message):
        Policy.parse(value)


# -- the state machine carrying decisions out -----------------------------------------------------

from pepper.engine.state import EngineState  # noqa: E402
from pepper.model.agent import AgentSpec  # noqa: E402
from pepper.model.events import (  # noqa: E402
    AgentAdded,
    AttemptEnded,
    CallReturned,
    Decided,
    Dropped,
    ErrorHandled,
    RecordError,
    Replayed,
    Settled,
    Start,
    TasksAdded,
    TimerFired,
)
from pepper.model.submission import build_task  # noqa: E402
from pepper.model.task import TRANSITIONS, TaskState  # noqa: E402
from tests.unit.test_state_machine import cancel, ends_stored  # noqa: E402


def engine(*agents, recovery=None):
    state = EngineState("me", recovery=recovery)
    for spec in agents:
        state.handle(AgentAdded(spec, 0.0))
    return state


def spec(agent_id, recovery=None, types=("t",)):
    return AgentSpec.build(agent_id, task_types=list(types), recovery=recovery)


def fail(state, task_id, at, error_type="RuntimeError"):
    t = state.tasks[task_id]
    return ends_stored(state, at, state.handle(AttemptEnded(task_id, t.attempts, at, False,
                                                            error=TaskError(error_type, "it broke"))))  # fmt: skip


def started(actions):
    return [(a.task_id, a.agent_id) for a in actions if isinstance(a, Start)]


def errors(actions):
    return [(a.strategy, a.action) for a in actions if isinstance(a, RecordError)]


def test_a_parked_task_keeps_its_dependents_waiting_until_it_is_replayed():
    state = engine(spec("a"))
    policy = "retry(1, delay=1, jitter=0) -> dead_letter"
    x, after = (
        build_task(task_id="x", task_type="t", policy=policy),
        build_task(task_id="after", task_type="t", dependencies=["x"]),
    )
    state.handle(TasksAdded((x, after), 0.0))
    first = fail(state, "x", 1.0)
    assert errors(first) == [("retry(max_attempts=1, jitter=0.0)", "retry")]
    assert state.tasks["x"].next_attempt_at == 2.0
    again = state.handle(TimerFired(("retry", "x"), 2.0))
    assert started(again) == [("x", "a")]
    parked = fail(state, "x", 3.0)
    x = state.tasks["x"]
    assert errors(parked) == [("dead_letter", "dead_letter")] and not started(parked)
    assert (x.state, x.parked_at, state.tasks["after"].state) == (TaskState.PARKED, 3.0, TaskState.BLOCKED)
    assert "parked in the dead-letter queue" in x.reason
    assert any(isinstance(a, Settled) and a.task_id == "x" for a in parked)  # wakes whoever waits for it

    replayed = state.handle(Replayed("x", None, 10.0))
    assert started(replayed) == [("x", "a")] and x.parked_at is None and x.recovery.stage == 0
    state.handle(AttemptEnded("x", x.attempts, 11.0, True, "fixed"))
    assert state.tasks["after"].state is TaskState.IN_PROGRESS


def test_reassign_moves_the_task_to_an_agent_that_has_not_failed_it():
    state = engine(spec("a"), spec("b"), spec("c"))
    state.handle(TasksAdded((build_task(task_id="x", task_type="t", agent="a", policy="reassign -> abort"),), 0.0))
    assert state.tasks["x"].agent_id == "a"
    moved = fail(state, "x", 1.0)
    (where,) = started(moved)
    assert where[1] in ("b", "c") and state.tasks["x"].placement == where[1]
    moved_again = fail(state, "x", 2.0)
    (last,) = started(moved_again)
    assert last[1] not in ("a", where[1])
    aborted = fail(state, "x", 3.0)
    assert errors(aborted) == [("abort", "abort")]
    assert state.tasks["x"].state is TaskState.FAILED and state.tasks["x"].reason.startswith("aborted: ")


def test_skip_completes_the_task_without_a_result_and_its_dependents_run():
    state = engine(spec("a"))
    state.handle(TasksAdded((build_task(task_id="x", task_type="t", policy="skip"),
                             build_task(task_id="after", task_type="t", dependencies=["x"])), 0.0))  # fmt: skip
    actions = fail(state, "x", 1.0)
    x = state.tasks["x"]
    assert (x.state, x.result, x.reason) == (
        TaskState.COMPLETED,
        None,
        "skipped: skipped by its recovery policy after RuntimeError: it broke",
    )
    assert started(actions) == [("after", "a")]


def test_the_task_policy_wins_over_the_agents_which_wins_over_the_runtimes():
    state = engine(spec("a", recovery="skip"), recovery="dead_letter")
    state.handle(TasksAdded((build_task(task_id="own", task_type="t", policy="abort"),), 0.0))
    assert errors(fail(state, "own", 1.0)) == [("abort", "abort")]
    state.handle(TasksAdded((build_task(task_id="agents", task_type="t"),), 2.0))
    assert errors(fail(state, "agents", 3.0)) == [("skip", "skip")]
    bare = engine(spec("b"), recovery="dead_letter")
    bare.handle(TasksAdded((build_task(task_id="runtime", task_type="t"),), 0.0))
    assert errors(fail(bare, "runtime", 1.0)) == [("dead_letter", "dead_letter")]


def test_a_fallback_task_type_runs_on_an_agent_of_that_type_as_that_type():
    state = engine(spec("a"), spec("human", types=("manual",)))
    state.handle(TasksAdded((build_task(task_id="x", task_type="t", policy="fallback(task_type=manual)"),), 0.0))
    assert started(fail(state, "x", 1.0)) == [("x", "human")]
    assert state.tasks["x"].recovery.run_as == "manual"


def test_handling_an_error_by_hand_stops_a_running_attempt_and_applies_the_strategy():
    state = engine(spec("a"))
    state.handle(TasksAdded((build_task(task_id="x", task_type="t"),), 0.0))
    actions = state.handle(ErrorHandled("x", TaskError("Stuck", "no progress"), Policy.parse("dead_letter"), 5.0))
    assert any(type(a).__name__ == "Abort" for a in actions)
    x = state.tasks["x"]
    assert (x.state, x.parked_at, x.failures) == (TaskState.PARKED, 5.0, 1)
    assert [a.action for a in actions if isinstance(a, Decided)] == ["dead_letter"]
    dropped = state.handle(Dropped("x", "not worth it", 6.0))
    assert (
        x.state is TaskState.FAILED
        and x.reason == "not worth it"
        and any(type(a).__name__ == "Settled" for a in dropped)
    )
    again = state.handle(ErrorHandled("x", TaskError("Error", "try again"), Policy.parse("retry(1, delay=0)"), 7.0))
    assert x.state is TaskState.PENDING and started(again) == []  # the stopped call still holds a's only slot
    assert started(state.handle(CallReturned("a", "x", 1, 8.0))) == [("x", "a")]
    assert x.state is TaskState.IN_PROGRESS


def by_hand(state, task_id, policy, at, error="Stuck"):
    handled = ErrorHandled(task_id, TaskError(error, "reported by hand"), Policy.parse(policy), at)
    return ends_stored(state, at, state.handle(handled))


def recorded(actions):
    return [(a.strategy, a.action, a.detail) for a in actions if isinstance(a, RecordError)]


def test_an_error_reported_on_a_blocked_task_is_recorded_and_the_task_keeps_waiting():
    state = engine(spec("a"))
    state.handle(TasksAdded((build_task(task_id="x", task_type="t", dependencies=["dep"]),), 0.0))
    actions = by_hand(state, "x", "retry", 1.0)
    ((strategy, action, detail),) = recorded(actions)
    assert (strategy, action) == ("retry", "retry") and detail.startswith("not retried, though counted as retry 1 of ")
    assert detail.endswith("keeps waiting for its dependencies and runs once they have completed")
    (said,) = [a for a in actions if isinstance(a, Decided)]
    assert said.message == detail  # what the caller is told is what the history says
    x = state.tasks["x"]
    assert x.state is TaskState.BLOCKED and x.next_attempt_at is None and not started(actions)
    # and it runs once its dependency has completed, like any blocked task
    state.handle(TasksAdded((build_task(task_id="dep", task_type="t"),), 2.0))
    state.handle(AttemptEnded("dep", 1, 3.0, True, "ok"))
    assert state.tasks["x"].state is TaskState.IN_PROGRESS and state.tasks["x"].attempts == 1


def test_a_dead_letter_of_a_blocked_task_is_refused_and_changes_nothing():
    state = engine(spec("a"))
    state.handle(TasksAdded((build_task(task_id="x", task_type="t", dependencies=["dep"]),), 0.0))
    x = state.tasks["x"]
    before = (x.state, x.error, x.recovery, x.parked_at, x.reason, x.placement)
    for policy in ("dead_letter", "retry(1) -> dead_letter"):
        if policy != "dead_letter":
            by_hand(state, "x", policy, 1.0)  # its retry is counted: the next call of this chain dead-letters
            before = (x.state, x.error, x.recovery, x.parked_at, x.reason, x.placement)
        handled = ErrorHandled("x", TaskError("Stuck", "by hand"), Policy.parse(policy), 2.0)
        with pytest.raises(ConflictError, match=r"'x' has not run yet: it waits for its dependencies \('dep'\)"):
            state.handle(handled)
        assert (x.state, x.error, x.recovery, x.parked_at, x.reason, x.placement) == before
    state.handle(TasksAdded((build_task(task_id="dep", task_type="t"),), 3.0))
    state.handle(AttemptEnded("dep", 1, 4.0, True, "ok"))
    assert x.state is TaskState.IN_PROGRESS  # never parked: it runs once its dependency has completed


def test_a_reassign_of_a_task_that_never_ran_needs_a_second_eligible_agent():
    alone = engine(spec("a"))
    alone.handle(TasksAdded((build_task(task_id="x", task_type="t", dependencies=["dep"]),), 0.0))
    actions = by_hand(alone, "x", "reassign", 1.0)
    ((_, action, detail),) = recorded(actions)
    assert action == "fail" and detail == (
        "its recovery policy (reassign) is exhausted (reassign: no eligible agent other than 'a')"
    )
    assert alone.tasks["x"].state is TaskState.FAILED and "failed on" not in detail
    pair = engine(spec("a"), spec("b"))
    pair.handle(TasksAdded((build_task(task_id="y", task_type="t", dependencies=["dep"]),), 0.0))
    ((_, action, detail),) = recorded(by_hand(pair, "y", "reassign", 1.0))
    y = pair.tasks["y"]
    assert action == "reassign" and y.state is TaskState.BLOCKED and y.placement in ("a", "b")
    assert detail.startswith(f"placed on agent {y.placement!r}, one of the eligible agents (it has not failed on")
    assert "failed on )" not in detail and detail.endswith("keeps waiting for its dependencies")
    pair.handle(TasksAdded((build_task(task_id="z", task_type="t", agent="a", dependencies=["dep"]),), 0.0))
    ((_, action, detail),) = recorded(by_hand(pair, "z", "reassign", 1.0))  # pinned to a: moved to the other
    assert (action, pair.tasks["z"].placement) == ("reassign", "b")
    assert detail.startswith("moved to agent 'b' from agent 'a' (it has not failed on any yet)")


def test_skip_or_abort_by_hand_end_a_blocked_task_as_they_would_after_a_failure():
    state = engine(spec("a"))
    state.handle(TasksAdded((build_task(task_id="gate", task_type="t", dependencies=["never"]),
                             build_task(task_id="skipped", task_type="t", dependencies=["gate"]),
                             build_task(task_id="after", task_type="t", dependencies=["skipped"]),
                             build_task(task_id="aborted", task_type="t", dependencies=["gate"]),
                             build_task(task_id="doomed", task_type="t", dependencies=["aborted"])), 0.0))  # fmt: skip
    by_hand(state, "skipped", "skip", 1.0)
    assert state.tasks["skipped"].state is TaskState.COMPLETED
    assert state.tasks["after"].state is TaskState.IN_PROGRESS  # its only dependency was skipped
    by_hand(state, "aborted", "abort", 2.0)
    assert state.tasks["aborted"].state is TaskState.FAILED
    assert state.tasks["doomed"].state is TaskState.CANCELLED


def test_an_error_reported_on_a_pending_task_is_recorded_and_it_waits_out_the_retry():
    state = engine(spec("a"))
    state.handle(TasksAdded((build_task(task_id="busy", task_type="t"), build_task(task_id="x", task_type="t")), 0.0))
    assert state.tasks["x"].state is TaskState.PENDING  # the only agent is busy
    actions = by_hand(state, "x", "retry(1, delay=5, jitter=0)", 1.0)
    assert recorded(actions) == [("retry(max_attempts=1, delay=5.0, jitter=0.0)", "retry", "retry 1 of 1 in 5.00s")]
    x = state.tasks["x"]
    assert (x.state, x.next_attempt_at, x.failures) == (TaskState.PENDING, 6.0, 0)
    state.handle(AttemptEnded("busy", 1, 2.0, True, "ok"))
    assert x.state is TaskState.PENDING  # the agent is free, but the retry's delay has not passed
    assert started(state.handle(TimerFired(("retry", "x"), 6.0))) == [("x", "a")]


def test_handling_a_failed_task_by_hand_may_skip_abort_or_park_it():
    for policy, expected in (
        ("skip", TaskState.COMPLETED),
        ("abort", TaskState.FAILED),
        ("dead_letter", TaskState.PARKED),
    ):
        state = engine(spec("a"))
        state.handle(TasksAdded((build_task(task_id="x", task_type="t"),), 0.0))
        fail(state, "x", 1.0)
        assert state.tasks["x"].state is TaskState.FAILED
        by_hand(state, "x", policy, 2.0)
        assert state.tasks["x"].state is expected, policy


def test_parked_is_a_state_with_its_own_transitions():
    assert TaskState("parked") is TaskState.PARKED and not TaskState.PARKED.is_final and TaskState.PARKED.is_settled
    out_of_parked = {dst for (src, dst) in TRANSITIONS if src is TaskState.PARKED}
    into_parked = {src for (src, dst) in TRANSITIONS if dst is TaskState.PARKED}
    assert out_of_parked == {TaskState.PENDING, TaskState.FAILED, TaskState.CANCELLED, TaskState.COMPLETED}
    assert into_parked == {TaskState.PENDING, TaskState.IN_PROGRESS, TaskState.FAILED}


def test_a_parked_task_can_be_cancelled_but_not_dropped_or_replayed_twice():
    state = engine(spec("a"), recovery="dead_letter")
    state.handle(TasksAdded((build_task(task_id="x", task_type="t"),
                             build_task(task_id="after", task_type="t", dependencies=["x"])), 0.0))  # fmt: skip
    fail(state, "x", 1.0)
    assert state.tasks["x"].state is TaskState.PARKED
    assert state.handle(TimerFired(("retry", "x"), 2.0)) == []  # a parked task never starts by itself
    cancel(state, "x", 3.0, "not needed")
    assert state.tasks["x"].state is TaskState.CANCELLED and state.tasks["after"].state is TaskState.CANCELLED
    assert state.handle(Replayed("x", None, 4.0)) == [] and state.handle(Dropped("x", "late", 4.0)) == []


def test_a_retrys_reason_counts_the_retries_of_the_policy_followed_or_applied_by_hand():
    policy = Policy.parse("reassign -> retry(2, delay=1h)")
    assert retry_of(RecoveryState(stage=1, used=1), policy) == (1, 2)
    assert retry_of(RecoveryState(stage=0, used=1), policy) is None  # a reassign is no retry
    by_hand = RecoveryState(by_hand=("retry(max_attempts=5)", 0, 3))  # the task's own policy started again
    assert retry_of(by_hand, None) == (3, 5) and retry_of(RecoveryState(stage=0, used=0), policy) is None

    def reason(of):
        facts = WaitFacts(Task("t", "x"), TaskState.PENDING, 100.0, next_attempt_at=3700.0, failures=2, retry_of=of)
        return explain(facts)[0].message

    assert reason((1, 2)) == "retry 1 of 2 starts in 1h00m"
    assert reason(None) == "the next attempt starts in 1h00m, after 2 failed attempts"  # the policy is not known


def test_a_policy_stored_beyond_todays_bounds_is_read_within_them():
    old = [{"strategy": "retry", "max_attempts": 10**9, "delay": 1e300, "max_delay": 1e300}, {"strategy": "skip"}]
    with pytest.raises(ValidationError):
        Policy.parse(old)  # refused as input
    assert stored_policy(old).strategies == (Retry(1000, delay=366 * 86400, max_delay=366 * 86400), Skip())
    assert stored_policy(Policy.parse("retry(2) -> dead_letter").to_data()) == Policy.parse("retry(2) -> dead_letter")
    with pytest.raises(ValidationError):
        stored_policy([{"strategy": "nap"}])  # what no pepper ever stored stays refused
