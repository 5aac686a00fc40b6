"""What an alert threshold may be, by metric: one rule for ``set_alert`` on every monitor and for configured rules.

A share (``error_rate``) lies from 0 to 1, a share of a machine in use (``cpu_used_percent``) from 0 to 100, a yes
or no (``store.writable``) is 1 or 0, and everything else pepper watches (counts, durations, sizes, rates, an
agent's CPU %, which passes 100 when it keeps several cores busy) is 0 or more. A threshold outside its metric's
range, or at the end of it that a value can never pass, would never fire or always be crossed: it is refused.
"""

from __future__ import annotations

import math
from typing import Any

from pepper.errors import ValidationError

#: Shares, from 0 to 1.
_SHARES = frozenset({"error_rate", "agents.error_rate"})
#: Yes (1) or no (0).
_YES_NO = frozenset({"store.writable", "engine.engine_here"})


def threshold_range(metric: str) -> tuple[float, float, str]:
    """The lowest and highest values ``metric`` takes, and what it is (for messages)."""
    if metric in _SHARES:
        return 0.0, 1.0, "a share from 0 to 1 (0.05 is 5%)"
    if metric.endswith("_used_percent"):
        return 0.0, 100.0, "a percentage from 0 to 100"
    if metric in _YES_NO:
        return 0.0, 1.0, "1 (yes) or 0 (no)"
    if metric == "cpu":
        return 0.0, math.inf, "a CPU percentage, 100 for each busy core, so 0 or more"
    return 0.0, math.inf, "a count, a duration, a size or a rate, so 0 or more"


def check_threshold(metric: str, threshold: Any, comparison: str = ">") -> float:
    """``threshold`` as a float if a value of ``metric`` can cross it by ``comparison`` (``>``, ``>=``, ``<``,
    ``<=``); otherwise a ``ValidationError`` naming the valid range."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValidationError(f"threshold must be a finite number, got {threshold!r}", field="threshold")
    low, high, what = threshold_range(metric)
    value = float(threshold)
    shown_range = f"from {low:g} to {high:g}" if math.isfinite(high) else f"{low:g} or more"
    if not low <= value <= high:
        raise ValidationError(
            f"{metric!r} is {what}: a threshold of {value:g} is out of its range; give one {shown_range}",
            field="threshold",
        )
    if (comparison == ">" and value == high) or (comparison == "<" and value == low):
        word, other = ("above", "below") if comparison == ">" else ("below", "above")
        raise ValidationError(
            f"{metric!r} is {what}: it is never {word} {value:g}, so the alert could never fire; give a threshold "
            f"{other} {value:g}",
            field="threshold",
        )
    return value
