"""Retry timing: exponential backoff with deterministic jitter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pepper.errors import ValidationError


def unit_jitter(seed: str) -> float:
    """A number in [0, 1) derived from ``seed``: random-looking, yet reproducible."""
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n``: ``min(max_delay, delay * multiplier**(n-1))``, less up to ``jitter`` of it.

    Jitter spreads retries of many failing tasks apart (so they do not retry in
    lock-step); it is derived from the task id and attempt, so it is reproducible.
    """

    delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.delay < 0 or self.max_delay < 0:
            raise ValidationError("retry delays cannot be negative", field="delay")
        if self.multiplier < 1:
            raise ValidationError("retry multiplier must be >= 1", field="multiplier")
        if not 0 <= self.jitter <= 1:
            raise ValidationError("retry jitter must be between 0 and 1", field="jitter")

    def base(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based) without jitter."""
        return min(self.max_delay, self.delay * self.multiplier ** max(0, retry - 1))

    def delay_for(self, retry: int, seed: str) -> float:
        """The jittered delay: within ``[base * (1 - jitter), base]``."""
        base = self.base(retry)
        return base * (1.0 - self.jitter * unit_jitter(f"{seed}:{retry}"))
