"""A dependent released on an end that is not kept waits for the end that is.

A worker presumed dead (silent past ``visibility_timeout``, yet alive) finishes T1 after another worker queued T1
again: that end loses. D, which depends on T1, must not be stored ready (or claimed) on it, whether this worker
would run D or another would, and whether the end loses at its commit or to a read of the database before its
commit: D runs once, after T1's kept end, on the result T1 is stored with.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.model.status import TaskStatus
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.support import eventually

T1_THEN_D = [{"id": "T1", "type": "work"}, {"id": "D", "type": "work", "dependencies": ["T1"]}]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "shared.db")


class Recorder:
    """An agent's function that notes each attempt (task, attempt, the dependency results it was given) and holds
    T1's first attempt until ``release`` (and its second until ``finish``, with ``hold_again``)."""

    def __init__(self, *, hold_again: bool = False) -> None:
        self.ran: list[tuple[str, int, dict[str, Any]]] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.again, self.finish = threading.Event(), threading.Event()
        if not hold_again:
            self.finish.set()

    def run(self, task: pepper.TaskRun) -> str:
        self.ran.append((task.task_id, task.attempt, dict(task.dependency_results)))
        if task.task_id == "T1":
            (self.started if task.attempt == 1 else self.again).set()
            (self.release if task.attempt == 1 else self.finish).wait(30)
        return f"{task.task_id} attempt {task.attempt}"

    def let_go(self) -> None:
        self.release.set()
        self.finish.set()


def _runtime(db: str, tmp_path: Path, name: str, clock: ManualClock, **settings: Any) -> pepper.Runtime:
    return pepper.Runtime(db=db, home=str(tmp_path / name), clock=clock, visibility_timeout="30s",
                          sample_interval="1h", shutdown_timeout="2s", **settings)  # fmt: skip


def _silent_and_other(db: str, tmp_path: Path, clock: ManualClock) -> tuple[pepper.Runtime, pepper.Runtime]:
    """A worker that neither beats nor reads the others' writes before the clock is an hour on, and another that
    does every few seconds (on hosts of their own: only the silent worker's heartbeat tells whether it lives)."""
    silent = _runtime(db, tmp_path, "silent", clock, heartbeat_interval="1h", poll_interval="1h", host_id="one")
    other = _runtime(db, tmp_path, "other", clock, heartbeat_interval="5s", poll_interval="1s", host_id="two")
    return silent, other


def _queued_again(other: pepper.Runtime, clock: ManualClock) -> TaskOrchestrator:
    """The other worker starts, finds the silent one gone (its heartbeat a minute old) and queues T1 again."""
    other.start()
    clock.advance(60)
    seen = TaskOrchestrator(other)
    eventually(lambda: seen.get_task_status("T1").state is TaskState.PENDING, "T1 queued again")
    return seen


def _ran_once_on_the_kept_end(first: TaskStatus, done: TaskStatus, recorder: Recorder) -> None:
    assert (first.state, first.result, first.attempts) == (TaskState.COMPLETED, "T1 attempt 2", 2)
    assert (done.state, done.result, done.attempts) == (TaskState.COMPLETED, "D attempt 1", 1)
    assert recorder.ran == [("T1", 1, {}), ("T1", 2, {}), ("D", 1, {"T1": "T1 attempt 2"})]
    assert done.started_at is not None and first.finished_at is not None and done.started_at >= first.finished_at


def test_a_dependent_is_not_claimed_on_the_end_of_an_attempt_that_was_taken_over(db, tmp_path):
    # D would run here, claimed in the very commit of T1's end that loses
    clock = ManualClock(1_700_000_000.0)
    silent, other = _silent_and_other(db, tmp_path, clock)
    recorder = Recorder()
    try:
        pepper.agent("w", task_types=["work"], runtime=silent)(recorder.run)
        pepper.agent("else", task_types=["other work"], runtime=other)(lambda task: None)
        silent.start()
        orchestrator = TaskOrchestrator(silent)
        orchestrator.submit_tasks(T1_THEN_D)
        assert recorder.started.wait(30)
        _queued_again(other, clock)
        recorder.release.set()  # T1's first attempt ends; its write loses to the other worker's
        done = orchestrator.wait("D", timeout=30)
        first = orchestrator.get_task_status("T1")
    finally:
        recorder.let_go()
        silent.close()
        other.close()
    _ran_once_on_the_kept_end(first, done, recorder)


def test_a_dependent_released_on_an_end_that_was_taken_over_waits_for_the_end_that_is_kept(tmp_path):
    # D runs on the other worker (it serves D's type): the silent one only releases it. (On SQLite: PostgreSQL tells
    # the silent worker of the take-over as it happens, and its attempt is stopped before it can end, as in
    # test_taken_over; no end of it is lost then, and this worker's clock, moved on, would find it gone again.)
    db = str(tmp_path / "shared.db")
    clock = ManualClock(1_700_000_000.0)
    silent, other = _silent_and_other(db, tmp_path, clock)
    recorder = Recorder(hold_again=True)
    try:
        pepper.agent("w", task_types=["work"], runtime=silent)(recorder.run)
        pepper.agent("else", task_types=["other work"], runtime=other)(recorder.run)
        silent.start()
        orchestrator = TaskOrchestrator(silent)
        orchestrator.submit_tasks([T1_THEN_D[0], {**T1_THEN_D[1], "type": "other work"}])
        assert recorder.started.wait(30)
        seen = _queued_again(other, clock)
        recorder.release.set()  # T1's first attempt ends; its write loses to the other worker's
        assert recorder.again.wait(30)  # the silent worker runs T1 again: while it does, D waits, as stored
        for _ in range(3):
            clock.advance(1)  # the other worker reads the database every second of the clock
            assert other.store.get_tasks(["D"])["D"].state is TaskState.BLOCKED
        recorder.finish.set()
        stored = other.store.get_tasks
        eventually(lambda: stored(["T1"])["T1"].state is TaskState.COMPLETED, "T1's second attempt stored")

        def settled() -> bool:
            clock.advance(1)
            return seen.get_task_status("D").state.is_final

        eventually(settled, "D to run on the other worker")
        done, first = seen.get_task_status("D"), seen.get_task_status("T1")
    finally:
        recorder.let_go()
        silent.close()
        other.close()
    _ran_once_on_the_kept_end(first, done, recorder)


@pytest.mark.parametrize("finished_dependency", [False, True])
def test_a_dependent_claimed_on_an_end_that_a_read_finds_lost_before_its_commit_waits_for_the_end_kept(
    tmp_path, monkeypatch, caplog, finished_dependency
):
    # T1's end and D's claim wait for a commit the database was too busy for, and a read of the database meanwhile
    # shows T1 queued again by another worker: neither is written. (With ``finished_dependency``, D also depends
    # on E, which finished long before and is no longer held in memory: it is read back for D too.)
    monkeypatch.setattr("pepper.engine.failed_commits.RETRY_COMMIT", (3600.0,))  # retried only when told here
    db = str(tmp_path / "shared.db")
    worker = _runtime(db, tmp_path, "worker", ManualClock(1_700_000_000.0), busy_timeout=0.05,
                      heartbeat_interval="1h", poll_interval="1h", keep_finished=0)  # fmt: skip
    recorder = Recorder()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        pepper.agent("w", task_types=["work"], runtime=worker)(recorder.run)
        worker.start()
        orchestrator = TaskOrchestrator(worker)
        specs = T1_THEN_D
        if finished_dependency:
            orchestrator.submit_task("E", "work")
            orchestrator.wait("E", timeout=30)
            recorder.ran.clear()
            specs = [T1_THEN_D[0], {**T1_THEN_D[1], "dependencies": ["T1", "E"]}]
        orchestrator.submit_tasks(specs)
        assert recorder.started.wait(30)
        holder.execute("BEGIN IMMEDIATE")  # the database's write lock: the worker's next commit fails as busy
        with caplog.at_level(logging.ERROR, logger="pepper.engine"):
            recorder.release.set()
            eventually(lambda: "commit failed" in caplog.text, "the commit of T1's end and D's claim to fail")
        # another worker queues T1 again (it took this one for dead), and the database is free again
        holder.execute("UPDATE tasks SET state = 'pending', owner = NULL, ready_at = 1700000060.0, writer = 'other', "
                       "version = version + 1, change_seq = change_seq + 100 WHERE task_id = 'T1'")  # fmt: skip
        holder.execute("COMMIT")
        service = worker.portal().call(worker.engine())

        async def read_then_commit() -> None:  # a read of the database, then the commit tried again
            engine = service.engine
            engine.load(["T1"], cause="poll")
            if engine.flush_handle is not None:
                engine.flush_handle.cancel()
            engine.flush()

        worker.portal().call(read_then_commit())
        stored = worker.store.get_tasks(["T1", "D"])
        assert stored["D"].state is TaskState.BLOCKED and stored["D"].version == 1  # D's claim was not written
        done = orchestrator.wait("D", timeout=30)
        first = orchestrator.get_task_status("T1")
    finally:
        recorder.let_go()
        holder.close()
        worker.close()
    if finished_dependency:
        assert recorder.ran[-1] == ("D", 1, {"T1": "T1 attempt 2", "E": "E attempt 1"})
        recorder.ran[-1] = ("D", 1, {"T1": "T1 attempt 2"})
    _ran_once_on_the_kept_end(first, done, recorder)
