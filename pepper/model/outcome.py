"""How a final task ended, beyond its state: the facts a run driver decides on (never read from ``reason``)."""

from __future__ import annotations

from enum import StrEnum


class TaskOutcome(StrEnum):
    """A note stored with a final task: ``skipped`` (completed without running: a workflow condition was false,
    or its recovery policy skipped it) or ``aborted`` (failed, and its recovery policy stops its workflow run)."""

    SKIPPED = "skipped"
    ABORTED = "aborted"

    @classmethod
    def of(cls, value: str | None) -> TaskOutcome | None:
        """The outcome stored as ``value`` (None: the task ended plainly, or is not final)."""
        return None if value is None else cls(value)

    def __str__(self) -> str:
        return self.value
