"""Performance over a sliding window: throughput, latency percentiles, error rate. Pure; time passed in.

An *observation* is one ended attempt: when it ended, its task type and agent,
whether it succeeded, how long it waited in the queue and how long it ran.

- throughput: completed attempts per second over the window's span - from the
  start of the window, or from when the earliest observed attempt became ready
  if that is later (so a burst that took 3 s reads as tasks / 3 s, not / 60 s),
  but never less than 10 ms (or the window, if shorter);
- latency: p50, p95 and p99 of queue wait and of run time, interpolated
  linearly between ranks (as ``numpy.percentile`` does by default);
- error rate: failed attempts / ended attempts (interrupted ones are not counted).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: The shortest span throughput is measured over (seconds): a task that ended just now with no timings
#: would otherwise read as millions per second.
MIN_SPAN = 0.01

PERCENTILES = (50.0, 95.0, 99.0)


class Observation(NamedTuple):
    """One ended attempt."""

    at: float  # when it ended
    task_type: str
    agent_id: str | None
    ok: bool
    wait: float | None  # seconds between becoming ready and starting
    run: float | None  # seconds it ran


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values`` with linear interpolation; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, got {q!r}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of a duration, in seconds (None when nothing was observed)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    count: int = 0

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        if not values:
            return cls()
        p50, p95, p99 = (percentile(values, q) for q in PERCENTILES)
        return cls(p50, p95, p99, sum(values) / len(values), len(values))

    def to_dict(self) -> dict[str, Any]:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99, "mean": self.mean, "count": self.count}


@dataclass(frozen=True, slots=True)
class Figures:
    """Performance over one window."""

    window: float  # seconds asked for
    span: float  # seconds the throughput is measured over
    completed: int = 0
    failed: int = 0
    queue_wait: Latency = field(default_factory=Latency)
    run_time: Latency = field(default_factory=Latency)

    @property
    def attempts(self) -> int:
        return self.completed + self.failed

    @property
    def throughput(self) -> float:
        """Completed attempts per second."""
        return self.completed / self.span if self.span > 0 else 0.0

    @property
    def error_rate(self) -> float | None:
        """Failed attempts / ended attempts; None when none ended."""
        return self.failed / self.attempts if self.attempts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window, "span": self.span, "completed": self.completed, "failed": self.failed,
            "throughput": self.throughput, "error_rate": self.error_rate,
            "queue_wait": self.queue_wait.to_dict(), "run_time": self.run_time.to_dict(),
        }  # fmt: skip


def summarize(observations: Iterable[Observation], now: float, window: float) -> Figures:
    """Figures of the observations that ended within ``window`` seconds before ``now``."""
    start = now - window
    completed = failed = 0
    waits: list[float] = []
    runs: list[float] = []
    earliest = now
    for o in observations:
        if o.at < start or o.at > now:
            continue
        if o.ok:
            completed += 1
        else:
            failed += 1
        if o.wait is not None:
            waits.append(o.wait)
        if o.run is not None:
            runs.append(o.run)
        began = o.at - (o.run or 0.0) - (o.wait or 0.0)
        earliest = min(earliest, began)
    span = now - max(start, earliest) if completed or failed else window
    return Figures(window, max(span, min(window, MIN_SPAN)), completed, failed, Latency.of(waits), Latency.of(runs))


def breakdown(observations: Iterable[Observation], now: float, window: float, by: str) -> dict[str, Figures]:
    """``summarize`` per agent (``by="agent"``) or per task type (``by="task_type"``)."""
    if by not in ("agent", "task_type"):
        raise ValueError(f"breakdown is by 'agent' or 'task_type', got {by!r}")
    groups: dict[str, list[Observation]] = {}
    for o in observations:
        key = (o.agent_id or "-") if by == "agent" else o.task_type
        groups.setdefault(key, []).append(o)
    return {key: summarize(group, now, window) for key, group in sorted(groups.items())}


class EventWindow:
    """The most recent observations: those within ``horizon`` seconds, at most ``limit`` of them."""

    def __init__(self, horizon: float = 3600.0, limit: int = 200_000) -> None:
        if limit < 1 or not horizon > 0:
            raise ValueError(
                f"an event window keeps at least one observation over a positive horizon, got "
                f"limit={limit!r}, horizon={horizon!r}"
            )
        self.horizon = horizon
        self._items: deque[Observation] = deque(maxlen=limit)

    def add(self, observation: Observation) -> None:
        items = self._items
        items.append(observation)
        if items[0].at < observation.at - self.horizon:
            cutoff = observation.at - self.horizon
            while items and items[0].at < cutoff:
                items.popleft()

    def since(self, start: float) -> list[Observation]:
        """Observations that ended at or after ``start``, oldest first."""
        return [o for o in self._items if o.at >= start]

    def __len__(self) -> int:
        return len(self._items)


def value_of(metric: str, figures: Figures) -> float | None:
    """The value an alert on ``metric`` watches."""
    if metric == "throughput":
        return figures.throughput
    if metric == "error_rate":
        return figures.error_rate
    if metric in ("completed", "failed"):
        return float(getattr(figures, metric))
    kind, _, level = metric.partition("_p")
    latency = figures.run_time if kind in ("latency", "run_time") else figures.queue_wait
    return getattr(latency, f"p{level or '95'}")
