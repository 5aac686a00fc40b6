"""Why a task is not running: every blocker, in words a person can act on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pepper.errors import ValidationError
from pepper.model.agent import AgentSpec
from pepper.model.recovery import Policy, RecoveryState, Retry
from pepper.model.resources import describe_shortfall
from pepper.model.status import TaskError, WaitReason
from pepper.model.task import Task, TaskState
from pepper.model.timing import iso_utc
from pepper.model.units import format_duration
from pepper.scheduling.eligibility import Route, rejection


@dataclass(frozen=True, slots=True)
class WaitFacts:
    """Everything ``explain`` looks at, gathered by whoever holds the state."""

    task: Task
    state: TaskState
    now: float
    dependency_states: Mapping[str, TaskState | None] = field(default_factory=dict)
    #: Every registered agent with the number of tasks it is running.
    agents: Sequence[tuple[AgentSpec, int]] = ()
    #: Why an agent takes no tasks at the moment (e.g. it waits for its budget).
    agent_notes: Mapping[str, str] = field(default_factory=dict)
    #: Ready tasks that will be served before this one by the same agents.
    ahead: int = 0
    next_attempt_at: float | None = None
    failures: int = 0
    #: The retry waited for and how many its recovery policy's ``retry`` allows, when known.
    retry_of: tuple[int, int] | None = None
    last_error: TaskError | None = None
    accepting: bool = True
    #: The agent the task must run on (its own ``agent``, or where a workload plan placed it).
    pinned: str | None = None
    #: What the task's resources lack on the best candidate agent, and where from.
    resources_short: Mapping[str, float] = field(default_factory=dict)
    resources_where: str | None = None
    #: When its recovery policy parked it in the dead-letter queue.
    parked_at: float | None = None
    #: Dependencies parked in the dead-letter queue (they wait for a person, not for an agent).
    parked_dependencies: frozenset[str] = frozenset()


def explain(facts: WaitFacts) -> tuple[WaitReason, ...]:
    """The reasons ``facts.task`` is waiting; empty when it is running or finished."""
    delayed = facts.task.not_before is not None and facts.task.not_before > facts.now
    if facts.state is TaskState.BLOCKED:
        return (*_dependency_reasons(facts), *((_delay_reason(facts),) if delayed else ()))
    if facts.state is TaskState.PARKED:
        last = f" (last error: {facts.last_error})" if facts.last_error else ""
        return (
            WaitReason(
                "dead_letter",
                f"parked in the dead-letter queue after {facts.failures} failed attempt"
                f"{'s' if facts.failures != 1 else ''}{last}; `pepper dlq replay {facts.task.task_id}` runs it again",
                details={"parked_at": facts.parked_at, "failures": facts.failures},
            ),
        )
    if facts.state is not TaskState.PENDING:
        return ()
    if delayed:
        return (_delay_reason(facts),)
    if facts.next_attempt_at is not None and facts.next_attempt_at > facts.now:
        return (_retry_reason(facts),)
    reasons = _agent_reasons(facts)
    if facts.resources_short:
        where = facts.resources_where or "the pool"
        reasons.append(
            WaitReason(
                "resources",
                f"needs more resources than are free: {describe_shortfall(facts.resources_short)} in {where}",
                details={"short": dict(facts.resources_short), "where": where},
            )
        )
    if not facts.accepting:
        reasons.append(
            WaitReason("shutting_down", "this runtime is shutting down; the task runs when a worker picks it up")
        )
    if facts.ahead:
        plural = "s" if facts.ahead != 1 else ""
        reasons.append(
            WaitReason(
                "queue",
                f"{facts.ahead} task{plural} of higher or equal priority ahead of it",
                details={"ahead": facts.ahead},
            )
        )
    return tuple(reasons)


def _dependency_reasons(facts: WaitFacts) -> list[WaitReason]:
    reasons = []
    for dep in facts.task.dependencies:
        state = facts.dependency_states.get(dep)
        if state is TaskState.COMPLETED:
            continue
        if state is None:
            reasons.append(
                WaitReason("dependency_missing", f"dependency {dep!r} has not been submitted yet", subject=dep)
            )
        else:
            parked = state is TaskState.PARKED or dep in facts.parked_dependencies
            how = "parked in the dead-letter queue: `pepper dlq`" if parked else state.value
            reasons.append(
                WaitReason(
                    "dependency",
                    f"waiting for dependency {dep!r} ({how})",
                    subject=dep,
                    details={"state": state.value},
                )
            )
    return reasons


def _delay_reason(facts: WaitFacts) -> WaitReason:
    at = facts.task.not_before or 0.0
    return WaitReason(
        "delay",
        f"delayed until {iso_utc(at)} (in {format_duration(at - facts.now)})",
        details={"not_before": at},
    )


def _retry_reason(facts: WaitFacts) -> WaitReason:
    wait = format_duration(facts.next_attempt_at - facts.now)  # type: ignore[operator]
    cause = f" after {facts.last_error}" if facts.last_error else ""
    details: dict[str, object] = {"next_attempt_at": facts.next_attempt_at, "failures": facts.failures}
    if facts.retry_of is not None:
        retry, of = facts.retry_of
        details |= {"retry": retry, "retries": of}
        return WaitReason("retry", f"retry {retry} of {of} starts in {wait}{cause}", details=details)
    plural = "s" if facts.failures != 1 else ""
    return WaitReason(
        "retry", f"the next attempt starts in {wait}, after {facts.failures} failed attempt{plural}{cause}",
        details=details,
    )  # fmt: skip


def retry_of(recovery: RecoveryState, policy: Policy | None) -> tuple[int, int] | None:
    """The retry a task in ``recovery`` waits for and how many its ``retry`` allows: from ``policy`` (the one the
    task follows), else from a policy applied by hand; None when neither says."""
    if policy is not None and recovery.used >= 1 and recovery.stage < len(policy.strategies):
        strategy = policy.strategies[recovery.stage]
        if isinstance(strategy, Retry):
            return recovery.used, strategy.max_attempts
    if recovery.by_hand is not None and not recovery.used:
        text, stage, used = recovery.by_hand
        try:
            strategies = Policy.parse(text).strategies
        except ValidationError:  # a policy stored by an older pepper that no longer reads
            return None
        if used >= 1 and stage < len(strategies) and isinstance(strategies[stage], Retry):
            return used, strategies[stage].max_attempts  # type: ignore[attr-defined]
    return None


def _agent_reasons(facts: WaitFacts) -> list[WaitReason]:
    task = facts.task
    pinned = facts.pinned or task.agent
    route = Route(task.task_type, pinned, task.requirements.skills)
    if pinned is not None and all(spec.agent_id != pinned for spec, _ in facts.agents):
        return [
            WaitReason(
                "agent_missing",
                f"pinned agent {pinned!r} is not registered (a worker may register it later)",
                subject=pinned,
            )
        ]
    if pinned is not None:  # only that agent may take it: say what stops it, if anything does
        spec = next(spec for spec, _ in facts.agents if spec.agent_id == pinned)
        why = rejection(spec, route)
        if why is not None:
            return [WaitReason("no_eligible_agent", f"it is pinned to agent {pinned!r}, which {why}", subject=pinned)]
    takers = [(spec, running) for spec, running in facts.agents if spec.accepts(task.task_type)]
    if not takers:
        return [
            WaitReason(
                "no_agent",
                f"no registered agent accepts task type {task.task_type!r} (a worker may register one later)",
                subject=task.task_type,
            )
        ]
    usable = [(spec, running) for spec, running in takers if rejection(spec, route) is None]
    if not usable:
        return [
            WaitReason("no_eligible_agent", f"agent {spec.agent_id!r} {rejection(spec, route)}", subject=spec.agent_id)
            for spec, _ in takers
        ]
    waiting = [spec for spec, _ in usable if spec.agent_id in facts.agent_notes]
    if len(waiting) == len(usable):
        return [
            WaitReason(
                "agent_waiting", f"agent {spec.agent_id!r} {facts.agent_notes[spec.agent_id]}", subject=spec.agent_id
            )
            for spec in waiting
        ]
    busy = [(spec, running) for spec, running in usable if running >= spec.capacity]
    if len(busy) < len(usable):
        return []
    return [
        WaitReason(
            "capacity",
            f"agent {spec.agent_id!r} at capacity {running}/{spec.capacity}",
            subject=spec.agent_id,
            details={"running": running, "capacity": spec.capacity},
        )
        for spec, running in busy
    ]
