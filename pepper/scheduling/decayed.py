"""Sums that decay: every term halves each ``half_life`` seconds. Time is always passed in."""

from __future__ import annotations


class Decayed:
    """A sum whose terms halve every ``half_life`` seconds."""

    __slots__ = ("at", "half_life", "value")

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.value = 0.0
        self.at = 0.0

    def add(self, amount: float, at: float) -> None:
        if at >= self.at:
            self.value = self.read(at) + amount
            self.at = at
        else:  # an older observation arriving late counts as old as it is
            self.value += amount * 0.5 ** ((self.at - at) / self.half_life)

    def read(self, now: float) -> float:
        if self.value == 0.0 or now <= self.at:
            return self.value
        decay: float = 0.5 ** ((now - self.at) / self.half_life)  # float ** float is typed Any
        return self.value * decay


class DecayedMean:
    """A decayed mean: a decayed sum of values and a decayed count, updated together (one ``at``)."""

    __slots__ = ("at", "count", "half_life", "total")

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.total = self.count = self.at = 0.0

    def add(self, value: float, at: float) -> None:
        if at > self.at:
            decay: float = 0.5 ** ((at - self.at) / self.half_life)
            self.total, self.count, self.at = self.total * decay + value, self.count * decay + 1.0, at
        elif at == self.at:
            self.total += value
            self.count += 1.0
        else:  # an older observation arriving late counts as old as it is
            decay = 0.5 ** ((self.at - at) / self.half_life)
            self.total += value * decay
            self.count += decay

    def sums(self, now: float) -> tuple[float, float]:
        """The decayed ``(total, count)`` at ``now``."""
        total, count = self.total, self.count
        if now <= self.at:
            return total, count
        decay: float = 0.5 ** ((now - self.at) / self.half_life)
        return total * decay, count * decay

    def read(self, now: float) -> float | None:
        """The mean: the same at any time (both sums decay alike) until its evidence fades away (None)."""
        count = self.count
        if now > self.at:  # (``sums`` inline: read at every choice of an agent)
            count *= 0.5 ** ((now - self.at) / self.half_life)
        if count <= 1e-9:
            return None
        return self.total / self.count
