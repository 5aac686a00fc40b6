"""A delayed task outlives a worker killed before its time: the next worker runs it once, at its time."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from tests.support import eventually

WORKER = textwrap.dedent("""
    import asyncio, os, sys, time
    import pepper

    db, home, log = sys.argv[1:4]
    runtime = pepper.Runtime(db=db, home=home, poll_interval="20ms", heartbeat_interval="100ms")

    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    def echo(task):
        with open(log, "a") as out:
            out.write(f"{task.task_id} {time.time()!r} {os.getpid()}\\n")
        return "done"

    runtime.start()
    asyncio.run(asyncio.sleep(3600))  # runs until killed
""")

DELAY = 4.0  # seconds: long enough for the first worker to take the task in and be killed before its time


def _query(db: Path, sql: str):
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _registered(db: Path) -> bool:
    try:
        return bool(_query(db, "SELECT COUNT(*) FROM agents")[0][0])
    except sqlite3.OperationalError:  # the worker has not created the tables yet
        return False


@pytest.mark.slow
def test_a_worker_killed_before_a_delayed_tasks_time_leaves_it_to_the_next_which_runs_it_once(tmp_path):
    script, db, log = tmp_path / "worker.py", tmp_path / "delay.db", tmp_path / "ran.txt"
    script.write_text(WORKER)
    home = str(tmp_path / "home")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    args = [sys.executable, str(script), str(db), home, str(log)]

    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with pepper.Runtime(db=str(db), home=home) as submitter:  # a process with no agents: it only stores
            eventually(lambda: _registered(db), "the worker to register its agent")
            task = TaskOrchestrator(submitter).submit_task("later", "echo", delay=DELAY)
        submitted = time.time()
        # a heartbeat after the submission: the worker (reading others' writes every 20ms) has taken the task in
        eventually(lambda: _query(db, "SELECT MAX(heartbeat_at) FROM workers")[0][0] > submitted + 0.1)
    finally:
        os.kill(first.pid, signal.SIGKILL)  # before the task's time
        first.wait(10)
    not_before = task.not_before
    assert not_before is not None
    killed_at = time.time()
    if killed_at >= not_before:
        pytest.skip("this machine took longer than the delay to start a worker; the kill came too late to tell")
    assert not log.exists()
    assert _query(db, "SELECT state, not_before FROM tasks WHERE task_id = 'later'") == [("pending", not_before)]

    second = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        eventually(
            lambda: _query(db, "SELECT state FROM tasks WHERE task_id = 'later'")[0][0] == "completed",
            "the delayed task to complete in the second worker",
            timeout=60,
        )
    finally:
        second.kill()
        second.wait(10)
    runs = log.read_text().split("\n")[:-1]
    assert len(runs) == 1, runs
    task_id, ran_at, pid = runs[0].split()
    assert task_id == "later" and int(pid) == second.pid
    assert float(ran_at) >= not_before
    assert _query(db, "SELECT attempts, started_at >= not_before FROM tasks WHERE task_id = 'later'") == [(1, 1)]
