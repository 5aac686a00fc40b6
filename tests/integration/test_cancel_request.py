"""Cancelling a task a worker in another process runs is a request: the worker stops the task when it next reads
the database, and a task whose attempt ends first keeps that outcome, its dependents going on. ``pepper cancel``
says so, and ``--wait`` tells how the task ended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pepper.core import TaskOrchestrator
from tests.integration.fleet import CONFIG, DEADLINE, Fleet


def _pepper(fleet: Fleet, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    argv = [sys.executable, "-m", "pepper", *args, "--db", fleet.db]
    return subprocess.Popen(argv, cwd=fleet.folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(fleet: Fleet, *args: str) -> tuple[int, str]:
    proc = _pepper(fleet, *args)
    out, err = proc.communicate(timeout=DEADLINE)
    assert not err.strip() or proc.returncode == 0, err[-2000:]
    return proc.returncode, " ".join(out.split())


def test_a_running_task_that_ends_before_its_worker_reads_the_cancel_keeps_its_outcome(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, str(tmp_path / "shared.db"), hosts=False)
    # A SQLite worker reads what others wrote every poll_interval: this one not before the test ends, so the
    # held task always ends before its worker reads the request to stop it.
    (tmp_path / "pepper.toml").write_text(CONFIG.replace('poll_interval = "20ms"', 'poll_interval = "10m"'))
    try:
        with fleet.runtime() as client:
            TaskOrchestrator(client).submit_tasks(
                [{"id": "T", "type": "h"}, {"id": "D", "type": "t", "dependencies": ["T"]}]
            )
        fleet.start()
        fleet.until(lambda: [task_id for task_id, *_ in fleet.executions()] == ["T"], "T running")

        # When T is cancelled: the request is recorded, and the message says what may still happen
        code, said = _run(fleet, "cancel", "T")
        assert code == 0
        assert said == (
            "asked the worker running T to stop it; if it finishes first, it keeps that outcome and the tasks that "
            f"depend on it go on (pepper status T --db {fleet.db})"
        )
        requested = "SELECT state, cancel_requested, version FROM tasks WHERE task_id = 'T'"
        ((state, asked, version),) = fleet.rows(requested)
        assert (state, asked) == ("in_progress", 1)
        # and cancelled again with --wait, which waits for the end: it comes before the worker reads the request
        waiting = _pepper(fleet, "cancel", "T", "--wait")
        fleet.until(lambda: fleet.rows(requested)[0][2] > version, "the second request stored")
        (tmp_path / "release").touch()
        out, err = waiting.communicate(timeout=DEADLINE)
        assert waiting.returncode == 0, err[-2000:]
        assert " ".join(out.split()) == (
            "T ended completed before its worker stopped it; the tasks that depend on it go on as after any such end"
        )

        # Then T kept its outcome, and its dependent ran
        done = "SELECT task_id FROM tasks WHERE state = 'completed'"
        fleet.until(lambda: {t for (t,) in fleet.rows(done)} == {"T", "D"}, "both completed")
        code, said = _run(fleet, "cancel", "T", "--json")
        assert (code, json.loads(said)) == (0, {"task_id": "T", "cancelled": False, "state": "completed"})
        fleet.stop_all()
        assert Counter(task_id for task_id, *_ in fleet.executions()) == Counter(["T", "D"])
    finally:
        fleet.close()


def test_cancel_with_wait_tells_when_the_worker_stopped_the_task(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, str(tmp_path / "shared.db"), hosts=False)  # its workers read the database often
    try:
        with fleet.runtime() as client:
            TaskOrchestrator(client).submit_tasks(
                [{"id": "T", "type": "h"}, {"id": "D", "type": "t", "dependencies": ["T"]}]
            )
        fleet.start()
        fleet.until(lambda: [task_id for task_id, *_ in fleet.executions()] == ["T"], "T running")
        code, said = _run(fleet, "cancel", "T", "--wait", "--wait-timeout", str(DEADLINE))
        assert (code, said) == (0, "stopped and cancelled T (tasks that depend on it are cancelled too)")
        (tmp_path / "release").touch()
        fleet.stop_all()
        states = dict(fleet.rows("SELECT task_id, state FROM tasks"))
        assert states == {"T": "cancelled", "D": "cancelled"}
        assert [task_id for task_id, *_ in fleet.executions()] == ["T"]
    finally:
        fleet.close()
