"""Alert rules: when a watched value crosses a threshold, fire once per crossing.

Pure evaluation, time passed in. A rule fires when the value goes past its
threshold, then stays quiet until the value has come back by ``hysteresis``
(so a value hovering at the threshold does not flap), and never fires twice
within ``cooldown`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from pepper.errors import ValidationError, shown
from pepper.model.thresholds import check_threshold


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Watch ``metric`` of ``subject`` (an agent id, or None for the whole system)."""

    rule_id: str
    source: str
    metric: str
    threshold: float
    subject: str | None = None
    above: bool = True
    hysteresis: float | None = None
    cooldown: float = 0.0
    #: For windowed metrics (performance): the window in seconds, and what ``subject`` names ("agent" or
    #: "task_type"; None: the whole system).
    window: float | None = None
    scope: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValidationError(f"metric must be a name, got {self.metric!r}", field="metric")
        if not isinstance(self.above, bool):
            raise ValidationError(
                f"above must be True (fire above the threshold) or False (below it), got {shown(self.above)}",
                field="above",
            )
        check_threshold(self.metric, self.threshold, ">" if self.above else "<")
        if self.hysteresis is not None and _number(self.hysteresis, "hysteresis") < 0:
            raise ValidationError("hysteresis cannot be negative", field="hysteresis")
        if _number(self.cooldown, "cooldown") < 0:
            raise ValidationError("cooldown cannot be negative", field="cooldown")
        if self.window is not None and _number(self.window, "window") <= 0:
            raise ValidationError("window must be positive", field="window")

    @property
    def margin(self) -> float:
        """How far back the value must come before the rule can fire again (10% of the threshold by default)."""
        return self.hysteresis if self.hysteresis is not None else abs(self.threshold) * 0.1

    def crossed(self, value: float) -> bool:
        return value > self.threshold if self.above else value < self.threshold

    def cleared(self, value: float) -> bool:
        return value <= self.threshold - self.margin if self.above else value >= self.threshold + self.margin


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where a rule stands: ``firing`` until its value clears; when it last fired; how often."""

    firing: bool = False
    last_fired: float | None = None
    fired: int = 0


@dataclass(frozen=True, slots=True)
class Alert:
    """One firing of a rule."""

    alert_id: str
    rule_id: str
    source: str
    metric: str
    value: float
    threshold: float
    above: bool
    at: float
    subject: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> tuple[Any, ...]:
        return (
            self.alert_id, self.rule_id, self.source, self.subject, self.metric, self.value, self.threshold,
            int(self.above), self.at, self.message,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id, "rule_id": self.rule_id, "source": self.source, "subject": self.subject,
            "metric": self.metric, "value": self.value, "threshold": self.threshold, "above": self.above,
            "at": self.at, "message": self.message,
        }  # fmt: skip


def evaluate(rule: AlertRule, state: RuleState, value: float | None, now: float) -> tuple[RuleState, Alert | None]:
    """The rule's next state and, if it fires now, the alert. ``None`` values change nothing."""
    if value is None:
        return state, None
    if state.firing:
        return (replace(state, firing=False), None) if rule.cleared(value) else (state, None)
    if not rule.crossed(value):
        return state, None
    if state.last_fired is not None and now - state.last_fired < rule.cooldown:
        return state, None
    number = state.fired + 1
    direction = "above" if rule.above else "below"
    who = f"{rule.subject}: " if rule.subject else ""
    alert = Alert(
        alert_id=f"{rule.rule_id}#{number}",
        rule_id=rule.rule_id,
        source=rule.source,
        metric=rule.metric,
        value=value,
        threshold=rule.threshold,
        above=rule.above,
        at=now,
        subject=rule.subject,
        message=f"{who}{rule.metric} is {value:g}, {direction} the threshold of {rule.threshold:g}",
    )
    return RuleState(firing=True, last_fired=now, fired=number), alert


def _number(value: object, name: str) -> float:
    """``value`` if it is a finite number; else a ``ValidationError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number, got {value!r}", field=name)
    return float(value)
