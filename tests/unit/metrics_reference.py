"""The metrics hook as it was before its hot path was inlined: what the current one must match."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.engine.hooks import EngineHook
from pepper.model.events import AttemptEnded, RecordError
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
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
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
        self._count("started", task.task_type, agent_id)
        t = self.engine.state.tasks.get(task.task_id)
        ready = t.ready_at if t is not None else None
        wait = at - ready if ready is not None and at >= ready else None
        self._began[(task.task_id, attempt)] = (at, wait, agent_id)
        if wait is not None:
            key = (task.task_type, agent_id)
            histogram = self.waits.get(key)
            if histogram is None:
                histogram = self.waits[key] = Histogram()
            histogram.observe(wait)

    def on_attempt_ended(self, event: AttemptEnded, task: Task | None) -> None:
        began = self._began.pop((event.task_id, event.attempt), None)
        if event.requeue or task is None:
            return
        if began is not None:
            agent_id: str | None = began[2]
        else:  # started before this hook was attached
            t = self.engine.state.tasks.get(event.task_id)
            agent_id = t.agent_id if t is not None else None
        started = event.started_at if event.started_at is not None else (began[0] if began else None)
        run = event.at - started if started is not None else None
        if event.ok:
            self._count("completed", task.task_type, agent_id)
            if run is not None:
                key = (task.task_type, agent_id or "")
                histogram = self.runs.get(key)
                if histogram is None:
                    histogram = self.runs[key] = Histogram()
                histogram.observe(run)
        wait = began[1] if began else None
        if began is not None and wait is not None and started is not None:
            wait = max(0.0, started - (began[0] - wait))  # up to the start `run` counts from: the two add up
        self.window.add(Observation(event.at, task.task_type, agent_id, event.ok, wait, run))

    def on_recovery(self, record: RecordError) -> None:
        action = record.action
        if action in _RETRIED:
            self._count("retried", record.task_type, record.agent_id)
        elif action == "dead_letter":
            self._count("parked", record.task_type, record.agent_id)
        elif action == "skip":
            self._count("skipped", record.task_type, record.agent_id)

    def on_settled(self, task_id: str, state: TaskState) -> None:
        if state is TaskState.CANCELLED and self._began:  # a cancelled running attempt reports no end
            for key in [k for k in self._began if k[0] == task_id]:
                del self._began[key]
        if state is TaskState.FAILED:
            t = self.engine.state.tasks.get(task_id)
            if t is not None:
                self._count("failed", t.task.task_type, t.agent_id)
