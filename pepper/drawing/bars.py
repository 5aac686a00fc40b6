"""Runs as bars: the bars of a Gantt chart of a workflow run, the notes naming the steps left out, its title,
and the status colours every picture shares."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pepper.model.workflow_run import WorkflowResult

#: The row of a bar whose step ran on no known agent.
NO_AGENT = "(no agent)"

#: Fill colour of each status, in legend order (shared by the chart and the DOT graph).
STATUS_COLORS: dict[str, str] = {
    "completed": "#2e9d4b",
    "failed": "#d62728",
    "cancelled": "#8c8c8c",
    "in_progress": "#1f77b4",
    "pending": "#f0a830",
    "blocked": "#c98a5b",
    "waiting": "#d9d9d9",
    "skipped": "#e7d36b",
    "planned": "#b9a3e3",
    "interrupted": "#b0b0b0",
}
OTHER_COLOR = "#9467bd"
HATCH = {"failed": "///", "cancelled": "..", "planned": "", "interrupted": "xx"}
_CROSS = "\u00d7"  # marks the label of a failed earlier attempt


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a Gantt chart: a step (or planned task) on a row (its agent)."""

    label: str  # step id
    row: str  # agent id (NO_AGENT when none)
    start: float  # seconds from the chart's origin
    end: float
    status: str  # completed / failed / cancelled / skipped / in_progress / planned / interrupted ...
    dependencies: tuple[str, ...] = ()
    #: The attempt number of an earlier attempt of the step (None for its last attempt, or a planned task).
    attempt: int | None = None

    @property
    def text(self) -> str:
        """What the bar says: the step id; an earlier attempt adds its number, a failed one a cross."""
        if self.attempt is None:
            return self.label
        return f"{_CROSS + ' ' if self.status == 'failed' else ''}{self.label} #{self.attempt}"

    @property
    def gid(self) -> str:
        return f"bar:{self.label}" if self.attempt is None else f"bar:{self.label}#{self.attempt}"


@dataclass(frozen=True, slots=True)
class ItemRun:
    """The task of one item of a fanned-out step (``label``: ``step[i]``), drawn instead of the step's own bar."""

    label: str
    agent_id: str | None
    started_at: float | None
    finished_at: float | None
    status: str


@dataclass(frozen=True, slots=True)
class EarlierAttempt:
    """An attempt of a step before its last one, as the store's attempt history keeps it."""

    attempt: int
    agent_id: str | None
    started_at: float | None
    ended_at: float
    status: str  # "failed" (it was retried) or "interrupted" (its worker stopped or was lost)
    error: str = ""  # ``Type: the first line of the message``


def run_bars(
    result: WorkflowResult,
    now: float | None = None,
    earlier: Mapping[str, Sequence[EarlierAttempt]] | None = None,
    items: Mapping[str, Sequence[ItemRun]] | None = None,
) -> list[Bar]:
    """A bar per attempt of each step that started, in the run's step order, timed from the earliest start
    (or the run's creation): the step's ``earlier`` attempts (see ``earlier_attempts``), then its last one; a
    step still running ends at ``now`` (default: the current time). Steps that never started are left out:
    see ``run_notes``. A fanned-out step with ``items`` is drawn as a bar per item that started."""
    origin = result.started_at
    if origin is None:
        origin = result.created_at
    starts = [a.started_at for attempts in (earlier or {}).values() for a in attempts if a.started_at is not None]
    origin = min([origin, *starts])  # a step's last attempt may not be its first
    if now is None:
        now = time.time()
    bars = []
    for step in result.steps.values():
        for past in (earlier or {}).get(step.step_id, ()):
            if past.started_at is not None:
                start = past.started_at - origin
                bars.append(Bar(step.step_id, past.agent_id or NO_AGENT, start, max(start, past.ended_at - origin),
                                past.status, attempt=past.attempt))  # fmt: skip
        for item in (items or {}).get(step.step_id, ()):
            if item.started_at is not None:
                start = item.started_at - origin
                stop = item.finished_at if item.finished_at is not None else now
                bars.append(Bar(item.label, item.agent_id or NO_AGENT, start, max(start, stop - origin), item.status,
                                tuple(step.dependencies)))  # fmt: skip
        if step.started_at is None or (items or {}).get(step.step_id):
            continue
        end = step.finished_at
        if end is None:
            end = result.finished_at if result.status.is_final and result.finished_at is not None else now
        start = step.started_at - origin
        bars.append(
            Bar(step.step_id, step.agent_id or NO_AGENT, start, max(start, end - origin), step.status,
                tuple(step.dependencies))
        )  # fmt: skip
    return bars


def run_notes(result: WorkflowResult) -> list[str]:
    """Lines naming the steps ``run_bars`` leaves out: ``skipped: a, b`` and ``never started: c (cancelled)``
    (``not started yet`` while the run is running)."""
    skipped = [s.step_id for s in result.steps.values() if s.started_at is None and s.status == "skipped"]
    other = [
        f"{s.step_id} ({s.status})" for s in result.steps.values() if s.started_at is None and s.status != "skipped"
    ]
    notes = []
    if skipped:
        notes.append("skipped: " + ", ".join(skipped))
    if other:
        notes.append(("never started: " if result.status.is_final else "not started yet: ") + ", ".join(other))
    return notes


def run_title(result: WorkflowResult) -> str:
    """``workflow - run <id> - <status>`` with the run's duration once it ended."""
    title = f"{result.workflow} - run {result.run_id} - {result.status}"
    if result.duration is not None:
        title += f" in {_seconds(result.duration)}"
    return title


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, OTHER_COLOR)


def is_dark(color: str) -> bool:
    """Whether white text reads better than black on ``color`` (``#rrggbb``)."""
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.6


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"
