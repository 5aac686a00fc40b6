"""This engine's metrics: counters and histograms per task type and agent, recent attempts, loop lag.

``MetricsHook`` follows the engine as a hook. Its hot path is a few dict
increments and one append per attempt; everything else (percentiles, the
Prometheus exposition) is computed when someone asks. ``LagProbe`` measures
how late the event loop runs a timer: a blocked loop is a sick engine.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.engine.hooks import EngineHook
from pepper.engine.periodic import Periodic
from pepper.model.events import AttemptEnded, RecordError
from pepper.model.slots import new_tuple
from pepper.model.task import Task, TaskState
from pepper.monitoring.window import EventWindow, Observation

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

#: Upper bounds (seconds) of the histogram buckets of queue wait and run time.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_RETRIED = frozenset({"retry", "reassign", "fallback"})


class Histogram:
    """Counts per bucket (cumulative when exported), sum and count."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, observations <= it)`` as Prometheus wants them, ``+Inf`` last."""
        out, total = [], 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class MetricsHook(EngineHook):
    """Counts what the engine does, per task type and agent, and keeps the recent attempts."""

    def __init__(self, engine: Engine, horizon: float = 3600.0) -> None:
        self.engine = engine
        self.started_at = engine.clock.now()
        #: (counter, task type, agent id or "") -> count; counters: submitted, started, completed, failed,
        #: retried (attempts answered by retry, reassign or fallback), parked, skipped.
        self.counters: dict[tuple[str, str, str], int] = {}
        self.waits: dict[tuple[str, str], Histogram] = {}
        self.runs: dict[tuple[str, str], Histogram] = {}
        self.window = EventWindow(horizon)
        # attempt -> (started at, queue wait, agent): the agent it started on, whatever the task does next
        self._began: dict[tuple[str, int], tuple[float, float | None, str]] = {}

    def _count(self, name: str, task_type: str, agent_id: str | None, n: int = 1) -> None:
        key = (name, task_type, agent_id or "")
        counters = self.counters
        counters[key] = counters.get(key, 0) + n

    def on_submitted(self, tasks: Sequence[Task]) -> None:
        by_type: dict[str, int] = {}
        for task in tasks:
            by_type[task.task_type] = by_type.get(task.task_type, 0) + 1
        for task_type, n in by_type.items():
            self._count("submitted", task_type, None, n)

    def on_started(self, task: Task, attempt: int, agent_id: str, at: float) -> None:
        task_type, counters = task.task_type, self.counters  # ``_count`` inline: this runs once per attempt
        key = ("started", task_type, agent_id or "")
        counters[key] = counters.get(key, 0) + 1
        t = self.engine.state.tasks.get(task.task_id)
        ready = t.ready_at if t is not None else None
        wait = at - ready if ready is not None and at >= ready else None
        self._began[(task.task_id, attempt)] = (at, wait, agent_id)
        if wait is not None:
            histogram = self.waits.get((task_type, agent_id))
            if histogram is None:
                histogram = self.waits[(task_type, agent_id)] = Histogram()
            histogram.counts[bisect_left(BUCKETS, wait)] += 1  # ``observe`` inline
            histogram.sum += wait

    def on_attempt_ended(self, event: AttemptEnded, task: Task | None) -> None:
        began = self._began.pop((event.task_id, event.attempt), None)
        if event.requeue or task is None:
            return
        if began is not None:
            agent_id: str | None = began[2]
        else:  # started before this hook was attached
            t = self.engine.state.tasks.get(event.task_id)
            agent_id = t.agent_id if t is not None else None
        task_type, at, ok = task.task_type, event.at, event.ok
        started = event.started_at if event.started_at is not None else (began[0] if began else None)
        run = at - started if started is not None else None
        if ok:
            counters, key = self.counters, ("completed", task_type, agent_id or "")
            counters[key] = counters.get(key, 0) + 1
            if run is not None:
                histogram = self.runs.get((task_type, agent_id or ""))
                if histogram is None:
                    histogram = self.runs[(task_type, agent_id or "")] = Histogram()
                histogram.counts[bisect_left(BUCKETS, run)] += 1
                histogram.sum += run
        wait = began[1] if began else None
        if began is not None and wait is not None and started is not None:
            wait = max(0.0, started - (began[0] - wait))  # up to the start `run` counts from: the two add up
        self.window.add(new_tuple(Observation, (at, task_type, agent_id, ok, wait, run)))

    def on_recovery(self, record: RecordError) -> None:
        action = record.action
        if action in _RETRIED:
            self._count("retried", record.task_type, record.agent_id)
        elif action == "dead_letter":
            self._count("parked", record.task_type, record.agent_id)
        elif action == "skip":
            self._count("skipped", record.task_type, record.agent_id)

    def on_settled(self, task_id: str, state: TaskState) -> None:
        """Told by the engine of failed and cancelled tasks only: a completion was counted at its attempt's end."""
        if state is TaskState.CANCELLED and self._began:  # a cancelled running attempt reports no end
            for key in [k for k in self._began if k[0] == task_id]:
                del self._began[key]
        if state is TaskState.FAILED:
            t = self.engine.state.tasks.get(task_id)
            if t is not None:
                self._count("failed", t.task.task_type, t.agent_id)


class LagProbe(Periodic):
    """How late the engine's event loop runs a timer (the worst of the last minute).

    Timed by the loop's own monotonic clock, not the engine's: lateness is the real loop's, whatever clock the
    engine's work is measured by (a manual clock moved on by a day must not fire a day's worth of probes)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.latest = 0.0
        self._recent: list[tuple[float, float]] = []

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.latest = max(0.0, now - planned)
            self._recent = [(at, lag) for at, lag in self._recent if at > now - 60.0]
            self._recent.append((now, self.latest))

    @property
    def worst(self) -> float:
        """The largest lag of the last minute, in seconds."""
        return max((lag for _, lag in self._recent), default=self.latest)
