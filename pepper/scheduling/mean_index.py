"""The agents of each task type in order of their mean duration: what bounds expected times from below.

An agent's expected time for a type is at least its estimate, and its estimate is its own decayed mean
duration of the type while that mean lasts (a mean fades once its evidence has decayed to nothing, about
thirty half-lives after its last result; the type's mean stands in then). Walking the agents in order of
their means, a chooser can stop at the first whose mean is above the best expected time found: no agent
after it can do better. ``MeanIndex`` keeps that order as means change, and knows when one may have faded:
then the walk can stop only where the type's mean bounds the rest too.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence

from pepper.scheduling.decayed import DecayedMean

#: A decayed count at or below this is no evidence (``DecayedMean.read``).
_FADED = 1e-9


def fades_at(mean: DecayedMean) -> float:
    """A time before which ``mean`` cannot have faded (a little early, for rounding): later results only
    push it back."""
    if mean.count <= _FADED:
        return -math.inf
    return mean.at + mean.half_life * math.log2(mean.count / _FADED) * (1 - 1e-9) - 1.0


class MeanIndex:
    """Per task type: ``(mean, agent)`` in increasing order, and a time before which none of them can have
    faded."""

    __slots__ = ("_changes", "_faded", "_fades", "_means", "_ordered")

    def __init__(self) -> None:
        self._means: dict[str, dict[str, float]] = {}  # type -> agent -> its mean as listed
        self._ordered: dict[str, list[tuple[float, str]]] = {}
        self._changes: dict[str, int] = {}  # type -> how many times its order changed
        self._fades: dict[str, float] = {}  # type -> a time before which none of the others can have faded
        self._faded: dict[str, set[str]] = {}  # type -> the agents whose means were found faded

    def note(self, agent_id: str, task_type: str, mean: DecayedMean) -> None:
        """``mean`` (the agent's mean duration of the type) took a result."""
        value = mean.total / mean.count  # what ``DecayedMean.read`` returns while it lasts
        means = self._means.get(task_type)
        if means is None:
            means = self._means[task_type] = {}
            self._ordered[task_type] = []
            self._fades[task_type] = math.inf
            self._faded[task_type] = set()
        old = means.get(agent_id)
        faded = self._faded[task_type]
        if old is None or agent_id in faded:  # new, or back: it may fade before the others do
            self._fades[task_type] = min(self._fades[task_type], fades_at(mean))
            faded.discard(agent_id)
        if old == value:
            return
        ordered = self._ordered[task_type]
        if old is not None:
            del ordered[bisect_left(ordered, (old, agent_id))]
        means[agent_id] = value
        insort(ordered, (value, agent_id))
        changes = self._changes
        changes[task_type] = changes.get(task_type, 0) + 1

    def changes(self, task_type: str) -> int:
        """How many times the order of ``task_type`` changed so far (it only grows): an order read while this
        stood still is the order as it is."""
        return self._changes.get(task_type, 0)

    def shortest(self, task_type: str) -> float | None:
        """The shortest mean duration of ``task_type`` listed (faded ones included), None if there is none."""
        ordered = self._ordered.get(task_type)
        return ordered[0][0] if ordered else None

    def listed(self, task_type: str) -> dict[str, float]:
        """The agents with a mean duration of ``task_type``: agent -> its mean (read only)."""
        return self._means.get(task_type) or {}

    def in_order(
        self, task_type: str, now: float, mean_of: Callable[[str], DecayedMean], owner: bool = True
    ) -> tuple[Sequence[tuple[float, str]], bool]:
        """``(mean, agent)`` of ``task_type`` in increasing order, and whether some of those means may have faded
        by ``now`` (such an agent's estimate is the type's, until its next result). The ``owner`` of the index
        (the thread that notes means) finds out, once the time before which none can have faded has passed, by
        reading each agent's ``DecayedMean`` of the type (``mean_of(agent)``); another reader writes nothing and
        takes it that some may have."""
        ordered = self._ordered.get(task_type)
        if ordered is None:
            return (), False
        if self._faded[task_type]:
            return ordered, True
        if now < self._fades[task_type]:
            return ordered, False
        if not owner:
            return ordered, True
        soonest, faded = math.inf, set()
        for agent_id in self._means[task_type]:
            mean = mean_of(agent_id)
            if mean.read(now) is None:
                faded.add(agent_id)
            else:
                soonest = min(soonest, fades_at(mean))
        self._faded[task_type] = faded  # (before the time: a reader that sees the new time sees these too)
        self._fades[task_type] = soonest
        return ordered, bool(faded)
