"""A stored row tells whether an attempt of this worker was taken over by another worker, or only lost a claim race
(or shows this worker's own write)."""

from __future__ import annotations

import pytest

from pepper.engine.hooks import WORKER_LOST, taken_over
from pepper.model.record import TaskRecord
from pepper.model.status import TaskError
from pepper.model.submission import build_task
from pepper.model.task import TaskState


def _record(state: TaskState, attempts: int, owner: str | None, error: TaskError | None = None) -> TaskRecord:
    task = build_task(task_id="T", task_type="t", now=0.0)
    return TaskRecord(task, state, attempts=attempts, owner=owner, error=error)


LOST = TaskError(WORKER_LOST, "the worker running it was found gone", kind="interrupted")


@pytest.mark.parametrize(
    ("record", "lost"),
    [
        (_record(TaskState.IN_PROGRESS, 2, "other"), True),  # claimed again since
        (_record(TaskState.COMPLETED, 2, None), True),  # and finished there
        (_record(TaskState.PENDING, 1, None, LOST), True),  # queued again, not yet claimed
        (_record(TaskState.IN_PROGRESS, 1, "other"), False),  # the other worker's claim won over this one's
        (_record(TaskState.IN_PROGRESS, 1, "me"), False),  # still this worker's
        (_record(TaskState.COMPLETED, 1, "me"), False),  # this worker's own end, written
        (_record(TaskState.PENDING, 1, None, TaskError("ValueError", "bad")), False),  # its own failure, retried
        (_record(TaskState.CANCELLED, 1, None), False),  # cancelled while it ran
    ],
)
def test_taken_over_tells_a_take_over_from_a_lost_claim_or_an_own_write(record: TaskRecord, lost: bool) -> None:
    assert taken_over(record, 1, "me") is lost


def test_a_cancel_of_an_attempt_claimed_after_a_take_over_is_no_take_over() -> None:
    # Attempt 1 was taken over from another worker (WorkerLost); this worker claimed attempt 2, then it was
    # cancelled: the row keeps attempt 1's error, yet attempt 2 was not taken over.
    assert taken_over(_record(TaskState.CANCELLED, 2, None, LOST), 2, "me") is False
    assert taken_over(_record(TaskState.COMPLETED, 2, None, LOST), 2, "me") is False
    assert taken_over(_record(TaskState.PENDING, 2, None, LOST), 2, "me") is True  # queued again once more
