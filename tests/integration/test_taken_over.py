"""A worker presumed dead (silent past ``visibility_timeout``, yet alive) finishes a task another worker took over:
the other worker's result is kept, and the silent one reports its attempt as taken over, not as completed."""

from __future__ import annotations

import io
import logging
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import pepper
from pepper.cli.reporter import Reporter
from pepper.core import TaskOrchestrator
from pepper.engine.hooks import EngineHook
from pepper.model.record import TaskRecord
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.support import eventually


class Lost(EngineHook):
    """Records what the engine says of attempts it lost."""

    def __init__(self) -> None:
        self.lost: list[tuple[str, int, TaskState, int]] = []

    def on_attempt_lost(self, task_id: str, attempt: int, record: TaskRecord) -> None:
        self.lost.append((task_id, attempt, record.state, record.attempts))


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "shared.db")


def _runtime(db: str, tmp_path: Path, name: str, clock: ManualClock, **settings: Any) -> pepper.Runtime:
    return pepper.Runtime(db=db, home=str(tmp_path / name), clock=clock,
                          visibility_timeout="30s", sample_interval="1h", shutdown_timeout="2s",
                          **settings)  # fmt: skip


@pytest.mark.parametrize("learns", ["when_it_writes", "when_it_reads"])
def test_a_worker_presumed_dead_reports_its_finished_attempt_as_taken_over(db, tmp_path, learns, caplog):
    clock = ManualClock(1_700_000_000.0)
    # on hosts of their own (as on two machines): only the silent worker's heartbeat tells whether it lives
    # it neither beats nor reads the others' writes before the clock is an hour on
    silent = _runtime(db, tmp_path, "silent", clock, heartbeat_interval="1h", poll_interval="1h", host_id="one")
    other = _runtime(db, tmp_path, "other", clock, heartbeat_interval="5s", poll_interval="1s", host_id="two")
    out = io.StringIO()
    reporter, lost = Reporter(Console(file=out, width=300, force_terminal=False)), Lost()
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def paused(task):
        ran.append("silent")
        started.set()
        release.wait(30)
        return "from the silent worker"

    def quick(task):
        ran.append("other")
        return "from the other worker"

    try:
        pepper.agent("w", task_types=["work"], runtime=silent)(paused)
        silent.add_hook(reporter)
        silent.add_hook(lost)
        silent.start()
        TaskOrchestrator(silent).submit_task("T1", "work")
        assert started.wait(30)
        pepper.agent("w", task_types=["work"], runtime=other)(quick)
        other.start()
        with caplog.at_level(logging.WARNING, logger="pepper.engine"):
            clock.advance(60)  # the silent worker's heartbeat is 60 s old: the other one takes its task over
            done = TaskOrchestrator(other).wait("T1", timeout=30)
        assert (done.state, done.result, done.attempts) == (TaskState.COMPLETED, "from the other worker", 2)
        assert re.search(r"\(pid \d+ on one\) has not been heard from for \d+s; its running tasks are taken over",
                         caplog.text)  # fmt: skip
        assert "is gone" not in caplog.text  # its process is alive: pepper knows only that it is silent
        if learns == "when_it_reads":  # it reads the other's writes first: its attempt is stopped
            clock.advance(3600)
            eventually(lambda: lost.lost, "the silent worker to learn its attempt was taken over")
        release.set()  # when_it_writes: the attempt ends first, and its write loses to the other's
        eventually(lambda: lost.lost, "the silent worker to learn its attempt was taken over")
        eventually(lambda: not silent.has_work(), "the silent worker to settle")
        # told once, with the task as stored then: completed by the other worker, or (PostgreSQL tells of its
        # claim at once) still running there
        [(task_id, attempt, seen, attempts)] = lost.lost
        assert (task_id, attempt, attempts) == ("T1", 1, 2)
        assert seen is TaskState.COMPLETED or (seen is TaskState.IN_PROGRESS and db.startswith("postgres"))
        status = TaskOrchestrator(silent).get_task_status("T1")
        assert (status.state, status.result, status.attempts) == (TaskState.COMPLETED, "from the other worker", 2)
    finally:
        release.set()
        silent.close()
        other.close()
    assert sorted(ran) == ["other", "silent"]
    printed = out.getvalue()
    if seen is TaskState.COMPLETED:
        said = "another worker had taken it over and completed it (attempt 2 on w); its result was kept"
    else:
        said = "had taken it over (attempt 2 on w); its outcome will be kept"
    assert f"{said}, not this attempt's" in printed
    # PostgreSQL tells of the other's commits at once: the silent worker may read them before its attempt ends
    ways = {"finished", "stopped"} if learns == "when_it_writes" and db.startswith("postgres") else set()
    ways.add("finished" if learns == "when_it_writes" else "stopped")
    last = printed.splitlines()[-1]  # the last word on it
    assert any(last.startswith(f"⤳ T1 (work) on w {way} here, but") for way in ways), last
    assert (reporter.completed, reporter.lost) == (0, 1)
    assert "0 completed, 0 failed, 1 taken over by another worker" in str(reporter.summary())


def test_a_worker_presumed_dead_whose_task_was_only_queued_again_reports_its_attempt_as_taken_over(db, tmp_path):
    # The task is queued again under the same attempt number (no other worker can run it): the silent worker's
    # finished attempt is not kept, and it says so instead of counting it completed; it then runs the task again.
    clock = ManualClock(1_700_000_000.0)
    silent = _runtime(db, tmp_path, "silent", clock, heartbeat_interval="1h", poll_interval="1h", host_id="one")
    other = _runtime(db, tmp_path, "other", clock, heartbeat_interval="5s", poll_interval="1s", host_id="two")
    out = io.StringIO()
    reporter, lost = Reporter(Console(file=out, width=300, force_terminal=False)), Lost()
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def paused(task):
        ran.append(task.attempt)
        started.set()
        release.wait(30)
        return f"attempt {task.attempt}"

    try:
        pepper.agent("w", task_types=["work"], runtime=silent)(paused)
        pepper.agent("else", task_types=["other work"], runtime=other)(lambda task: None)
        silent.add_hook(reporter)
        silent.add_hook(lost)
        silent.start()
        TaskOrchestrator(silent).submit_task("T1", "work")
        assert started.wait(30)
        other.start()
        clock.advance(60)  # the other worker finds the silent one gone and queues its task again
        seen = TaskOrchestrator(other)
        queued = eventually(lambda: (s := seen.get_task_status("T1")).state is TaskState.PENDING and s, "T1 queued")
        assert (queued.attempts, queued.error.type if queued.error else None) == (1, "WorkerLost")
        release.set()  # the attempt ends; its write loses to the other worker's
        eventually(lambda: lost.lost, "the silent worker to learn its attempt was taken over")
        done = TaskOrchestrator(silent).wait("T1", timeout=30)  # it runs the task again itself
        assert (done.state, done.result, done.attempts) == (TaskState.COMPLETED, "attempt 2", 2)
    finally:
        release.set()
        silent.close()
        other.close()
    assert ran == [1, 2]
    assert lost.lost == [("T1", 1, TaskState.PENDING, 1)]
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("→")]
    said = "but another worker presumed this one dead and queued the task to run again; this attempt's outcome is not"
    said += " kept"
    if len(lines) == 3:  # the line printed as the attempt ended is taken back once the worker learns of the take-over
        assert lines[0].startswith("✓ T1 (work) on w in "), lines
        assert lines[1] == f"⤳ T1 (work) on w finished here, {said}", lines
    else:  # PostgreSQL tells of the other's commits at once: the attempt is stopped before it ends
        assert db.startswith("postgres") and lines[0] == f"⤳ T1 (work) on w stopped here, {said}", lines
    assert lines[-1].startswith("✓ T1 (work) on w in "), lines
    assert (reporter.completed, reporter.lost) == (1, 1)
    assert "1 completed, 0 failed, 1 taken over by another worker" in str(reporter.summary())


def test_a_dependent_is_not_claimed_on_the_end_of_an_attempt_that_was_taken_over(db, tmp_path):
    # The silent worker's attempt of T1 ends after another worker queued T1 again: that end loses, and D, which
    # the end released here, must not start in the same commit on the lost attempt's result. D runs once, after
    # T1's stored completion, with the result T1 is stored with.
    clock = ManualClock(1_700_000_000.0)
    silent = _runtime(db, tmp_path, "silent", clock, heartbeat_interval="1h", poll_interval="1h", host_id="one")
    other = _runtime(db, tmp_path, "other", clock, heartbeat_interval="5s", poll_interval="1s", host_id="two")
    started, release = threading.Event(), threading.Event()
    ran: list[tuple[str, int, dict[str, Any]]] = []

    def paused(task):
        ran.append((task.task_id, task.attempt, dict(task.dependency_results)))
        if task.task_id == "T1" and task.attempt == 1:
            started.set()
            release.wait(30)
        return f"{task.task_id} attempt {task.attempt}"

    try:
        pepper.agent("w", task_types=["work"], runtime=silent)(paused)
        pepper.agent("else", task_types=["other work"], runtime=other)(lambda task: None)
        silent.start()
        orchestrator = TaskOrchestrator(silent)
        orchestrator.submit_tasks([{"id": "T1", "type": "work"}, {"id": "D", "type": "work", "dependencies": ["T1"]}])
        assert started.wait(30)
        other.start()
        clock.advance(60)  # the other worker finds the silent one gone and queues T1 again
        seen = TaskOrchestrator(other)
        eventually(lambda: seen.get_task_status("T1").state is TaskState.PENDING, "T1 queued again")
        release.set()  # T1's first attempt ends; its write loses to the other worker's
        done = orchestrator.wait("D", timeout=30)
        first = orchestrator.get_task_status("T1")
    finally:
        release.set()
        silent.close()
        other.close()
    assert (first.state, first.result, first.attempts) == (TaskState.COMPLETED, "T1 attempt 2", 2)
    assert (done.state, done.result, done.attempts) == (TaskState.COMPLETED, "D attempt 1", 1)
    assert ran == [("T1", 1, {}), ("T1", 2, {}), ("D", 1, {"T1": "T1 attempt 2"})]
    assert done.started_at >= first.finished_at


def test_a_dependent_released_on_an_end_that_was_taken_over_waits_for_the_end_that_is_kept(db, tmp_path):
    # As above, but the silent worker only releases D (the other worker serves D's type): D must not be stored as
    # ready with the end that lost. It runs on the other worker once T1's kept end is stored, on T1's kept result.
    clock = ManualClock(1_700_000_000.0)
    silent = _runtime(db, tmp_path, "silent", clock, heartbeat_interval="1h", poll_interval="1h", host_id="one")
    other = _runtime(db, tmp_path, "other", clock, heartbeat_interval="5s", poll_interval="1s", host_id="two")
    started, release = threading.Event(), threading.Event()
    again, finish = threading.Event(), threading.Event()
    ran: list[tuple[str, int, dict[str, Any]]] = []

    def paused(task):
        ran.append((task.task_id, task.attempt, dict(task.dependency_results)))
        if task.task_id == "T1":
            (started if task.attempt == 1 else again).set()
            (release if task.attempt == 1 else finish).wait(30)
        return f"{task.task_id} attempt {task.attempt}"

    try:
        pepper.agent("w", task_types=["work"], runtime=silent)(paused)
        pepper.agent("else", task_types=["other work"], runtime=other)(paused)
        silent.start()
        orchestrator = TaskOrchestrator(silent)
        orchestrator.submit_tasks([{"id": "T1", "type": "work"},
                                   {"id": "D", "type": "other work", "dependencies": ["T1"]}])  # fmt: skip
        assert started.wait(30)
        other.start()
        clock.advance(60)  # the other worker finds the silent one gone and queues T1 again
        seen = TaskOrchestrator(other)
        eventually(lambda: seen.get_task_status("T1").state is TaskState.PENDING, "T1 queued again")
        release.set()  # T1's first attempt ends; its write loses to the other worker's
        assert again.wait(30)  # the silent worker runs T1 again: while it does, D waits, as stored
        for _ in range(3):
            clock.advance(1)  # the other worker reads the database every second of the clock
            assert other.store.get_tasks(["D"])["D"].state is TaskState.BLOCKED
        finish.set()

        def settled() -> bool:
            clock.advance(1)  # the other worker reads the database every second of the clock
            return seen.get_task_status("D").state.is_final

        eventually(settled, "D to run on the other worker")
        done, first = seen.get_task_status("D"), seen.get_task_status("T1")
    finally:
        release.set()
        finish.set()
        silent.close()
        other.close()
    assert (first.state, first.result, first.attempts) == (TaskState.COMPLETED, "T1 attempt 2", 2)
    assert (done.state, done.result, done.attempts) == (TaskState.COMPLETED, "D attempt 1", 1)
    assert ran == [("T1", 1, {}), ("T1", 2, {}), ("D", 1, {"T1": "T1 attempt 2"})]
    assert done.started_at >= first.finished_at


def test_a_dependent_claimed_on_an_end_that_a_read_finds_lost_before_its_commit_waits_for_the_end_kept(
    tmp_path, monkeypatch, caplog
):
    # T1's end and D's claim wait for a commit the database was too busy for, and a read of the database meanwhile
    # shows T1 queued again by another worker (which presumed this one dead): T1's end is not written, and D's
    # claim, which stood on it, is not either. D runs once, after T1 ran again, on the result kept.
    monkeypatch.setattr("pepper.engine.failed_commits.RETRY_COMMIT", (3600.0,))  # retried only when told here
    db = str(tmp_path / "shared.db")
    worker = pepper.Runtime(db=db, home=str(tmp_path / "worker"), busy_timeout=0.05, heartbeat_interval="1h",
                            poll_interval="1h", sample_interval="1h", clock=ManualClock(1_700_000_000.0))  # fmt: skip
    started, release = threading.Event(), threading.Event()
    ran: list[tuple[str, int, dict[str, Any]]] = []

    def paused(task):
        ran.append((task.task_id, task.attempt, dict(task.dependency_results)))
        if task.task_id == "T1" and task.attempt == 1:
            started.set()
            release.wait(30)
        return f"{task.task_id} attempt {task.attempt}"

    holder = sqlite3.connect(db, isolation_level=None)
    try:
        pepper.agent("w", task_types=["work"], runtime=worker)(paused)
        worker.start()
        orchestrator = TaskOrchestrator(worker)
        orchestrator.submit_tasks([{"id": "T1", "type": "work"}, {"id": "D", "type": "work", "dependencies": ["T1"]}])
        assert started.wait(30)
        holder.execute("BEGIN IMMEDIATE")  # the database's write lock: the worker's next commit fails as busy
        with caplog.at_level(logging.ERROR, logger="pepper.engine"):
            release.set()
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
        release.set()
        holder.close()
        worker.close()
    assert (first.state, first.result, first.attempts) == (TaskState.COMPLETED, "T1 attempt 2", 2)
    assert (done.state, done.result, done.attempts) == (TaskState.COMPLETED, "D attempt 1", 1)
    assert ran == [("T1", 1, {}), ("T1", 2, {}), ("D", 1, {"T1": "T1 attempt 2"})]
