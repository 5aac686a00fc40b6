"""Kill -9 the process driving a fan-out mid-way: another process finishes the run, and the items that completed
are not run again; the step's result still lists every item in order."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import eventually

DRIVER = textwrap.dedent("""
    import sys, time
    import pepper
    from pepper.core import WorkflowController

    db, home, log, role = sys.argv[1:5]
    runtime = pepper.Runtime(db=db, home=home, poll_interval="20ms", heartbeat_interval="100ms",
                             visibility_timeout="2s")  # the killed driver is presumed dead soon

    def work(task):
        with open(log, "a") as out:
            out.write(f"{task.inputs['n']}\\n")
        if task.inputs["n"] == 3 and role == "first":
            time.sleep(3600)  # killed while item 3 runs
        return task.inputs["n"] * 10

    pepper.agent("worker", task_types=["t"], capacity=1, runtime=runtime)(work)
    workflow = WorkflowController("fan", runtime)
    workflow.add_step("each", "t", for_each=list(range(6)), max_parallel=1, inputs={"n": "${{ item }}"})
    if role == "first":
        print(workflow.start(), flush=True)
        time.sleep(3600)
    else:
        result = workflow.resume(role, timeout=60)
        print(result.status, result["each"].result, flush=True)
        runtime.close()
""")


def _completed_items(db: Path, run_id: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        pattern = f"{run_id}/each[%"
        return conn.execute("SELECT COUNT(*) FROM tasks WHERE task_id LIKE ? AND state = 'completed'",
                            (pattern,)).fetchone()[0]  # fmt: skip
    finally:
        conn.close()


@pytest.mark.slow
def test_a_fan_out_whose_driver_was_killed_finishes_without_running_completed_items_again(tmp_path):
    script, db, log = tmp_path / "driver.py", tmp_path / "w.db", tmp_path / "ran.log"
    script.write_text(DRIVER)
    args = [sys.executable, str(script), str(db), str(tmp_path / "home"), str(log)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    first = subprocess.Popen([*args, "first"], env=env, stdout=subprocess.PIPE, text=True)
    run_id = first.stdout.readline().strip()
    eventually(lambda: log.exists() and "3" in log.read_text().split(), "item 3 runs")
    assert _completed_items(db, run_id) == 3
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    second = subprocess.run([*args, run_id], env=env, capture_output=True, text=True, timeout=120)

    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "completed [0, 10, 20, 30, 40, 50]"
    ran = log.read_text().split()
    assert ran == ["0", "1", "2", "3", "3", "4", "5"]  # item 3 again (it never ended), none before it
    # the step spans its items, from the first one's start under the killed driver to the last one's end
    conn = sqlite3.connect(db, timeout=30)
    try:
        step = conn.execute("SELECT started_at, finished_at FROM tasks WHERE task_id = ?", (f"{run_id}/each",))
        span = conn.execute("SELECT MIN(started_at), MAX(finished_at) FROM tasks WHERE task_id LIKE ?",
                            (f"{run_id}/each[%",))  # fmt: skip
        assert step.fetchone() == span.fetchone()
    finally:
        conn.close()
