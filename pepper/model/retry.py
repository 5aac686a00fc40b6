"""Retry timing: exponential backoff with deterministic jitter."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from pepper.errors import ValidationError

#: The longest a retry waits (as the longest delay or timeout): a year and a day.
MAX_RETRY_DELAY = 366 * 86400.0
#: The most retries a policy or a task's ``max_retries`` allows.
MAX_RETRIES = 1000


def unit_jitter(seed: str) -> float:
    """A number in [0, 1) derived from ``seed``: random-looking, yet reproducible."""
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n``: ``delay * multiplier**(n-1)``, capped at ``max_delay``, less up to ``jitter`` of it.

    ``max_delay`` caps how far the delay grows, never the first one: a ``delay`` longer than it is waited in
    full (each retry then waits ``delay``). Delays are at most :data:`MAX_RETRY_DELAY`. Jitter spreads retries
    of many failing tasks apart (so they do not retry in lock-step); it is derived from the task id and
    attempt, so it is reproducible.
    """

    delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        for name in ("delay", "max_delay"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_RETRY_DELAY:  # also refuses NaN
                raise ValidationError(
                    f"retry {name} must be from 0 to 366 days ({MAX_RETRY_DELAY:.0f}s), got {value!r}", field=name
                )
        if not 1 <= self.multiplier < math.inf:
            raise ValidationError(
                f"retry multiplier must be >= 1 and finite, got {self.multiplier!r}", field="multiplier"
            )
        if not 0 <= self.jitter <= 1:
            raise ValidationError("retry jitter must be between 0 and 1", field="jitter")

    def base(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based) without jitter."""
        cap = max(self.max_delay, self.delay)
        try:
            grown = self.delay * self.multiplier ** max(0, retry - 1)
        except OverflowError:  # far past any cap
            return cap
        return min(cap, grown)

    def delay_for(self, retry: int, seed: str) -> float:
        """The jittered delay: within ``[base * (1 - jitter), base]``."""
        base = self.base(retry)
        return base * (1.0 - self.jitter * unit_jitter(f"{seed}:{retry}"))
