"""Recovery policies as written: the strategies, their arguments, and the grammar that reads a chain
such as ``retry(3) -> reassign -> dead_letter`` (what each strategy does: see ``pepper.model.recovery``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from pepper.errors import ValidationError, shown, suggest
from pepper.model.retry import MAX_RETRIES, MAX_RETRY_DELAY, Backoff
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

    def applies_to(self, error_types: str | Iterable[str]) -> bool:
        """Whether it retries an error of these types: an error's class names, its own and those it inherits
        from (``TaskError.names``), so that ``retry_on=[OSError]`` takes a ``ConnectionError``."""
        names = {error_types} if isinstance(error_types, str) else set(error_types)
        if names & self.never_retry:
            return False
        return not self.retry_on or bool(names & self.retry_on)


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
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise ValidationError(f"{name} must be a whole number from 0 to {MAX_RETRIES}, got {shown(value)}", field=name)


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


def stored_policy(data: Any) -> Policy:
    """A policy as a task row stores it (``Policy.to_data``). One stored before retry counts and delays were
    bounded is read with them brought within the bounds (at most 1000 times, 366 days), not refused: the task
    stays readable."""
    try:
        return Policy.parse(data)
    except ValidationError:
        if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
            raise
        return Policy.parse([_within_bounds(item) for item in data])


def _within_bounds(item: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(item)
    for key, most in (("max_attempts", MAX_RETRIES), ("max_times", MAX_RETRIES), ("delay", MAX_RETRY_DELAY),
                      ("max_delay", MAX_RETRY_DELAY)):  # fmt: skip
        value = out.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > most:
            out[key] = most
    return out


def default_policy(max_retries: int, backoff: Backoff) -> Policy:
    """``retry(max_retries)`` with the runtime's backoff settings (then the task fails)."""
    return Policy((Retry(max_retries, backoff.delay, backoff.multiplier, backoff.max_delay, backoff.jitter),))
