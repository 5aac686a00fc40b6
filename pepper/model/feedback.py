"""Feedback on a finished task: a rating from 1 to 5, a comment, and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pepper.errors import ValidationError
from pepper.model import codec


def check_rating(rating: Any) -> int:
    """A rating must be a whole number from 1 (poor) to 5 (excellent)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError(f"rating must be a whole number from 1 to 5, got {rating!r}", field="rating")
    return rating


@dataclass(frozen=True, slots=True)
class TaskFeedback:
    """What someone thought of a task's outcome; it feeds the score of the agent that ran it."""

    task_id: str
    rating: int
    comment: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    agent_id: str | None = None
    task_type: str | None = None
    feedback_id: int | None = None

    @classmethod
    def build(cls, task_id: str, rating: Any, comment: Any = None, metrics: Any = None, **more: Any) -> TaskFeedback:
        if comment is not None and not isinstance(comment, str):
            raise ValidationError(f"comment must be text, got {type(comment).__name__}", field="comment")
        if comment is not None:
            codec.check_utf8(comment, comment, "comment")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise ValidationError(f"metrics must be a mapping, got {type(metrics).__name__}", field="metrics")
        values, _ = codec.normalise(dict(metrics or {}), "metrics", depth=codec.MAX_DEPTH)
        return cls(task_id, check_rating(rating), comment, values, **more)

    @classmethod
    def from_row(cls, row: codec.Row) -> TaskFeedback:
        return cls(row["task_id"], row["rating"], row["comment"], codec.decode(row["metrics"]), row["created_at"],
                   row["agent_id"], row["task_type"], row["feedback_id"])  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "feedback_id": self.feedback_id, "task_id": self.task_id, "agent_id": self.agent_id,
            "task_type": self.task_type, "rating": self.rating, "comment": self.comment,
            "metrics": dict(self.metrics), "created_at": self.created_at,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskFeedback:
        """The feedback ``to_dict`` gave (an HTTP answer's)."""
        return cls(data["task_id"], data["rating"], data.get("comment"), dict(data.get("metrics") or {}),
                   data.get("created_at", 0.0), data.get("agent_id"), data.get("task_type"),
                   data.get("feedback_id"))  # fmt: skip
