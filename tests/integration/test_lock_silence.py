"""A lock another process holds on the SQLite file (a long copy, a ``VACUUM``, a backup) silences every worker
alike: once it is gone, live workers do not take each other's tasks over, and a worker that really went silent
still is taken over, a visibility timeout of writable time later.

In one process on the manual clock (the lock is held while the clock moves on past the visibility timeout), and
with ``pepper worker`` processes (the lock is held until their heartbeats are old)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.integration.fleet import Fleet
from tests.support import eventually, read_rows

SILENCED = "has not been heard from"


def _runtime(db: str, tmp_path: Path, name: str, clock: ManualClock, **settings: Any) -> pepper.Runtime:
    # each on a host of its own (as on several machines): only heartbeats tell whether a worker lives
    return pepper.Runtime(db=db, home=str(tmp_path / name), clock=clock, host_id=name, visibility_timeout="3s",
                          busy_timeout="50ms", sample_interval="1h", shutdown_timeout="2s",
                          **settings)  # fmt: skip


def _on_clock(clock: ManualClock, condition: Callable[[], Any], what: str) -> Any:
    """Move the clock on by half seconds until ``condition`` holds (a safety net of 200 steps)."""
    for _ in range(200):
        value = condition()
        if value:
            return value
        clock.advance(0.5)
    raise AssertionError(f"never true on the clock: {what}")


def _running(db: str) -> dict[str, tuple[str, int]]:
    rows = read_rows(db, "SELECT task_id, owner, attempts FROM tasks WHERE state = 'in_progress'")
    return {task_id: (owner, attempts) for task_id, owner, attempts in rows}


def test_live_workers_silenced_by_a_lock_keep_their_tasks_and_a_silent_one_is_still_taken_over(tmp_path, caplog):
    db = str(tmp_path / "shared.db")
    clock = ManualClock(1_700_000_000.0)
    ran: Counter[tuple[str, int]] = Counter()
    release = threading.Event()

    def held(task: Any) -> str:
        ran[(task.task_id, task.attempt)] += 1
        release.wait(60)
        return task.task_id

    # A worker that runs T0, then neither beats nor reads (paused, cut off): its silence is real
    silent = _runtime(db, tmp_path, "silent", clock, heartbeat_interval="1h", poll_interval="1h")
    live = {name: _runtime(db, tmp_path, name, clock, heartbeat_interval="1s", poll_interval="0.5s")
            for name in ("one", "two")}  # fmt: skip
    runtimes = [silent, *live.values()]
    try:
        pepper.agent("w", task_types=["work"], capacity=1, runtime=silent)(held)
        silent.start()
        TaskOrchestrator(silent).submit_task("T0", "work")
        eventually(lambda: ran[("T0", 1)], "the silent worker to start T0")
        for runtime in live.values():  # then two live workers, each running one task
            pepper.agent("w", task_types=["work"], capacity=2, runtime=runtime)(held)
            runtime.start()
        TaskOrchestrator(live["one"]).submit_tasks([{"id": "T1", "type": "work"}, {"id": "T2", "type": "work"}])
        # (the clock stands still meanwhile: moved on, it would make T0's worker silent for the others first)
        eventually(lambda: ran[("T1", 1)] and ran[("T2", 1)], "T1 and T2 to start")
        before = _running(db)
        assert set(before) == {"T0", "T1", "T2"} and {n for _, n in before.values()} == {1}
        # When another process holds the write lock for far longer than the visibility timeout
        lock = sqlite3.connect(db, isolation_level=None)
        with caplog.at_level(logging.WARNING, logger="pepper.engine"):
            try:
                lock.execute("BEGIN EXCLUSIVE")
                clock.advance(10)  # every heartbeat of the live workers waits for it, and fails
            finally:
                lock.execute("COMMIT")
                lock.close()
            assert "could not reach the database" in caplog.text  # they tried
            # Then, once it is gone, the live workers do not take each other's tasks over
            for _ in range(4):
                clock.advance(0.5)
            assert not [line for line in caplog.text.splitlines() if SILENCED in line and "on silent)" not in line]
            assert {task_id: _running(db)[task_id] for task_id in ("T1", "T2")} == {
                task_id: before[task_id] for task_id in ("T1", "T2")
            }
            # And the silent worker's task is taken over once it was silent for the visibility timeout of the
            # time the others could write: it runs a second time, on a live worker
            _on_clock(clock, lambda: ran[("T0", 2)], "T0 to run again")
        assert caplog.text.count(SILENCED) == 1 and "(pid" in caplog.text and "on silent)" in caplog.text
        release.set()
        seen = TaskOrchestrator(live["one"])
        _on_clock(clock, lambda: all(seen.get_task_status(t).state.is_final for t in ("T0", "T1", "T2")), "the end")
        for task_id in ("T0", "T1", "T2"):
            status = seen.get_task_status(task_id)
            assert (status.state, status.attempts) == (TaskState.COMPLETED, 2 if task_id == "T0" else 1)
    finally:
        release.set()
        for runtime in runtimes:
            runtime.close()
    # Each live worker's task ran once; only the silent worker's ran again
    assert ran == Counter({("T0", 1): 1, ("T0", 2): 1, ("T1", 1): 1, ("T2", 1): 1})


@pytest.mark.parametrize("busy_timeout", ["10s", "200ms"])  # the heartbeats wait through the lock, or give up
def test_worker_processes_silenced_by_a_lock_run_each_task_once_and_a_killed_one_is_taken_over(tmp_path, busy_timeout):
    # Given two `pepper worker` processes on one SQLite file, each on a host of its own (only heartbeats tell
    # whether a worker lives), each running four tasks that hold until released
    fleet = Fleet(tmp_path, str(tmp_path / "shared.db"), hosts=True)
    with open(tmp_path / "pepper.toml", "a") as config:
        config.write(f'busy_timeout = "{busy_timeout}"\n')
    try:
        first, second = fleet.start(), fleet.start()
        fleet.until(lambda: fleet.registered(2), "both workers to register")
        with fleet.runtime() as client:
            TaskOrchestrator(client).submit_tasks([{"id": f"h{i}", "type": "h"} for i in range(8)])
        fleet.until(lambda: len(fleet.executions()) == 8, "every task to start")  # four on each: their capacity
        owners = dict(fleet.rows("SELECT task_id, owner FROM tasks WHERE state = 'in_progress'"))
        assert len(owners) == 8 and len(set(owners.values())) == 2
        # When another process holds the write lock until every heartbeat is far older than the visibility timeout
        lock = sqlite3.connect(tmp_path / "shared.db", isolation_level=None)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            fleet.until(lambda: _all_silent_for(lock, 2 * VISIBILITY), "the heartbeats to be old")
        finally:
            lock.execute("COMMIT")
            lock.close()
        # Then, once each worker has beaten and swept twice since, both are alive and keep their tasks
        gone = time.time()
        for proc in (first, second):
            beat = fleet.until(lambda p=proc: _beat_since(fleet, p, gone), "a heartbeat after the lock")
            fleet.until(lambda p=proc, b=beat: _beat_since(fleet, p, b), "another heartbeat")
        assert fleet.rows("SELECT COUNT(*) FROM workers WHERE stopped_at IS NULL") == [(2,)]
        assert dict(fleet.rows("SELECT task_id, owner FROM tasks WHERE state = 'in_progress'")) == owners
        for proc in (first, second):
            assert SILENCED not in fleet.output(proc)
        # And a worker that really dies is still taken over: its tasks run again on the other once it is free
        fleet.kill(first)
        dead = _worker_of(fleet, first)
        fleet.until(lambda: dead not in {o for (o,) in fleet.rows(RUNNING_OWNERS)}, "the dead worker's tasks freed")
        (tmp_path / "release").touch()
        fleet.until(lambda: fleet.states() == {"completed": 8}, "every task to complete")
        fleet.stop_all()
        assert f"pid {first.pid} on host-0) {SILENCED}" in fleet.output(second)
    finally:
        fleet.close()
    runs = fleet.once_per_attempt()
    again = {task_id for task_id, owner in owners.items() if owner == dead}
    assert runs == Counter({(task_id, 1): 1 for task_id in owners} | {(task_id, 2): 1 for task_id in again})
    pids = {(task_id, attempt): pid for task_id, attempt, pid, _ in fleet.executions()}
    assert {pids[(task_id, 2)] for task_id in again} == {second.pid}


VISIBILITY = 2.0  # the fleet's visibility_timeout
RUNNING_OWNERS = "SELECT DISTINCT owner FROM tasks WHERE state = 'in_progress'"


def _all_silent_for(lock: sqlite3.Connection, seconds: float) -> bool:
    """Read through the connection holding the lock: every live worker's heartbeat is older than ``seconds``."""
    (latest,) = lock.execute("SELECT MAX(heartbeat_at) FROM workers WHERE stopped_at IS NULL").fetchone()
    return time.time() - latest > seconds


def _worker_of(fleet: Fleet, proc: subprocess.Popen[bytes]) -> str:
    [(worker_id,)] = fleet.rows(f"SELECT worker_id FROM workers WHERE pid = {proc.pid}")
    return str(worker_id)


def _beat_since(fleet: Fleet, proc: subprocess.Popen[bytes], since: float) -> float | None:
    """The worker's last heartbeat, if it was asked for after ``since``."""
    [(beat,)] = fleet.rows(f"SELECT heartbeat_at FROM workers WHERE pid = {proc.pid}")
    return float(beat) if beat > since else None
