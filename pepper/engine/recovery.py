"""What a failure leads to: the task's recovery policy decides (``model.recovery``), these moves act.

Every failed attempt - an agent that raised, timed out, went over its memory cap
or whose process died - comes here, and so does ``ErrorHandler.handle_error``:
one path. Each decision is recorded in the task's error history. A task the
policy dead-letters moves to ``parked`` and waits for a person (replay, drop or
cancel). Pure, like the state machine it belongs to.
"""

from __future__ import annotations

from dataclasses import replace

from pepper.engine.live import LiveTask
from pepper.engine.transitions import BLOCKED, COMPLETED, FAILED, IN_PROGRESS, PARKED, PENDING, Transitions
from pepper.errors import ConflictError
from pepper.model import events as ev
from pepper.model.agent import AgentSpec
from pepper.model.record import TaskRecord
from pepper.model.recovery import (
    ABORTED,
    NO_RECOVERY,
    Decision,
    Options,
    Policy,
    RecoveryOutcome,
    RecoveryState,
    decide,
    default_policy,
)
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from pepper.model.workflow_run import SKIPPED
from pepper.scheduling.eligibility import Route, rejection
from pepper.scheduling.load import AgentLoad


def check_handleable(t: LiveTask | TaskRecord, worker_id: str) -> None:
    """Refuse to handle an error of a task that has nothing left to recover (``ConflictError``)."""
    task_id, state = t.task.task_id, t.state
    if state is COMPLETED:
        raise ConflictError(f"task {task_id!r} has already completed; there is no error to handle")
    if state is TaskState.CANCELLED:
        raise ConflictError(f"task {task_id!r} was cancelled; submit it again under a new id to run it")
    if state is IN_PROGRESS and t.owner != worker_id:
        raise ConflictError(
            f"task {task_id!r} is running on another worker ({t.owner}); handle its error there, or cancel it"
        )


def outcome_of(t: LiveTask, decision: Decision | None) -> RecoveryOutcome:
    """What handling an error of ``t`` led to."""
    if decision is None:
        raise ConflictError(f"task {t.task.task_id!r} changed meanwhile; nothing was decided, try again")
    return RecoveryOutcome(t.task.task_id, decision.action, decision.strategy, decision.message, t.state.value,
                           t.next_attempt_at, t.placement, t.state is PARKED)  # fmt: skip


_UNKNOWN = TaskError("Error", "the attempt failed without saying why")
#: Decisions that would run a task again (or park it): a blocked task keeps waiting for its dependencies instead.
_RERUN = ("retry", "reassign", "fallback", "dead_letter")


class Recovery(Transitions):
    """Failure handling: decide with the task's policy, then retry, move, skip, park or fail it."""

    default_recovery: Policy | None
    last_decision: Decision | None
    peers: dict[str, AgentSpec]

    def _policy_for(self, t: LiveTask) -> Policy:
        """The task's own policy, else its agent's, else the runtime's, else ``retry(max_retries)``."""
        if t.task.policy is not None:
            return t.task.policy
        agent = self.agents.get(t.agent_id) if t.agent_id is not None else None
        if agent is not None and agent.spec.recovery is not None:
            return agent.spec.recovery
        return self.default_recovery or default_policy(t.task.max_retries, self._backoff)

    def _options(self, t: LiveTask) -> Options:
        """Who else could run ``t``: an agent here, best first by expected time (then load and age); else one
        of another worker's (the task is then placed on it, and that worker runs it)."""
        skills = t.task.requirements.skills
        own_type = t.recovery.run_as or t.task.task_type

        def able(agent: AgentLoad, task_type: str) -> bool:
            return agent.accepting and rejection(agent.spec, Route(task_type, None, skills)) is None

        def best(task_type: str, excluded: frozenset[str] = frozenset()) -> str | None:
            now = t.finished_at or t.started_at or 0.0
            expected = self.performance.expected_time
            found = [a for a in self.agents.values() if a.spec.agent_id not in excluded and able(a, task_type)]
            if found:
                chosen = min(found, key=lambda a: (a.free <= 0, expected(a.spec.agent_id, task_type, now), a.order))
                return chosen.spec.agent_id
            route = Route(task_type, None, skills)
            peers = [p for p in self.peers.values() if p.agent_id not in excluded and rejection(p, route) is None]
            if not peers:
                return None
            return min(peers, key=lambda p: (expected(p.agent_id, task_type, now), p.agent_id)).agent_id

        def can_run(agent_id: str, run_as: str | None) -> bool:
            task_type = run_as or t.task.task_type
            agent = self.agents.get(agent_id)
            if agent is not None:
                return able(agent, task_type)
            peer = self.peers.get(agent_id)
            return peer is not None and rejection(peer, Route(task_type, None, skills)) is None

        return Options(lambda excluded: best(own_type, excluded), can_run, best)

    def _fail_attempt(
        self, t: LiveTask, error: TaskError | None, actions: list[ev.Action], at: float, freed: list[AgentLoad]
    ) -> None:
        """An attempt of ``t`` failed: its recovery policy decides what happens next."""
        t.failures += 1
        t.error, t.owner = error, None
        err = error or _UNKNOWN
        seed = f"{t.task.task_id}:{t.attempts}"
        decision = decide(self._policy_for(t), t.recovery, err.type, t.agent_id, seed, self._options(t))
        self._carry_out(t, decision, err, actions, at, freed, outlived=True)

    def _carry_out(
        self,
        t: LiveTask,
        decision: Decision,
        err: TaskError,
        actions: list[ev.Action],
        at: float,
        freed: list[AgentLoad],
        *,
        outlived: bool,
    ) -> None:
        """Act on ``decision``; ``outlived``: the attempt that just ended goes to the attempt history."""
        task_id = t.task.task_id
        self.last_decision = decision
        t.recovery = decision.state
        action = decision.action
        actions.append(ev.RecordError(task_id, t.attempts, t.agent_id, t.recovery.run_as or t.task.task_type, at,
                                      err, decision.strategy, action, decision.message))  # fmt: skip
        if action in ("retry", "reassign", "fallback", "dead_letter"):
            target = PARKED if action == "dead_letter" else PENDING
            if t.state is not target:
                self._move(t, target)
            if outlived:
                actions.append(self._attempt(t, at, "retry", err))
            t.owner, t.finished_at, t.qseq, t.ready_at = None, None, 0, at
            t.next_attempt_at = at + decision.delay if decision.delay > 0 else None
            if decision.agent is not None:
                t.placement, t.route = decision.agent, None
                t.recovery = replace(t.recovery, moved_to=decision.agent)
            if decision.penalize is not None:  # the failed agent takes the failure twice in its score
                self.performance.record(decision.penalize, t.task.task_type, False, None, at)
            if action == "dead_letter":
                t.parked_at, t.reason, t.next_attempt_at = at, f"parked in the dead-letter queue: {err}", None
                actions += (ev.Save(task_id), ev.Settled(task_id))  # whoever waits for it learns it is parked
                return
            t.parked_at, t.reason = None, None
            actions.append(ev.Save(task_id))
            self._offer(t, actions, at)
            return
        if action == "skip":
            self._move(t, COMPLETED)
            t.result = t.result_json = None
            t.owner, t.finished_at, t.parked_at, t.qseq = None, at, None, 0
            t.reason = f"{SKIPPED}{decision.message} after {err}"
            actions += (ev.Save(task_id), ev.Settled(task_id))
            self._finished.append(task_id)
            self._release(t, actions, at)
            return
        if t.state is not FAILED:  # abort, or the policy is exhausted (by hand: it may have failed already)
            self._move(t, FAILED)
        t.owner, t.finished_at, t.parked_at, t.qseq = None, at, None, 0
        t.reason = f"{ABORTED}{err}" if action == "abort" else None
        actions += (ev.Save(task_id), ev.Settled(task_id))
        self._finished.append(task_id)
        self._cascade(t, actions, at, freed)

    # -- by hand ----------------------------------------------------------------------------------

    def _on_error_handled(self, e: ev.ErrorHandled) -> list[ev.Action]:
        """Apply ``e.policy`` to a task by hand (the service has checked the task may be handled).

        A running attempt of this worker ends failed, then the policy decides; a failed or parked task is
        decided on again; a task that has not run yet (pending or blocked) is decided on as if it had
        failed, so a retry leaves it waiting (a blocked one for its dependencies, whatever would re-run it).
        """
        t = self.tasks.get(e.task_id)
        if t is None or t.state in (COMPLETED, TaskState.CANCELLED):
            return []
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        outlived = t.state in (IN_PROGRESS, FAILED)
        if t.state is IN_PROGRESS:
            if t.owner != self.worker_id:
                return []
            actions.append(ev.Abort(e.task_id, t.attempts, f"handled by hand: {e.error}"))
            self._free_slot(t, freed, actions)
            t.failures += 1
            if t.agent_id is not None:  # the attempt ended failed: its agent's record says so
                self.performance.record(t.agent_id, t.task.task_type, False, None, e.at)
        t.error = e.error
        fresh = RecoveryState(failed_agents=t.recovery.failed_agents, run_as=t.recovery.run_as)
        seed = f"{e.task_id}:{t.attempts}:by-hand"
        decision = decide(e.policy, fresh, e.error.type, t.agent_id, seed, self._options(t))
        if t.state is BLOCKED and decision.action in _RERUN:
            self._keep_waiting(t, decision, e.error, actions, e.at)
            return actions
        self._carry_out(t, decision, e.error, actions, e.at, freed, outlived=outlived)
        if decision.action in ("retry", "reassign", "fallback"):  # the task's own policy starts again
            t.recovery = RecoveryState(failed_agents=decision.state.failed_agents, run_as=decision.state.run_as)
        self._refill(freed, actions, e.at)
        return actions

    def _keep_waiting(
        self, t: LiveTask, decision: Decision, err: TaskError, actions: list[ev.Action], at: float
    ) -> None:
        """Record a decision about a blocked task that would run it again: it has not run yet, so it keeps
        waiting for its dependencies (on the agent a reassign or fallback chose, if one did)."""
        task_id = t.task.task_id
        self.last_decision = decision
        detail = f"{decision.message}; it has not run yet, so it keeps waiting for its dependencies"
        if decision.action == "dead_letter":
            detail = "not parked: it has not run yet, so it keeps waiting for its dependencies"
        actions.append(ev.RecordError(task_id, t.attempts, t.agent_id, t.recovery.run_as or t.task.task_type, at,
                                      err, decision.strategy, decision.action, detail))  # fmt: skip
        if decision.agent is not None:
            t.placement, t.route = decision.agent, None
            t.recovery = replace(t.recovery, moved_to=decision.agent, run_as=decision.state.run_as)
        actions.append(ev.Save(task_id))

    def _on_replayed(self, e: ev.Replayed) -> list[ev.Action]:
        """Run a parked or failed task again, from the start of its policy."""
        t = self.tasks.get(e.task_id)
        if t is None or t.state not in (FAILED, PARKED):
            return []
        actions: list[ev.Action] = []
        if t.state is FAILED:
            actions.append(self._attempt(t, e.at, "retry", t.error))
        self._move(t, PENDING)
        t.recovery, t.parked_at, t.reason, t.finished_at, t.next_attempt_at = NO_RECOVERY, None, None, None, None
        t.ready_at, t.qseq = e.at, 0
        if e.agent_id is not None:
            t.placement, t.route = e.agent_id, None
        actions.append(ev.Save(e.task_id))
        self._offer(t, actions, e.at)
        return actions

    def _on_dropped(self, e: ev.Dropped) -> list[ev.Action]:
        """Give up a parked task: it fails and its dependents are cancelled."""
        t = self.tasks.get(e.task_id)
        if t is None or t.state is not PARKED:
            return []
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        self._move(t, FAILED)
        t.parked_at, t.reason, t.finished_at, t.qseq = None, e.reason, e.at, 0
        actions += (ev.Save(e.task_id), ev.Settled(e.task_id))
        self._finished.append(e.task_id)
        self._cascade(t, actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions
