"""``PerformanceMonitor``: throughput, latency and error rate over a sliding window, and alerts on them.

In a process running an engine the figures are this engine's own attempts (kept
in memory by its metrics hook); elsewhere (the CLI) they are read from the
database, which holds every worker's attempts. The maths is ``monitoring.window``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pepper.core.alerting import AlertSource
from pepper.core.runtime import Runtime
from pepper.errors import ValidationError, suggest
from pepper.model.units import parse_duration
from pepper.monitoring.alerts import Alert, AlertRule
from pepper.monitoring.window import Figures, Observation, breakdown, summarize, value_of

METRICS = ("throughput", "latency", "error_rate")
#: What alerts can watch: the three above (``latency`` is the p95 run time) and these.
ALERT_METRICS = (
    "throughput", "error_rate", "latency", "latency_p50", "latency_p95", "latency_p99",
    "queue_wait_p50", "queue_wait_p95", "queue_wait_p99", "completed", "failed",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Figures over one window: overall, per agent and per task type. Metrics not asked for are None."""

    window: float
    overall: Figures
    by_agent: dict[str, Figures] = field(default_factory=dict)
    by_task_type: dict[str, Figures] = field(default_factory=dict)
    metrics: tuple[str, ...] = METRICS
    source: str = "this process"

    @property
    def throughput(self) -> float | None:
        return self.overall.throughput if "throughput" in self.metrics else None

    @property
    def error_rate(self) -> float | None:
        return self.overall.error_rate if "error_rate" in self.metrics else None

    @property
    def latency(self) -> dict[str, Any] | None:
        if "latency" not in self.metrics:
            return None
        return {"queue_wait": self.overall.queue_wait, "run_time": self.overall.run_time}

    def to_dict(self) -> dict[str, Any]:
        def part(f: Figures) -> dict[str, Any]:
            data: dict[str, Any] = {"completed": f.completed, "failed": f.failed}
            if "throughput" in self.metrics:
                data["throughput"] = f.throughput
            if "error_rate" in self.metrics:
                data["error_rate"] = f.error_rate
            if "latency" in self.metrics:
                data["latency"] = {"queue_wait": f.queue_wait.to_dict(), "run_time": f.run_time.to_dict()}
            return data

        return {"window": self.window, "source": self.source, **part(self.overall),
                "by_agent": {k: part(v) for k, v in self.by_agent.items()},
                "by_task_type": {k: part(v) for k, v in self.by_task_type.items()}}  # fmt: skip


def check_metrics(metrics: Iterable[str] | None, valid: tuple[str, ...] = METRICS) -> tuple[str, ...]:
    if metrics is None:
        return valid
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, Iterable):
        raise ValidationError(f"metrics must be a list of names from {', '.join(valid)}; got {metrics!r}",
                              field="metrics")  # fmt: skip
    chosen = []
    for metric in metrics:
        if not isinstance(metric, str) or metric not in valid:
            raise ValidationError(
                f"unknown metric {metric!r}; valid metrics: {', '.join(valid)}.{suggest(str(metric), valid)}",
                field="metrics",
            )
        chosen.append(metric)
    return tuple(chosen)


def window_seconds(window: Any) -> float:
    seconds = parse_duration(window, "window")
    if seconds <= 0:
        raise ValidationError(f"window must be positive, got {window!r}", field="window")
    return seconds


def observations(runtime: Runtime, since: float) -> tuple[list[Observation], str]:
    """Attempts that ended after ``since``: this engine's (in memory), else the database's; and which."""
    return runtime.read(lambda backend: backend.observations(since))


class PerformanceMonitor(AlertSource):
    """Throughput (tasks/s), latency (queue wait and run time: p50, p95, p99) and error rate."""

    source = rule_prefix = "performance"

    def get_performance(self, metrics: Iterable[str] | None = None, window: float | str = "60s") -> PerformanceReport:
        """Figures over the last ``window``, overall and per agent and task type (``metrics``: which of
        throughput, latency, error_rate; default all)."""
        chosen = check_metrics(metrics)
        seconds = window_seconds(window)
        runtime = self.runtime
        now = runtime.clock.now()
        found, source = observations(runtime, now - seconds)
        return PerformanceReport(seconds, summarize(found, now, seconds), breakdown(found, now, seconds, "agent"),
                                 breakdown(found, now, seconds, "task_type"), chosen, source)  # fmt: skip

    def get_series(self, window: float | str = "1h", points: int = 12) -> list[dict[str, Any]]:
        """The last ``window`` cut into ``points`` equal slices, oldest first: each slice's end (``at``) and its
        figures (as ``get_performance`` gives them over that slice)."""
        seconds = window_seconds(window)
        if not isinstance(points, int) or not 1 <= points <= 120:
            raise ValidationError(f"points must be a whole number from 1 to 120, got {points!r}", field="points")
        now = self.runtime.clock.now()
        found, _ = observations(self.runtime, now - seconds)
        step = seconds / points
        series = []
        for i in range(points):
            end = now - seconds + step * (i + 1)
            figures = PerformanceReport(step, summarize(found, end, step)).to_dict()
            del figures["by_agent"], figures["by_task_type"]
            series.append({"at": end, **figures})
        return series

    def set_alert(
        self, metric: str, threshold: float, callback: Callable[[Alert], Any], *, window: float | str = "60s",
        above: bool = True, agent: str | None = None, task_type: str | None = None, hysteresis: float | None = None,
        cooldown: float | str | None = None,
    ) -> str:  # fmt: skip
        """Call ``callback(alert)`` (sync or async) when ``metric`` over ``window`` crosses ``threshold`` (for one
        ``agent`` or ``task_type`` if given); returns the rule id. It fires once per crossing: not again until the
        value came back by ``hysteresis`` (default 10%) and ``cooldown`` (default: the window) has passed."""
        (name,) = check_metrics([metric], ALERT_METRICS)
        for field_name, value in (("agent", agent), ("task_type", task_type)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValidationError(f"{field_name} must be a non-empty string, got {value!r}", field=field_name)
        if agent is not None and task_type is not None:
            raise ValidationError("watch one agent or one task type, not both", field="agent")
        seconds = window_seconds(window)
        quiet = seconds if cooldown is None else parse_duration(cooldown, "cooldown")
        scope, subject = (
            ("agent", agent) if agent is not None else ("task_type", task_type) if task_type else (None, None)
        )
        runtime = self.runtime
        return self._watch(name, threshold, callback, value=lambda r, now: _watched(runtime, r, now), subject=subject,
                           above=above, hysteresis=hysteresis, cooldown=quiet, window=seconds, scope=scope)  # fmt: skip


def _watched(runtime: Runtime, rule: AlertRule, now: float) -> float | None:
    window = rule.window or 60.0
    found, _ = observations(runtime, now - window)
    if rule.scope == "agent":
        found = [o for o in found if o.agent_id == rule.subject]
    elif rule.scope == "task_type":
        found = [o for o in found if o.task_type == rule.subject]
    if not found and rule.metric not in ("throughput", "completed", "failed"):
        return None  # no error rate or latency without attempts; but no attempts is a throughput of 0
    return value_of(rule.metric, summarize(found, now, window))
