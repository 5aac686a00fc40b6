"""Rating a task: checked against the stored task, then kept in the feedback log."""

from __future__ import annotations

from dataclasses import replace

from pepper.errors import TaskNotFoundError, ValidationError
from pepper.model.feedback import TaskFeedback
from pepper.store.protocol import Store


def rate_task(store: Store, feedback: TaskFeedback, now: float) -> TaskFeedback:
    """Store ``feedback`` for its task, naming the agent that ran it; the task must have finished."""
    record = store.get_tasks([feedback.task_id]).get(feedback.task_id)
    if record is None:
        raise TaskNotFoundError(feedback.task_id)
    if not record.state.is_final or record.agent_id is None:
        raise ValidationError(
            f"task {feedback.task_id!r} is {record.state.value} and has not finished on an agent yet; "
            "rate it once it has",
            field="task_id",
        )
    return store.feedback.add(
        replace(feedback, agent_id=record.agent_id, task_type=record.task.task_type, created_at=now)
    )
