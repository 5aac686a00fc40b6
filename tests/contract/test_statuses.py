"""Statuses read straight from the stored rows are the statuses of the tasks' records, whatever the row holds."""

from __future__ import annotations

from dataclasses import fields, replace

from pepper.model import codec
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.status import TaskError
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.store.protocol import TaskSave, WriteSet

ME = "worker-me"


def tasks():
    """Specs with every column a status shows set one way or another."""
    return [
        build_task(task_id="plain", task_type="t", now=1.0),
        build_task(
            task_id="rich",
            task_type="report",
            priority="high",
            dependencies=["plain"],
            inputs={"pages": [1, 2], "title": "é ✓"},
            policy="retry(2)",
            now=2.0,
        ),
        build_task(task_id="later", task_type="t", inputs=[1, "two", None], delay=60, now=3.0),
        build_task(task_id="with/slash and space", task_type="t", metadata={"owner": "ops"}, now=4.0),
        build_task(task_id="failed", task_type="t", policy="dead_letter", now=5.0),
        build_task(task_id="skipped", task_type="t", now=6.0),
        build_task(task_id="running", task_type="t", max_retries=3, now=7.0),
        build_task(task_id="cancelled", task_type="t", now=8.0),
    ]


def records(specs):
    """How far each got: completed with a result, failed with an error, parked, skipped, running, cancelled."""
    by_id = {task.task_id: task for task in specs}
    result = codec.encode({"rows": [1, 2], "ok": True})
    done = dict(
        state=TaskState.COMPLETED,
        attempts=1,
        agent_id="a",
        started_at=10.0,
        finished_at=11.0,
        result=codec.decode(result),
        result_json=result,
        progress=1.0,
    )
    return [
        TaskRecord(by_id["plain"], **done),
        TaskRecord(by_id["rich"], **done),
        TaskRecord(by_id["later"], TaskState.PENDING, ready_at=3.0),
        TaskRecord(
            by_id["with/slash and space"],
            TaskState.PARKED,
            attempts=2,
            failures=2,
            agent_id="a",
            error=TaskError("Boom", "it broke", kind="error"),
            parked_at=20.0,
            reason="parked",
        ),
        TaskRecord(
            by_id["failed"],
            TaskState.FAILED,
            attempts=1,
            failures=1,
            finished_at=12.0,
            next_attempt_at=None,
            error=TaskError("TimeoutError", "too slow", kind="timeout"),
            outcome=TaskOutcome.ABORTED,
        ),
        TaskRecord(
            by_id["skipped"],
            TaskState.COMPLETED,
            finished_at=13.0,
            outcome=TaskOutcome.SKIPPED,
            reason="its condition was false",
        ),
        TaskRecord(
            by_id["running"],
            TaskState.IN_PROGRESS,
            attempts=1,
            agent_id="a",
            owner=ME,
            started_at=14.0,
            progress=0.25,
            progress_message="a quarter",
        ),
        TaskRecord(
            by_id["cancelled"], TaskState.CANCELLED, finished_at=15.0, reason="stopped by hand", cancel_requested=True
        ),
    ]


def test_statuses_read_from_rows_are_the_records_statuses(store):
    specs = tasks()
    store.commit(WriteSet(submissions=[specs]), ME)
    ids = [task.task_id for task in specs]
    assert store.get_statuses(ids) == {tid: record.to_status() for tid, record in store.get_tasks(ids).items()}
    saves = [TaskSave.of(record, 1) for record in records(specs)]
    assert store.commit(WriteSet(saves=saves), ME).conflicts == set()
    stored = store.get_tasks(ids)
    statuses = store.get_statuses(ids)
    assert statuses == {tid: record.to_status() for tid, record in stored.items()}
    for tid, status in statuses.items():  # of the same types too (a text equals its StrEnum member)
        want = stored[tid].to_status()
        assert [type(getattr(status, f.name)) for f in fields(status)] == [
            type(getattr(want, f.name)) for f in fields(want)
        ]
    assert statuses["rich"].result == {"rows": [1, 2], "ok": True} and statuses["rich"].policy is not None
    assert statuses["failed"].error == TaskError("TimeoutError", "too slow", kind="timeout")
    assert statuses["skipped"].outcome is TaskOutcome.SKIPPED
    assert statuses["later"].not_before is not None and statuses["later"].inputs == [1, "two", None]


def test_unknown_and_unstorable_ids_are_left_out(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="here", task_type="t", now=1.0)]]), ME)
    statuses = store.get_statuses(["here", "nowhere", "bad\x00id", "\ud800"])
    assert list(statuses) == ["here"]
    assert store.get_statuses([]) == {}


def test_a_large_read_goes_in_chunks(store):
    specs = [build_task(task_id=f"many-{i:05}", task_type="t", now=1.0) for i in range(2500)]
    store.commit(WriteSet(submissions=[specs]), ME)
    done = [replace(TaskRecord(t, TaskState.PENDING), state=TaskState.COMPLETED, finished_at=2.0) for t in specs[::2]]
    store.commit(WriteSet(saves=[TaskSave.of(record, 1) for record in done]), ME)
    statuses = store.get_statuses([t.task_id for t in specs])
    assert len(statuses) == 2500
    assert sum(1 for s in statuses.values() if s.state is TaskState.COMPLETED) == 1250
