"""Two worker processes share one SQLite file; one is killed (-9) holding work, the other finishes it."""

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
from tests.integration.fleet import freeze_between_writes

TOTAL = 120

WORKER = textwrap.dedent("""
    import sys, time
    import pepper

    db, home, log, name = sys.argv[1:5]
    runtime = pepper.Runtime(db=db, home=home, poll_interval="20ms", heartbeat_interval="100ms",
                             visibility_timeout="1s")

    @pepper.agent(f"agent-{name}", task_types=["t"], capacity=4, runtime=runtime)
    def work(task):
        time.sleep(0.03)
        with open(log, "a") as out:
            out.write(f"{task.task_id} {name}\\n")
        return name

    runtime.start()
    while True:  # the second worker stops once every task in the database completed
        time.sleep(0.1)
        if name == "b" and set(runtime.store.count_by_state()) == {"completed"}:
            break
    runtime.close()
""")


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return dict(conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall())
    finally:
        conn.close()


def owned_by_first(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE state = 'in_progress' AND agent_id = 'agent-a'"
        ).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_the_surviving_worker_runs_the_lost_workers_tasks_and_each_completes_once(tmp_path, how):
    """``killed``: the process is gone (seen at once on this host); ``frozen``: it is stopped (SIGSTOP), so only
    its silence tells: the other worker takes its tasks after the visibility timeout, then it is killed."""
    db, log = tmp_path / "shared.db", tmp_path / "ran.log"
    with pepper.Runtime(db=str(db), home=str(tmp_path / "home")) as submitter:
        TaskOrchestrator(submitter).submit_tasks([{"id": f"t{i:03d}", "type": "t"} for i in range(TOTAL)])
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def worker(name: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, str(script), str(db), str(tmp_path / f"home-{name}"), str(log), name]
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # Given two workers sharing the queue, the first one busy with tasks
    first = worker("a")
    deadline = time.monotonic() + 30
    while owned_by_first(db) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    second = worker("b")
    while counts(db).get("completed", 0) < TOTAL // 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    held = owned_by_first(db)
    assert held > 0

    # When the first is lost while holding work
    if how == "killed":
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    else:
        freeze_between_writes(first, str(db))

    # Then the second finishes everything, and every task completed exactly once
    second.wait(60)
    if how == "frozen":
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert second.returncode == 0, second.stderr.read().decode()
    assert counts(db) == {"completed": TOTAL}
    ran = [line.split() for line in log.read_text().splitlines()]
    finished = {task_id for task_id, _ in ran}
    assert finished == {f"t{i:03d}" for i in range(TOTAL)}
    assert {name for _, name in ran} == {"a", "b"}
    conn = sqlite3.connect(db)
    try:
        interrupted = conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'interrupted'").fetchone()[0]
        winners = dict(conn.execute("SELECT result, COUNT(*) FROM tasks GROUP BY result").fetchall())
    finally:
        conn.close()
    assert interrupted >= held  # the killed worker's attempts were re-run, and said so
    assert sum(winners.values()) == TOTAL
