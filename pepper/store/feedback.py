"""Ratings given on tasks, and the history of attempts' outcomes that pepper learns agents' performance from."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pepper.model import codec
from pepper.model.feedback import TaskFeedback

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore

Outcome = tuple[str, str, bool, "float | None", float]
EndedAttempt = tuple[str, "str | None", bool, "float | None", "float | None", float]


class FeedbackLog:
    """Reads and writes of the ``feedback`` table."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def add(self, feedback: TaskFeedback) -> TaskFeedback:
        params = (feedback.task_id, feedback.agent_id, feedback.task_type, feedback.rating, feedback.comment,
                  codec.encode(dict(feedback.metrics)), feedback.created_at)  # fmt: skip
        rows = self._store.write_returning("insert_feedback", params)
        return replace(feedback, feedback_id=rows[0][0])

    def of_task(self, task_id: str) -> list[TaskFeedback]:
        return [TaskFeedback.from_row(r) for r in self._store.query("feedback_of_task", (task_id,))]

    def after(self, feedback_id: int) -> list[TaskFeedback]:
        """Feedback given after ``feedback_id`` (oldest first)."""
        return [TaskFeedback.from_row(r) for r in self._store.query("feedback_after", (feedback_id,))]

    def last_id(self) -> int:
        return int(self._store.query("last_feedback_id")[0][0])

    def ratings(self, since: float) -> list[tuple[str, int, float]]:
        """Ratings ``(agent, rating, at)`` given since ``since``."""
        return [(r[0], r[1], r[2]) for r in self._store.query("ratings_since", (since,))]


class AttemptLog:
    """Reads of how attempts ended (the ``attempts`` table and the tasks' last attempts)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def outcomes(self, since: float) -> list[Outcome]:
        """Outcomes ``(agent, type, ok, duration, at)`` of attempts that ended since ``since``."""
        return [(r[0], r[1], bool(r[2]), r[3], r[4]) for r in self._store.query("outcomes_since", (since, since))]

    def ended(self, since: float) -> list[EndedAttempt]:
        """``(task type, agent, ok, ready at, started at, ended at)`` of attempts that ended after ``since``."""
        rows = self._store.query("ended_attempts_since", (since, since))
        return [(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]
