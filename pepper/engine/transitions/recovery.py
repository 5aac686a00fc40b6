"""What a failure leads to: the task's recovery policy decides (``model.recovery``), these moves act.

Every failed attempt - an agent that raised, timed out, went over its memory cap
or whose process died - comes here, and so does ``ErrorHandler.handle_error``:
one path. Each decision is recorded in the task's error history (``RecordError``)
and returned as a ``Decided`` action for whoever asked. A task the policy
dead-letters moves to ``parked`` and waits for a person (replay, drop or cancel).
Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.admission import release, restore_dependents
from pepper.engine.transitions.cancellation import cascade_once_stored
from pepper.engine.transitions.placement import abort, offer, refill
from pepper.engine.transitions.turn import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PARKED,
    PENDING,
    Turn,
    attempt_record,
    move,
    save_and_settle,
)
from pepper.errors import ConflictError
from pepper.model import events as ev
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.recovery import (
    ABORTED,
    NO_RECOVERY,
    Decision,
    Options,
    Policy,
    RecoveryOutcome,
    RecoveryState,
    Retry,
    decide,
    default_policy,
)
from pepper.model.status import TaskError
from pepper.model.workflow_run import SKIPPED
from pepper.scheduling.eligibility import Route, rejection
from pepper.scheduling.load import AgentLoad

if TYPE_CHECKING:
    from pepper.engine.state import EngineState

_UNKNOWN = TaskError("Error", "the attempt failed without saying why")
#: Decisions that would run a task again (or park it): a blocked task keeps waiting for its dependencies instead
#: (a dead letter is refused for it: it has no failed attempt to park).
_RERUN = ("retry", "reassign", "fallback", "dead_letter")


def check_handleable(t: LiveTask | TaskRecord, worker_id: str) -> None:
    """Refuse to handle an error of a task that has nothing left to recover (``ConflictError``)."""
    task_id, state = t.task.task_id, t.state
    if state is COMPLETED:
        raise ConflictError(f"task {task_id!r} has already completed; there is no error to handle")
    if state is CANCELLED:
        raise ConflictError(f"task {task_id!r} was cancelled; submit it again under a new id to run it")
    if state is IN_PROGRESS and t.owner != worker_id:
        raise ConflictError(
            f"task {task_id!r} is running on another worker ({t.owner}); handle its error there, or cancel it"
        )


def decided(actions: list[ev.Action]) -> ev.Decided | None:
    """The decision among ``actions`` (those of handling one error), if one was made."""
    for action in actions:
        if type(action) is ev.Decided:
            return action
    return None


def outcome_of(t: LiveTask, decision: ev.Decided | None) -> RecoveryOutcome:
    """What handling an error of ``t`` led to."""
    if decision is None:
        raise ConflictError(f"task {t.task.task_id!r} changed meanwhile; nothing was decided, try again")
    return RecoveryOutcome(t.task.task_id, decision.action, decision.strategy, decision.message, t.state.value,
                           t.next_attempt_at, t.placement, t.state is PARKED)  # fmt: skip


def policy_for(s: EngineState, t: LiveTask) -> Policy:
    """The task's own policy, else its agent's, else the runtime's, else ``retry(max_retries)``."""
    if t.task.policy is not None:
        return t.task.policy
    agent = s.agents.get(t.agent_id) if t.agent_id is not None else None
    if agent is not None and agent.spec.recovery is not None:
        return agent.spec.recovery
    return s.default_recovery or default_policy(t.task.max_retries, s.backoff)


def options(s: EngineState, t: LiveTask) -> Options:
    """Who else could run ``t``: an agent here, best first by expected time (then load and age); else one
    of another worker's (the task is then placed on it, and that worker runs it)."""
    skills = t.task.requirements.skills
    own_type = t.recovery.run_as or t.task.task_type

    def able(agent: AgentLoad, task_type: str) -> bool:
        return agent.accepting and rejection(agent.spec, Route(task_type, None, skills)) is None

    def best(task_type: str, excluded: frozenset[str] = frozenset()) -> str | None:
        now = t.finished_at or t.started_at or 0.0
        expected = s.performance.expected_time
        found = [a for a in s.agents.values() if a.spec.agent_id not in excluded and able(a, task_type)]
        if found:
            chosen = min(found, key=lambda a: (a.free <= 0, expected(a.spec.agent_id, task_type, now), a.order))
            return chosen.spec.agent_id
        route = Route(task_type, None, skills)
        peers = [p for p in s.peers.values() if p.agent_id not in excluded and rejection(p, route) is None]
        if not peers:
            return None
        return min(peers, key=lambda p: (expected(p.agent_id, task_type, now), p.agent_id)).agent_id

    def can_run(agent_id: str, run_as: str | None) -> bool:
        task_type = run_as or t.task.task_type
        agent = s.agents.get(agent_id)
        if agent is not None:
            return able(agent, task_type)
        peer = s.peers.get(agent_id)
        return peer is not None and rejection(peer, Route(task_type, None, skills)) is None

    return Options(lambda excluded: best(own_type, excluded), can_run, best, t.placement or t.task.agent)


def fail_attempt(s: EngineState, t: LiveTask, error: TaskError | None, turn: Turn) -> None:
    """An attempt of ``t`` failed: its recovery policy decides what happens next."""
    t.failures += 1
    t.error, t.owner = error, None
    err = error or _UNKNOWN
    seed = f"{t.task.task_id}:{t.attempts}"
    decision = decide(policy_for(s, t), t.recovery, err.names, t.agent_id, seed, options(s, t))
    carry_out(s, t, decision, err, turn, outlived=True)


def _record(t: LiveTask, decision: Decision, err: TaskError, detail: str, turn: Turn) -> None:
    """The decision goes to the task's error history, and to whoever asked for it, in the same words."""
    task_id, cause = t.task.task_id, turn.cause
    turn.actions += (
        ev.RecordError(task_id, t.attempts, t.agent_id, t.recovery.run_as or t.task.task_type, turn.at, err,
                       decision.strategy, decision.action, detail, cause),
        ev.Decided(task_id, decision.action, decision.strategy, detail, cause),
    )  # fmt: skip


def carry_out(s: EngineState, t: LiveTask, decision: Decision, err: TaskError, turn: Turn, *, outlived: bool) -> None:
    """Act on ``decision``; ``outlived``: the attempt that just ended goes to the attempt history."""
    task_id, at = t.task.task_id, turn.at
    t.recovery = decision.state
    action = decision.action
    _record(t, decision, err, decision.message, turn)
    if action in _RERUN:
        target = PARKED if action == "dead_letter" else PENDING
        if t.state is not target:
            move(t, target)
        if outlived:
            turn.actions.append(attempt_record(t, turn, "retry", err))
        t.owner, t.finished_at, t.qseq, t.ready_at = None, None, 0, at
        t.next_attempt_at = at + decision.delay if decision.delay > 0 else None
        if decision.agent is not None:
            t.placement, t.route = decision.agent, None
            t.recovery = replace(t.recovery, moved_to=decision.agent)
        if decision.penalize is not None:  # the failed agent takes the failure twice in its score
            s.performance.record(decision.penalize, t.task.task_type, False, None, at)
        if action == "dead_letter":
            t.parked_at, t.reason, t.next_attempt_at = at, f"parked in the dead-letter queue: {err}", None
            save_and_settle(task_id, turn)  # whoever waits for it learns it is parked
            return
        t.parked_at, t.reason, t.outcome = None, None, None
        turn.actions.append(ev.Save(task_id, turn.cause))
        offer(s, t, turn)
        return
    if action == "skip":
        move(t, COMPLETED)
        t.result = t.result_json = None
        t.owner, t.finished_at, t.parked_at, t.qseq = None, at, None, 0
        t.reason, t.outcome = f"{SKIPPED}{decision.message} after {err}", TaskOutcome.SKIPPED
        save_and_settle(task_id, turn)
        s.finished.append(task_id)
        release(s, t, turn)
        return
    was = t.state
    if t.state is not FAILED:  # abort, or the policy is exhausted (by hand: it may have failed already)
        move(t, FAILED)
    t.owner, t.finished_at, t.parked_at, t.qseq = None, at, None, 0
    aborted = action == "abort"
    t.reason, t.outcome = (f"{ABORTED}{err}", TaskOutcome.ABORTED) if aborted else (None, None)
    save_and_settle(task_id, turn)
    s.finished.append(task_id)
    cascade_once_stored(s, t, was)


# -- by hand ----------------------------------------------------------------------------------


def on_error_handled(s: EngineState, e: ev.ErrorHandled) -> list[ev.Action]:
    """Apply ``e.policy`` to a task by hand (the service has checked the task may be handled).

    A running attempt of this worker ends failed, then the policy decides; a failed or parked task is
    decided on again; a task that has not run yet (pending or blocked) is decided on as if it had
    failed, so a retry leaves it waiting (a blocked one for its dependencies, whatever would re-run it).
    A dead letter of a blocked task is refused (``ConflictError``, nothing changed): it has no failed attempt
    to park, and a parked task must not lose track of its dependencies.
    A failed task that no longer is (skipped, run again, parked) takes back the dependents its failure
    cancelled. Each call is one step of ``e.policy``, counted across calls with the same policy (kept in
    ``RecoveryState.by_hand``): ``retry(3)`` applied by hand four times retries three times, then the rest
    of the chain decides (or the task fails). Another policy starts from its beginning; a replay forgets.
    """
    t = s.tasks.get(e.task_id)
    if t is None or t.state in (COMPLETED, CANCELLED):
        return []
    if t.state is BLOCKED:  # decided before anything changes: a refusal leaves the task as it was
        ahead = decide(e.policy, t.recovery.by_hand_progress(e.policy), e.error.names, t.agent_id,
                       f"{e.task_id}:{t.attempts}:by-hand", options(s, t))  # fmt: skip
        if ahead.action == "dead_letter":
            deps = ", ".join(repr(d) for d in t.task.dependencies[:3]) + (
                ", ..." if len(t.task.dependencies) > 3 else ""
            )
            raise ConflictError(
                f"task {e.task_id!r} has not run yet: it waits for its dependencies ({deps}), so there is no "
                f"failed attempt to park; "
                f"cancel it to stop it from running, skip or abort it, or handle its error once it has run"
            )
    turn = Turn(e.at, e.cause)
    outlived, was_failed = t.state in (IN_PROGRESS, FAILED), t.state is FAILED
    if t.state is IN_PROGRESS:
        if t.owner != s.worker_id:
            return []
        abort(s, t, f"handled by hand: {e.error}", turn)
        t.failures += 1
        if t.agent_id is not None:  # the attempt ended failed: its agent's record says so
            s.performance.record(t.agent_id, t.task.task_type, False, None, e.at)
    t.error = e.error
    seed = f"{e.task_id}:{t.attempts}:by-hand"
    decision = decide(e.policy, t.recovery.by_hand_progress(e.policy), e.error.names, t.agent_id, seed, options(s, t))
    done = decision.state
    hand = (str(e.policy), done.stage, done.used)  # the next call with this policy goes on from here
    if t.state is BLOCKED and decision.action in _RERUN:
        _keep_waiting(t, decision, e.policy, e.error, turn)
        t.recovery = replace(t.recovery, by_hand=hand)
        return turn.actions
    carry_out(s, t, decision, e.error, turn, outlived=outlived)
    if decision.action in ("retry", "reassign", "fallback"):  # the task's own policy starts again
        t.recovery = RecoveryState(failed_agents=done.failed_agents, run_as=done.run_as, moved_to=t.recovery.moved_to)
    t.recovery = replace(t.recovery, by_hand=hand)
    if was_failed and t.state is not FAILED:  # recovered: what its failure cancelled waits for it again
        restore_dependents(s, t, turn)
    refill(s, turn)
    return turn.actions


def _keep_waiting(t: LiveTask, decision: Decision, policy: Policy, err: TaskError, turn: Turn) -> None:
    """Record a decision about a blocked task that would run it again: it has not run yet, so it keeps
    waiting for its dependencies (on the agent a reassign or fallback chose, if one did); what is recorded and
    returned says so."""
    waits = "it has not run yet, so it keeps waiting for its dependencies"
    retry = policy.strategies[decision.state.stage]
    if isinstance(retry, Retry):  # nothing to run again, and no delay: it runs once they have completed
        counted = f"{decision.state.used} of {retry.max_attempts}"
        detail = f"not retried, though counted as retry {counted}: {waits} and runs once they have completed"
    else:
        detail = f"{decision.message}; {waits}"
    _record(t, decision, err, detail, turn)
    if decision.agent is not None:
        t.placement, t.route = decision.agent, None
        t.recovery = replace(t.recovery, moved_to=decision.agent, run_as=decision.state.run_as)
    turn.actions.append(ev.Save(t.task.task_id, turn.cause))


def on_replayed(s: EngineState, e: ev.Replayed) -> list[ev.Action]:
    """Run a parked or failed task again, from the start of its policy."""
    t = s.tasks.get(e.task_id)
    if t is None or t.state not in (FAILED, PARKED):
        return []
    turn = Turn(e.at, e.cause)
    was_failed = t.state is FAILED
    if was_failed:
        turn.actions.append(attempt_record(t, turn, "retry", t.error))
    move(t, PENDING)
    t.recovery, t.parked_at, t.reason, t.finished_at, t.next_attempt_at = NO_RECOVERY, None, None, None, None
    t.outcome = None
    t.ready_at, t.qseq = e.at, 0
    if e.agent_id is not None:
        t.placement, t.route = e.agent_id, None
    turn.actions.append(ev.Save(e.task_id, e.cause))
    offer(s, t, turn)
    if was_failed:  # what its failure cancelled waits for it again
        restore_dependents(s, t, turn)
    return turn.actions


def on_dropped(s: EngineState, e: ev.Dropped) -> list[ev.Action]:
    """Give up a parked task: it fails and its dependents are cancelled."""
    t = s.tasks.get(e.task_id)
    if t is None or t.state is not PARKED:
        return []
    turn = Turn(e.at, e.cause)
    move(t, FAILED)
    t.parked_at, t.reason, t.finished_at, t.qseq = None, e.reason, e.at, 0
    save_and_settle(e.task_id, turn)
    s.finished.append(e.task_id)
    cascade_once_stored(s, t, PARKED)
    refill(s, turn)
    return turn.actions
