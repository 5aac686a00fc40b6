"""This engine's metrics: counters and histograms per task type and agent, recent attempts, loop lag.

``MetricsHook`` follows the engine as a hook. Its hot path is a few dict
increments and one append per attempt; everything else (percentiles, the
Prometheus exposition) is computed when someone asks. ``LagProbe`` measures
how late the event loop runs a timer: a blocked loop is a sick engine.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
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
_TYPE = attrgetter("task_type")


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


class Line:
    """What one agent did of one task type: its attempts started and completed, and their queue waits and run
    times (each histogram made at its first observation)."""

    __slots__ = ("agent_id", "completed", "runs", "started", "task_type", "waits")

    def __init__(self, task_type: str, agent_id: str) -> None:
        self.task_type = task_type
        self.agent_id = agent_id
        self.started = 0
        self.completed = 0
        self.waits: Histogram | None = None
        self.runs: Histogram | None = None


class MetricsHook(EngineHook):
    """Counts what the engine does, per task type and agent, and keeps the recent attempts.

    What every attempt changes (its start, its completion, its wait and run time) is kept in one ``Line`` per
    task type and agent, found once at the start and kept with the attempt until it ends; ``counters``,
    ``waits`` and ``runs`` are read from the lines when asked for."""

    def __init__(self, engine: Engine, horizon: float = 3600.0) -> None:
        self.engine = engine
        self.started_at = engine.clock.now()
        #: (task type, agent id or "") -> what that agent did of that type.
        self.lines: dict[tuple[str, str], Line] = {}
        self._counts: dict[tuple[str, str, str], int] = {}  # the counters not in the lines (see ``counters``)
        self.window = EventWindow(horizon)
        # task -> (its running attempt, started at, queue wait, its line): the agent it started on, whatever the task
        # does next (an engine runs one attempt of a task at a time)
        self._began: dict[str, tuple[int, float, float | None, Line]] = {}

    @property
    def counters(self) -> dict[tuple[str, str, str], int]:
        """(counter, task type, agent id or "") -> count; counters: submitted, started, completed, failed,
        retried (attempts answered by retry, reassign or fallback), parked, skipped."""
        counters = dict(self._counts)
        for (task_type, agent_id), line in self.lines.items():
            if line.started:
                counters["started", task_type, agent_id] = line.started
            if line.completed:
                counters["completed", task_type, agent_id] = line.completed
        return counters

    @property
    def waits(self) -> dict[tuple[str, str], Histogram]:
        """(task type, agent id) -> seconds attempts waited between ready and started."""
        return {key: line.waits for key, line in self.lines.items() if line.waits is not None}

    @property
    def runs(self) -> dict[tuple[str, str], Histogram]:
        """(task type, agent id or "") -> seconds completed attempts ran."""
        return {key: line.runs for key, line in self.lines.items() if line.runs is not None}

    def _line(self, task_type: str, agent_id: str | None) -> Line:
        key = (task_type, agent_id or "")
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = Line(*key)
        return line

    def _count(self, name: str, task_type: str, agent_id: str | None, n: int = 1) -> None:
        key = (name, task_type, agent_id or "")
        counts = self._counts
        counts[key] = counts.get(key, 0) + n

    def on_submitted(self, tasks: Sequence[Task]) -> None:
        for task_type, n in Counter(map(_TYPE, tasks)).items():
            self._count("submitted", task_type, None, n)

    def on_started(self, task: Task, attempt: int, agent_id: str, at: float) -> None:
        line = self.lines.get((task.task_type, agent_id))  # (the look-up of ``_line``, inline: once an attempt)
        if line is None:
            line = self._line(task.task_type, agent_id)
        line.started += 1
        t = self.engine.state.tasks.get(task.task_id)
        ready = t.ready_at if t is not None else None
        wait = None
        if ready is not None and at >= ready:
            wait = at - ready
            histogram = line.waits
            if histogram is None:
                histogram = line.waits = Histogram()
            histogram.counts[bisect_left(BUCKETS, wait)] += 1  # ``observe`` inline
            histogram.sum += wait
        self._began[task.task_id] = (attempt, at, wait, line)

    def on_attempt_ended(self, event: AttemptEnded, task: Task | None) -> None:
        began = self._began.pop(event.task_id, None)
        if began is not None and began[0] != event.attempt:  # the end of another attempt than the one started here
            self._began[event.task_id] = began
            began = None
        if event.requeue or task is None:
            return
        task_type = task.task_type
        if began is not None:
            line = began[3]
            agent_id: str | None = line.agent_id
            if line.task_type != task_type:
                line = self._line(task_type, agent_id)
        else:  # started before this hook was attached
            t = self.engine.state.tasks.get(event.task_id)
            agent_id = t.agent_id if t is not None else None
            line = self._line(task_type, agent_id)
        at = event.at
        started = event.started_at if event.started_at is not None else (began[1] if began else None)
        run = at - started if started is not None else None
        ok = event.ok
        if ok:
            line.completed += 1
            if run is not None:
                histogram = line.runs
                if histogram is None:
                    histogram = line.runs = Histogram()
                histogram.counts[bisect_left(BUCKETS, run)] += 1
                histogram.sum += run
        wait = began[2] if began else None
        if began is not None and wait is not None and started is not None and started != began[1]:
            wait = max(0.0, started - (began[1] - wait))  # up to the start `run` counts from: the two add up
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
        if state is TaskState.CANCELLED:  # a cancelled running attempt reports no end
            self._began.pop(task_id, None)
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
