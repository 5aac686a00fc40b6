"""Recovery policies: what happens when an attempt fails, as a chain of strategies.

A policy such as ``retry(3) -> reassign -> dead_letter`` is tried in order. A
strategy that has done all it may (its retries are used up, no other agent is
left) or that does not apply to the error hands over to the next one; when the
chain is exhausted the task fails. The strategies:

===============  ==============================================================
``retry``        run it again after a backoff: ``max_attempts`` times (at most
                 1000), delay ``delay * multiplier**(n-1)`` capped at
                 ``max_delay`` (a longer ``delay`` is kept; both at most 366
                 days), less up to ``jitter`` of it; ``retry_on`` /
                 ``never_retry`` list error types (exception class names, an
                 error's own or one it inherits from) it applies to / skips
``reassign``     run it again on another eligible agent, never one that already
                 failed it (``max_times``; ``penalize`` counts the failure
                 against the failed agent's score twice); a task no agent
                 failed yet moves off the agent it is pinned to, or needs two
                 eligible agents (the only one is no other)
``fallback``     run it on a named ``agent``, or as another ``task_type``
``skip``         mark it completed with no result; its dependents run and are
                 told it was skipped
``abort``        fail it and cancel the rest of its workflow run
``dead_letter``  park it for a person (``pepper dlq``), who can replay or drop it
===============  ==============================================================

Without a policy a task uses its agent's, else the runtime's default, else
``retry(max_retries)`` with the runtime's backoff settings. Decisions are pure:
``decide`` gets the failure, the task's progress through its policy and what
the scheduler knows about other agents, and returns what to do.

The strategies and the policy grammar live in ``recovery_policy``, a task's error history in
``recovery_history``; every name is importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pepper.model.recovery_history import ErrorRecord, RecoveryOutcome
from pepper.model.recovery_policy import (
    ABORTED,
    ACTIONS,
    Abort,
    DeadLetter,
    Fallback,
    Policy,
    Reassign,
    Retry,
    Skip,
    Strategy,
    default_policy,
)

__all__ = [
    "ABORTED",
    "ACTIONS",
    "NO_RECOVERY",
    "Abort",
    "DeadLetter",
    "Decision",
    "ErrorRecord",
    "Fallback",
    "Options",
    "Policy",
    "Reassign",
    "RecoveryOutcome",
    "RecoveryState",
    "Retry",
    "Skip",
    "Strategy",
    "decide",
    "default_policy",
]


# -- a task's progress through its policy --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryState:
    """Where a task stands in its policy: the strategy in use, how often it acted, who failed it."""

    stage: int = 0
    used: int = 0
    failed_agents: tuple[str, ...] = ()
    run_as: str | None = None  # a fallback task type
    moved_to: str | None = None  # the agent reassign or fallback placed it on (lifted if that agent goes away)
    #: A policy applied by hand (``handle_error``) and the task's progress through it: (policy, stage, used).
    by_hand: tuple[str, int, int] | None = None

    def to_data(self) -> dict[str, Any] | None:
        if self == NO_RECOVERY:
            return None
        data = {"stage": self.stage, "used": self.used, "failed_agents": list(self.failed_agents),
                "run_as": self.run_as, "moved_to": self.moved_to}  # fmt: skip
        if self.by_hand is not None:
            data["by_hand"] = list(self.by_hand)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> RecoveryState:
        if not data:
            return NO_RECOVERY
        hand = data.get("by_hand")
        by_hand = None if not hand else (str(hand[0]), int(hand[1]), int(hand[2]))
        return cls(data.get("stage", 0), data.get("used", 0), tuple(data.get("failed_agents", ())), data.get("run_as"),
                   data.get("moved_to"), by_hand)  # fmt: skip

    def by_hand_progress(self, policy: Policy) -> RecoveryState:
        """Where the task stands in ``policy`` applied by hand: the progress of earlier calls with the same
        policy, else its start (the agents that failed it and a fallback task type carry over)."""
        stage, used = 0, 0
        if self.by_hand is not None and self.by_hand[0] == str(policy):
            stage, used = self.by_hand[1], self.by_hand[2]
        return RecoveryState(stage, used, self.failed_agents, self.run_as)


NO_RECOVERY = RecoveryState()


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about a failure, and the task's new progress through its policy."""

    action: str  # one of ACTIONS
    state: RecoveryState
    strategy: str = ""  # the strategy that decided ("" when the chain was exhausted)
    delay: float = 0.0  # retry: seconds until the next attempt
    agent: str | None = None  # reassign / fallback: the agent to run on
    penalize: str | None = None  # reassign: the agent whose score takes an extra failure
    message: str = ""

    def to_data(self) -> dict[str, Any]:
        return {"action": self.action, "strategy": self.strategy, "delay": self.delay, "agent": self.agent,
                "message": self.message}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Options:
    """What the scheduler knows when deciding: who else could run the task."""

    #: The best eligible agent not in the given ids, or None.
    other_agent: Callable[[frozenset[str]], str | None] = lambda excluded: None
    #: Whether this agent exists and could run the task (as the given task type).
    can_run: Callable[[str, str | None], bool] = lambda agent, task_type: False
    #: The best agent accepting this task type, or None.
    agent_for_type: Callable[[str], str | None] = lambda task_type: None
    #: The agent the task is placed on (pinned), if any: a reassign moves it to another.
    placed_on: str | None = None


def decide(
    policy: Policy,
    state: RecoveryState,
    error_type: str | Sequence[str],
    agent_id: str | None,
    seed: str,
    options: Options,
) -> Decision:
    """What ``policy`` does about a failure of type ``error_type`` on ``agent_id``: a class name, or the names
    of the error's classes (``TaskError.names``), any of which ``retry_on`` / ``never_retry`` match.

    ``seed`` (the task id and attempt) makes retry jitter reproducible.
    """
    failed = state.failed_agents
    if agent_id is not None and agent_id not in failed:
        failed = (*failed, agent_id)
    stage, used = state.stage, state.used
    why: list[str] = []
    while stage < len(policy.strategies):
        strategy = policy.strategies[stage]
        here = replace(state, stage=stage, used=used, failed_agents=failed)
        decision = _try(strategy, here, error_type, agent_id, seed, options, why)
        if decision is not None:
            return decision
        stage, used = stage + 1, 0
    end = replace(state, stage=stage, used=0, failed_agents=failed)
    because = f" ({'; '.join(why)})" if why else ""
    return Decision("fail", end, message=f"its recovery policy ({policy}) is exhausted{because}")


def _try(
    strategy: Strategy,
    state: RecoveryState,
    error_type: str | Sequence[str],
    agent_id: str | None,
    seed: str,
    options: Options,
    why: list[str],
) -> Decision | None:
    """What ``strategy`` does, or None when it hands over to the next one (a reassign adds why to ``why``)."""
    name = str(strategy)
    nxt = replace(state, used=state.used + 1)
    if isinstance(strategy, Retry):
        if state.used >= strategy.max_attempts or not strategy.applies_to(error_type):
            return None
        delay = strategy.backoff.delay_for(state.used + 1, seed)
        return Decision("retry", nxt, name, delay=delay,
                        message=f"retry {state.used + 1} of {strategy.max_attempts} in {delay:.2f}s")  # fmt: skip
    if isinstance(strategy, Reassign):
        if strategy.max_times is not None and state.used >= strategy.max_times:
            return None
        placed = options.placed_on
        excluded = frozenset(state.failed_agents) | ({placed} if placed is not None else set())
        other = options.other_agent(excluded)
        # A task no agent has failed, placed on none, would run on an eligible agent anyway: the only one is
        # no other agent.
        if other is None or (not excluded and options.other_agent(frozenset({other})) is None):
            shown = ", ".join(repr(a) for a in sorted(excluded | ({other} if other is not None else set())))
            why.append(f"{name}: no eligible agent other than {shown}")
            return None
        if state.failed_agents:
            message = f"moved to agent {other!r} (failed on {', '.join(state.failed_agents)})"
        elif placed is not None:
            message = f"moved to agent {other!r} from agent {placed!r} (it has not failed on any yet)"
        else:
            message = f"placed on agent {other!r}, one of the eligible agents (it has not failed on any yet)"
        return Decision("reassign", nxt, name, agent=other, penalize=agent_id if strategy.penalize else None,
                        message=message)  # fmt: skip
    if isinstance(strategy, Fallback):
        if state.used >= 1:
            return None
        if strategy.agent is not None:
            if not options.can_run(strategy.agent, state.run_as):
                return None
            return Decision("fallback", nxt, name, agent=strategy.agent,
                            message=f"falls back to agent {strategy.agent!r}")  # fmt: skip
        task_type = strategy.task_type
        assert task_type is not None
        agent = options.agent_for_type(task_type)
        if agent is None:
            return None
        return Decision("fallback", replace(nxt, run_as=task_type), name, agent=agent,
                        message=f"runs as a {task_type!r} task on agent {agent!r}")  # fmt: skip
    if isinstance(strategy, Skip):
        return Decision("skip", nxt, name, message="skipped by its recovery policy")
    if isinstance(strategy, Abort):
        return Decision("abort", nxt, name, message="aborted by its recovery policy")
    if isinstance(strategy, DeadLetter):
        return Decision("dead_letter", nxt, name, message="parked in the dead-letter queue")
    raise AssertionError(f"unknown strategy {strategy!r}")
