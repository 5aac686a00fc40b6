"""A worker presumed dead (silent past ``visibility_timeout``, yet alive) finishes a task another worker took over:
the other worker's result is kept, and the silent one reports its attempt as taken over, not as completed."""

from __future__ import annotations

import io
import logging
import re
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
