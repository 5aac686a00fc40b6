"""Kill -9 the process driving a workflow run mid-way; re-opening finishes the run, completed steps not re-run."""

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
from pepper.core import WorkflowController

DRIVER = textwrap.dedent("""
    import sys, time
    import pepper
    from pepper.core import WorkflowController

    db, home, log, role = sys.argv[1:5]
    runtime = pepper.Runtime(db=db, home=home, poll_interval="20ms", heartbeat_interval="100ms")

    def work(task):
        with open(log, "a") as out:
            out.write(task.step_id + "\\n")
        if task.step_id == "build" and role == "first":
            time.sleep(3600)  # killed while building
        return {"step": task.step_id, "from": sorted(task.dependency_results)}

    pepper.agent("worker", task_types=["t"], capacity=2, runtime=runtime)(work)
    workflow = WorkflowController("release", runtime)
    workflow.add_step("fetch", "t")
    workflow.add_step("build", "t", dependencies=["fetch"])
    workflow.add_step("check", "t", dependencies=["build"], condition="steps.build.result.step == 'build'")
    workflow.add_step("ship", "t", dependencies=["check"])
    if role == "first":
        print(workflow.start(), flush=True)
        time.sleep(3600)
    else:
        runtime.start()  # re-opening: the engine adopts the run whose driver is gone
        result = workflow.wait(role, timeout=60)
        print(result.status, [s.status for s in result], flush=True)
        runtime.close()
""")


def step_state(db: Path, task_id: str) -> str | None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        row = conn.execute("SELECT state FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["reopen", "resume"])
def test_a_run_whose_driver_was_killed_finishes_without_running_completed_steps_again(tmp_path, how):
    script, db, log = tmp_path / "driver.py", tmp_path / "w.db", tmp_path / "ran.log"
    script.write_text(DRIVER)
    args = [sys.executable, str(script), str(db), str(tmp_path / "home"), str(log)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    # Given a run killed (-9) while its second step runs
    first = subprocess.Popen([*args, "first"], env=env, stdout=subprocess.PIPE, text=True)
    run_id = first.stdout.readline().strip()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        step_state(db, f"{run_id}/build") == "in_progress" and log.exists() and "build" in log.read_text().split()
    ):  # recorded as running, and really running (the agent wrote its line)
        time.sleep(0.05)
    assert step_state(db, f"{run_id}/fetch") == "completed"
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    # When the workflow is opened again in a new process (or resumed from here)
    if how == "reopen":
        second = subprocess.run([*args, run_id], env=env, capture_output=True, text=True, timeout=90)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "completed ['completed', 'completed', 'completed', 'completed']"
    else:
        with pepper.Runtime(db=str(db), home=str(tmp_path / "home2"), poll_interval="20ms") as runtime:
            pepper.agent("worker", task_types=["t"], runtime=runtime)(
                lambda task: log.open("a").write(task.step_id + "\n") and {"step": task.step_id}
            )
            workflow = WorkflowController("release", runtime)
            workflow.add_step("fetch", "t")
            workflow.add_step("build", "t", dependencies=["fetch"])
            workflow.add_step("check", "t", dependencies=["build"], condition="steps.build.result.step == 'build'")
            workflow.add_step("ship", "t", dependencies=["check"])
            result = workflow.resume(run_id, timeout=60)
        assert result.status == "completed" and result["ship"].status == "completed"
        assert result["build"].attempts == 2  # the killed attempt counts

    # Then fetch ran once, build twice (killed, then again), the rest once
    ran = log.read_text().split()
    assert ran.count("fetch") == 1 and ran.count("build") == 2
    assert ran.count("check") == 1 and ran.count("ship") == 1
