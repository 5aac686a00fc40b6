"""Measured resource usage: real figures, or a plain statement of why there are none."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pepper.errors import ValidationError, shown, suggest

#: What can be measured, and in which unit.
METRICS = {"cpu": "%", "memory": "MB", "storage": "MB"}


def check_metrics(metrics: Any) -> tuple[str, ...]:
    """Validate a list of metric names (``cpu``, ``memory``, ``storage``)."""
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, Iterable):
        valid = ", ".join(METRICS)
        raise ValidationError(f"metrics must be a metric's name or a list of them ({valid}), got {shown(metrics)}")
    names = tuple(metrics)
    for name in names:
        if name not in METRICS:
            valid = ", ".join(METRICS)
            raise ValidationError(f"unknown metric {name!r}; valid metrics: {valid}.{suggest(str(name), METRICS)}")
    return names


@dataclass(frozen=True, slots=True)
class Measurement:
    """One figure: ``value`` in ``unit`` (cpu: % of one core), or ``None`` with the ``reason``."""

    value: float | None
    unit: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(data.get("value"), data["unit"], data.get("reason"))

    def __str__(self) -> str:
        if self.value is None:
            return f"not measured ({self.reason})"
        return f"{self.value:g} {self.unit}"


@dataclass(frozen=True, slots=True)
class AgentUsage:
    """What an agent really uses, measured at ``sampled_at`` by the worker that runs it."""

    agent_id: str
    sampled_at: float | None
    measurements: Mapping[str, Measurement] = field(default_factory=dict)
    worker_id: str | None = None

    def __getitem__(self, metric: str) -> Measurement:
        return self.measurements[metric]

    @property
    def cpu(self) -> Measurement | None:
        return self.measurements.get("cpu")

    @property
    def memory(self) -> Measurement | None:
        return self.measurements.get("memory")

    @property
    def storage(self) -> Measurement | None:
        return self.measurements.get("storage")

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "sampled_at": self.sampled_at,
            "worker_id": self.worker_id,
            "measurements": {k: v.to_dict() for k, v in self.measurements.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentUsage:
        """The usage ``to_dict`` gave."""
        measured = {k: Measurement.from_dict(v) for k, v in data["measurements"].items()}
        return cls(data["agent_id"], data.get("sampled_at"), measured, data.get("worker_id"))
