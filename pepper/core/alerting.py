"""``AlertSource``: the alert API the three monitors share (``set_alert`` / ``remove_alert``).

Each monitor checks what is particular to it (which metrics, which subject) and hands a rule to
``_watch``, which checks the callback, names the rule, and registers it with the runtime's sampler.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from pepper.core.component import Component
from pepper.engine.sampler import ValueOf
from pepper.errors import NotFoundError, ValidationError
from pepper.model.units import parse_duration
from pepper.monitoring.alerts import Alert, AlertRule


class AlertSource(Component):
    """A public face whose numbers can raise alerts: its alerts carry ``source``, its rule ids start
    with ``rule_prefix``."""

    source: ClassVar[str] = "alerts"
    rule_prefix: ClassVar[str] = "alert"

    def _watch(
        self, metric: str, threshold: float, callback: Callable[[Alert], Any], *, value: ValueOf | None = None,
        cooldown: float | str | None = 0.0, **rule: Any,
    ) -> str:  # fmt: skip
        """Register a rule on ``metric`` calling ``callback(alert)`` when it fires; returns its id. ``value``
        reads what the rule watches (default: the measured usage of its subject); ``rule`` holds the
        other ``AlertRule`` fields (subject, above, hysteresis, window, scope)."""
        if not callable(callback):
            raise ValidationError(f"callback must be callable, got {callback!r}", field="callback")
        quiet = 0.0 if cooldown is None else parse_duration(cooldown, "cooldown")
        made = AlertRule(f"{self.rule_prefix}-{uuid.uuid4().hex[:8]}", self.source, metric, threshold,
                         cooldown=quiet, **rule)  # fmt: skip
        self.runtime.watch(made, callback, value)
        return made.rule_id

    def remove_alert(self, rule_id: str) -> None:
        """Stop the alert rule ``rule_id`` (as ``set_alert`` returned it)."""
        if not self.runtime.unwatch(rule_id):
            raise NotFoundError(f"no alert rule with id {rule_id!r}")
