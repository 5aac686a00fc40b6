"""A commit reported failed that went through all the same (the connection broke as the database committed):
the engine's retry finds its own rows, and the task neither hangs nor runs twice. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import ResourceAllocator, TaskOrchestrator, WorkflowController
from pepper.errors import StoreBusyError
from pepper.model.record import STORED_FIELDS
from pepper.model.task import TaskState
from pepper.store.location import open_store
from pepper.store.protocol import TaskSave, WriteSet
from tests.conftest import FAST
from tests.support import eventually

STATE = STORED_FIELDS.index("state")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "pepper.db")


@pytest.fixture
def runtime(db: str, tmp_path: Path) -> Iterator[pepper.Runtime]:
    rt = pepper.Runtime(db=db, home=str(tmp_path / "home"), resources={"cpu": 2}, **FAST)
    yield rt
    rt.close()


def lose_the_answer_once(runtime: pepper.Runtime, matches: Callable[[WriteSet], bool]) -> list[WriteSet]:
    """The first commit that ``matches`` is written, then reported failed as a dropped connection would be."""
    store = runtime.store
    real = store.commit
    tripped: list[WriteSet] = []

    def commit(writes: WriteSet, writer: str, now: float = 0.0) -> Any:
        result = real(writes, writer, now)
        if not tripped and matches(writes):
            tripped.append(writes)
            raise StoreBusyError(f"{store.location}: server closed the connection unexpectedly")
        return result

    store.commit = commit  # type: ignore[method-assign]
    return tripped


def saving(task_id: str, state: str) -> Callable[[WriteSet], bool]:
    """True of a commit that saves ``task_id`` (or a task whose id ends with it) in ``state``."""

    def matches(writes: WriteSet) -> bool:
        return any(
            s.task.task_id.endswith(task_id) and str(getattr(s.values[STATE], "value", s.values[STATE])) == state
            for s in writes.saves
        )

    return matches


def counting_agent(runtime: pepper.Runtime) -> list[str]:
    ran: list[str] = []

    @pepper.agent("echo", task_types=["t"], runtime=runtime)
    def echo(task: Any) -> str:
        ran.append(task.task_id)
        return task.task_id

    return ran


@pytest.mark.parametrize("lost", ["in_progress", "completed"], ids=["claim", "end"])
def test_a_claim_or_end_that_was_stored_though_its_commit_failed_neither_hangs_nor_runs_twice(runtime, lost):
    ran = counting_agent(runtime)
    tripped = lose_the_answer_once(runtime, saving("x", lost))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "x", "type": "t"}, {"id": "y", "type": "t", "dependencies": ["x"]}])
    statuses = orchestrator.wait(["x", "y"], timeout=30)
    assert tripped
    assert [(s.state.value, s.result, s.attempts) for s in statuses] == [("completed", "x", 1), ("completed", "y", 1)]
    assert ran == ["x", "y"]


def test_a_claim_whose_lease_was_stored_though_its_commit_failed_runs_once_and_gives_its_lease_back(runtime):
    ran = counting_agent(runtime)
    tripped = lose_the_answer_once(runtime, saving("x", "in_progress"))
    orchestrator = TaskOrchestrator(runtime)
    whole_pool = {"resources": {"cpu": 2}}  # so the second runs only once the first's lease is given back
    orchestrator.submit_tasks([
        {"id": "x", "type": "t", "requirements": whole_pool},
        {"id": "y", "type": "t", "dependencies": ["x"], "requirements": whole_pool},
    ])  # fmt: skip
    statuses = orchestrator.wait(["x", "y"], timeout=30)
    assert tripped
    assert [(s.state.value, s.attempts) for s in statuses] == [("completed", 1), ("completed", 1)]
    assert ran == ["x", "y"]
    live = runtime.store.fetch("SELECT lease_id FROM leases WHERE released_at IS NULL AND task_id IS NOT NULL")
    assert list(live) == []


def test_a_retry_that_was_stored_though_its_commit_failed_keeps_one_record_of_the_failed_attempt(runtime):
    ran: list[int] = []

    @pepper.agent("flaky", task_types=["t"], runtime=runtime)
    def flaky(task: Any) -> str:
        ran.append(task.attempt)
        if task.attempt == 1:
            raise RuntimeError("the first attempt fails")
        return task.task_id

    tripped = lose_the_answer_once(runtime, saving("x", "pending"))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task(task_id="x", task_type="t", max_retries=1)
    (status,) = orchestrator.wait(["x"], timeout=30)
    assert tripped
    assert (status.state.value, status.attempts, ran) == ("completed", 2, [1, 2])
    assert [tuple(row) for row in runtime.store.fetch("SELECT attempt, outcome FROM attempts")] == [(1, "retry")]


def test_a_submission_that_was_stored_though_its_commit_failed_runs_once(runtime):
    ran = counting_agent(runtime)
    tripped = lose_the_answer_once(runtime, lambda writes: bool(writes.submissions))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "x", "type": "t"}, {"id": "y", "type": "t", "dependencies": ["x"]}])
    assert [s.state.value for s in orchestrator.wait(["x", "y"], timeout=30)] == ["completed", "completed"]
    assert tripped and ran == ["x", "y"]


def test_a_workflow_run_whose_start_was_stored_though_its_commit_failed_runs_its_steps_once(runtime):
    ran = counting_agent(runtime)
    workflow = WorkflowController("pair", runtime=runtime)
    workflow.add_step("first", "t")
    workflow.add_step("second", "t", dependencies=["first"])
    tripped = lose_the_answer_once(runtime, lambda writes: bool(writes.runs))
    result = workflow.run(timeout=30)
    assert tripped
    assert result.status == "completed" and [s.status for s in result] == ["completed", "completed"]
    assert sorted(task_id.rsplit("/", 1)[1] for task_id in ran) == ["first", "second"]
    assert [tuple(row) for row in runtime.store.fetch("SELECT state FROM runs")] == [("completed",)]


def test_a_workflow_step_whose_end_was_stored_though_its_commit_failed_lets_the_run_go_on(runtime):
    ran = counting_agent(runtime)
    workflow = WorkflowController("pair", runtime=runtime)
    workflow.add_step("first", "t")
    workflow.add_step("second", "t", dependencies=["first"])
    tripped = lose_the_answer_once(runtime, saving("/first", "completed"))
    result = workflow.run(timeout=30)
    assert tripped
    assert result.status == "completed" and [s.status for s in result] == ["completed", "completed"]
    assert len(ran) == 2


def test_a_claim_lost_to_another_worker_is_not_started_while_its_row_cannot_be_read_back(runtime, db):
    """The claim's commit failed and wrote nothing; meanwhile another worker claimed the task. The retry loses
    to that claim, and reading the row back fails at first: the task must not start here on what memory says."""
    ran = counting_agent(runtime)
    store, other = runtime.store, open_store(db, create=False)
    other.workers.register("other-worker", "elsewhere", 1, time.time())  # alive: it beats within the timeout
    real_commit, real_get, real_changes = store.commit, store.get_tasks, store.changes_since
    unreadable: list[int] = []

    def commit(writes: WriteSet, writer: str, now: float = 0.0) -> Any:
        if not unreadable and saving("x", "in_progress")(writes):
            stored = other.get_tasks(["x"])["x"]
            claim = replace(stored, state=TaskState.IN_PROGRESS, attempts=1, owner="other-worker", agent_id="echo")
            other.commit(WriteSet(saves=[TaskSave.of(claim, stored.version)]), "other-worker")
            unreadable.append(3)  # the next three reads of the task's row fail
            raise StoreBusyError(f"{store.location}: database or disk is full")
        return real_commit(writes, writer, now)

    def unread() -> None:
        if unreadable and unreadable[0]:
            unreadable[0] -= 1
            raise StoreBusyError(f"{store.location}: server closed the connection unexpectedly")

    def get_tasks(task_ids: Any) -> Any:
        if "x" in task_ids:
            unread()
        return real_get(task_ids)

    def changes_since(*args: Any) -> Any:  # nor does the engine hear of the other claim by its poll at first
        unread()
        return real_changes(*args)

    store.commit, store.get_tasks, store.changes_since = commit, get_tasks, changes_since  # type: ignore[method-assign]
    try:
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task(task_id="x", task_type="t")
        eventually(lambda: unreadable == [0], "the reads of the row to fail, then succeed")
        # the other worker finishes the task; this one learns of it and never ran it
        stored = other.get_tasks(["x"])["x"]
        done = replace(stored, state=TaskState.COMPLETED, result="by the other", result_json='"by the other"')
        other.commit(WriteSet(saves=[TaskSave.of(done, stored.version)]), "other-worker")
        (status,) = orchestrator.wait(["x"], timeout=30)
    finally:
        other.close()
    assert (status.state.value, status.result) == ("completed", "by the other")
    assert ran == []


@pytest.mark.parametrize("written", [True, False], ids=["stored", "not-stored"])
def test_an_allocation_whose_grant_was_reported_failed_is_the_callers_exactly_when_it_was_stored(runtime, written):
    ledger = runtime.store.leases
    real = ledger.grant
    tripped: list[str] = []

    def grant(lease: Any, now: float) -> Any:
        if not tripped:
            tripped.append(lease.lease_id)
            if written:
                real(lease, now)
            raise StoreBusyError(f"{runtime.store.location}: server closed the connection unexpectedly")
        return real(lease, now)

    ledger.grant = grant  # type: ignore[method-assign]
    allocator = ResourceAllocator(runtime)
    if written:  # the caller gets the allocation, and can give it back
        allocation = allocator.allocate("holder", {"cpu": 2})
        assert allocation.lease_id == tripped[0]
        assert [lease.lease_id for lease in allocator.allocations("holder")] == tripped
        assert allocator.release(allocation) is True
    else:  # the caller is told, and nothing is held
        with pytest.raises(StoreBusyError):
            allocator.allocate("holder", {"cpu": 2})
        assert allocator.allocations("holder") == []
    again = allocator.allocate("holder", {"cpu": 2})  # the whole pool is free again
    assert allocator.release(again) is True
