"""Recovery policies: what happens when an attempt fails, as a chain of strategies.

A policy such as ``retry(3) -> reassign -> dead_letter`` is tried in order. A
strategy that has done all it may (its retries are used up, no other agent is
left) or that does not apply to the error hands over to the next one; when the
chain is exhausted the task fails. The strategies:

===============  ==============================================================
``retry``        run it again after a backoff: ``max_attempts`` times, delay
                 ``delay * multiplier**(n-1)`` capped at ``max_delay``, less up
                 to ``jitter`` of it; ``retry_on`` / ``never_retry`` list error
                 types (exception class names) it applies to / skips
``reassign``     run it again on another eligible agent, never one that already
                 failed it (``max_times``; ``penalize`` counts the failure
                 against the failed agent's score twice)
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

Over 400 lines, kept whole: the policy grammar, its strategies and ``decide`` over them are one vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, ClassVar

from pepper.errors import ValidationError, suggest
from pepper.model import codec
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.units import parse_duration

ACTIONS = ("retry", "reassign", "fallback", "skip", "abort", "dead_letter", "fail")
#: The reason text of a task failed by an ``abort`` decision starts with this (for people; see ``TaskOutcome``).
ABORTED = "aborted: "


class Strategy:
    """Base of the strategies; ``name`` is how policies spell it."""

    name: ClassVar[str] = ""

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"strategy": self.name}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if value != default:
                data[f.name] = sorted(value) if isinstance(value, frozenset) else value
        return data

    def __str__(self) -> str:
        data = self.to_data()
        del data["strategy"]
        if not data:
            return self.name
        args = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in data.items())
        return f"{self.name}({args})"


@dataclass(frozen=True, slots=True)
class Retry(Strategy):
    """Run the task again after a backoff, up to ``max_attempts`` times."""

    name: ClassVar[str] = "retry"
    max_attempts: int = 3
    delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2
    retry_on: frozenset[str] = frozenset()  # empty: every error type
    never_retry: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _count(self.max_attempts, "max_attempts")
        for name in ("delay", "max_delay"):
            object.__setattr__(self, name, parse_duration(getattr(self, name), name))
        for name in ("multiplier", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError(f"retry's {name} must be a number, got {value!r}", field=name)
            object.__setattr__(self, name, float(value))
        Backoff(self.delay, self.multiplier, self.max_delay, self.jitter)  # validates them
        for name in ("retry_on", "never_retry"):
            object.__setattr__(self, name, _names(getattr(self, name), name))

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.delay, self.multiplier, self.max_delay, self.jitter)

    def applies_to(self, error_type: str) -> bool:
        if error_type in self.never_retry:
            return False
        return not self.retry_on or error_type in self.retry_on


@dataclass(frozen=True, slots=True)
class Reassign(Strategy):
    """Run the task again on another eligible agent (never one that already failed it)."""

    name: ClassVar[str] = "reassign"
    max_times: int | None = None  # None: as long as untried eligible agents remain
    penalize: bool = True

    def __post_init__(self) -> None:
        if self.max_times is not None:
            _count(self.max_times, "max_times")
        if not isinstance(self.penalize, bool):
            raise ValidationError(f"reassign's penalize must be true or false, got {self.penalize!r}", field="penalize")


@dataclass(frozen=True, slots=True)
class Fallback(Strategy):
    """Run the task once more on a named agent, or as another task type."""

    name: ClassVar[str] = "fallback"
    agent: str | None = None
    task_type: str | None = None

    def __post_init__(self) -> None:
        if (self.agent is None) == (self.task_type is None):
            raise ValidationError("fallback needs exactly one of agent=... or task_type=...", field="fallback")
        for value in (self.agent, self.task_type):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValidationError(f"fallback needs a non-empty name, got {value!r}", field="fallback")


@dataclass(frozen=True, slots=True)
class Skip(Strategy):
    """Mark the task completed with no result; its dependents run, told it was skipped."""

    name: ClassVar[str] = "skip"


@dataclass(frozen=True, slots=True)
class Abort(Strategy):
    """Fail the task and cancel the rest of its workflow run."""

    name: ClassVar[str] = "abort"


@dataclass(frozen=True, slots=True)
class DeadLetter(Strategy):
    """Park the task for a person to replay or drop."""

    name: ClassVar[str] = "dead_letter"


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (Retry, Reassign, Fallback, Skip, Abort, DeadLetter)}
_ALIASES = {"dead-letter": "dead_letter", "deadletter": "dead_letter", "dlq": "dead_letter"}
_POSITIONAL = {"retry": "max_attempts", "reassign": "max_times", "fallback": "agent"}


def _count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a whole number >= 0, got {value!r}", field=name)


def _names(value: Any, name: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(f"{name} must be a list of error type names, e.g. ['TimeoutError']", field=name)
    return frozenset(value)


# -- policies -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """A chain of strategies, tried in order."""

    strategies: tuple[Strategy, ...]

    def __str__(self) -> str:
        return " -> ".join(str(s) for s in self.strategies) or "fail"

    def to_data(self) -> list[dict[str, Any]]:
        return [s.to_data() for s in self.strategies]

    @classmethod
    def parse(cls, value: Any) -> Policy:
        """A policy from a ``Policy``, a ``Strategy``, text (``"retry(3) -> reassign -> dead_letter"``), a
        mapping (``{"strategy": "retry", "max_attempts": 3}``) or a list of those."""
        if isinstance(value, Policy):
            return value
        if isinstance(value, (Strategy, Mapping)):
            return cls((_strategy(value),))
        if isinstance(value, str):
            parts = [p.strip() for p in re.split(r"->|→|,(?![^()]*\))", value)]
            if not value.strip() or not all(parts):
                raise ValidationError(
                    f"a recovery policy cannot be empty or have empty steps: {value!r}", field="policy"
                )
            return cls(tuple(_strategy(p) for p in parts))
        if isinstance(value, Iterable):
            strategies = tuple(_strategy(item) for item in value)
            if not strategies:
                raise ValidationError("a recovery policy needs at least one strategy", field="policy")
            return cls(strategies)
        raise ValidationError(
            f"a recovery policy is text such as 'retry(3) -> dead_letter', a strategy or a list; got {value!r}",
            field="policy",
        )


def _strategy(value: Any) -> Strategy:
    if isinstance(value, Strategy):
        return value
    if isinstance(value, Mapping):
        data = dict(value)
        name = data.pop("strategy", None)
        return _build(name, data)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([A-Za-z_-]+)\s*(?:\((.*)\))?\s*", value, re.S)
        if not match:
            raise ValidationError(f"cannot read recovery strategy {value!r}; e.g. 'retry(3, delay=2s)'", field="policy")
        return _build(match.group(1), _arguments(match.group(1), match.group(2) or ""))
    raise ValidationError(f"a recovery strategy is a name or a mapping, got {value!r}", field="policy")


def _build(name: Any, arguments: dict[str, Any]) -> Strategy:
    key = _ALIASES.get(str(name).lower(), str(name).lower()) if isinstance(name, str) else name
    cls = STRATEGIES.get(key)
    if cls is None:
        raise ValidationError(
            f"unknown recovery strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}."
            f"{suggest(str(name), STRATEGIES)}",
            field="policy",
        )
    allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for arg in arguments:
        if arg not in allowed:
            valid = ", ".join(allowed) or "none"
            raise ValidationError(
                f"{cls.name} takes no argument {arg!r}; its arguments: {valid}.{suggest(arg, allowed)}",
                field="policy",
            )
    return cls(**arguments)


def _arguments(name: str, text: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for position, raw in enumerate(p.strip() for p in _split_arguments(text)):
        if not raw:
            continue
        key, sep, value = raw.partition("=")
        if not sep:
            key, value = _POSITIONAL.get(_ALIASES.get(name, name), ""), raw
            if position or not key:
                raise ValidationError(f"{name}({text}): name every argument but the first, e.g. delay=2s")
        arguments[key.strip()] = _value(value.strip())
    return arguments


def _split_arguments(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        current += char
    parts.append(current)
    return parts


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if text.startswith("[") and text.endswith("]"):
        return [_value(v.strip()) for v in text[1:-1].split(",") if v.strip()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip("'\"")


# -- a task's progress through its policy --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryState:
    """Where a task stands in its policy: the strategy in use, how often it acted, who failed it."""

    stage: int = 0
    used: int = 0
    failed_agents: tuple[str, ...] = ()
    run_as: str | None = None  # a fallback task type
    moved_to: str | None = None  # the agent reassign or fallback placed it on (lifted if that agent goes away)

    def to_data(self) -> dict[str, Any] | None:
        if self == NO_RECOVERY:
            return None
        return {"stage": self.stage, "used": self.used, "failed_agents": list(self.failed_agents),
                "run_as": self.run_as, "moved_to": self.moved_to}  # fmt: skip

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> RecoveryState:
        if not data:
            return NO_RECOVERY
        return cls(data.get("stage", 0), data.get("used", 0), tuple(data.get("failed_agents", ())), data.get("run_as"),
                   data.get("moved_to"))  # fmt: skip


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


def decide(
    policy: Policy, state: RecoveryState, error_type: str, agent_id: str | None, seed: str, options: Options
) -> Decision:
    """What ``policy`` does about a failure of type ``error_type`` on ``agent_id``.

    ``seed`` (the task id and attempt) makes retry jitter reproducible.
    """
    failed = state.failed_agents
    if agent_id is not None and agent_id not in failed:
        failed = (*failed, agent_id)
    stage, used = state.stage, state.used
    while stage < len(policy.strategies):
        strategy = policy.strategies[stage]
        here = replace(state, stage=stage, used=used, failed_agents=failed)
        decision = _try(strategy, here, error_type, agent_id, seed, options)
        if decision is not None:
            return decision
        stage, used = stage + 1, 0
    end = replace(state, stage=stage, used=0, failed_agents=failed)
    return Decision("fail", end, message=f"its recovery policy ({policy}) is exhausted")


def _try(
    strategy: Strategy, state: RecoveryState, error_type: str, agent_id: str | None, seed: str, options: Options
) -> Decision | None:
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
        other = options.other_agent(frozenset(state.failed_agents))
        if other is None:
            return None
        return Decision("reassign", nxt, name, agent=other, penalize=agent_id if strategy.penalize else None,
                        message=f"moved to agent {other!r} (failed on {', '.join(state.failed_agents)})")  # fmt: skip
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


def default_policy(max_retries: int, backoff: Backoff) -> Policy:
    """``retry(max_retries)`` with the runtime's backoff settings (then the task fails)."""
    return Policy((Retry(max_retries, backoff.delay, backoff.multiplier, backoff.max_delay, backoff.jitter),))


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One error in a task's history, and what was done about it."""

    error_id: int
    task_id: str
    attempt: int
    agent_id: str | None
    worker_id: str | None
    task_type: str
    at: float
    error: TaskError
    strategy: str | None  # the strategy that decided (None when the policy was exhausted)
    action: str  # one of ACTIONS
    detail: str | None  # e.g. "retry 2 of 3 in 4.00s"

    @classmethod
    def from_row(cls, row: codec.Row) -> ErrorRecord:
        error = TaskError(row["type"], row["message"], row["traceback"], row["kind"])
        return cls(row["error_id"], row["task_id"], row["attempt"], row["agent_id"], row["worker_id"],
                   row["task_type"], row["at"], error, row["strategy"], row["action"], row["detail"])  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_id": self.error_id, "task_id": self.task_id, "attempt": self.attempt, "agent_id": self.agent_id,
            "worker_id": self.worker_id, "task_type": self.task_type, "at": self.at, "type": self.error.type,
            "message": self.error.message, "traceback": self.error.traceback, "kind": self.error.kind,
            "strategy": self.strategy, "action": self.action, "detail": self.detail,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorRecord:
        """The record ``to_dict`` gave (an HTTP answer's)."""
        error = TaskError(data["type"], data["message"], data.get("traceback"), data.get("kind", "error"))
        return cls(data["error_id"], data["task_id"], data["attempt"], data.get("agent_id"), data.get("worker_id"),
                   data["task_type"], data["at"], error, data.get("strategy"), data["action"],
                   data.get("detail"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    """What handling an error did: the decision, where the task stands now, when and where it runs next."""

    task_id: str
    action: str  # one of ACTIONS
    strategy: str
    message: str
    state: str  # the task's state afterwards
    next_attempt_at: float | None = None
    agent_id: str | None = None  # the agent it is placed on, if a strategy chose one
    parked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "action": self.action, "strategy": self.strategy, "message": self.message,
                "state": self.state, "next_attempt_at": self.next_attempt_at, "agent_id": self.agent_id,
                "parked": self.parked}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecoveryOutcome:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
