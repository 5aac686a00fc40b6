"""Pruning finished work: what goes, what always stays, space given back; by hand and in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pepper
from pepper.testing import ManualClock
from tests.support import eventually, read_rows

PY = sys.executable
_BIG = "x" * 4096


def _fill(db: str, home: Path, **settings: object) -> None:
    """Given 200 completed tasks with big inputs, one task an unfinished one depends on, and unfinished work."""
    runtime = pepper.Runtime(db=db, home=str(home), **settings)
    try:

        @pepper.agent("worker", task_types=["job"], capacity=8, runtime=runtime)
        def job(task: pepper.TaskRun) -> object:
            task.log("done")  # a log line per task, pruned with it
            return len(task.inputs["blob"])

        orchestrator = pepper.TaskOrchestrator(runtime)
        ids = [f"old-{n}" for n in range(200)] + ["needed"]
        for task_id in ids:
            orchestrator.submit_task(task_id, "job", inputs={"blob": _BIG})
        orchestrator.wait(ids, timeout=60)
        # unfinished: one waiting for an agent nobody runs, one blocked on it and on "needed"
        orchestrator.submit_task("waiting", "nobody")
        orchestrator.submit_task("blocked", "nobody", dependencies=["waiting", "needed"])
    finally:
        runtime.close()


def _states(db: str) -> dict[str, str]:
    return {row[0]: row[1] for row in read_rows(db, "SELECT task_id, state FROM tasks")}


def _prune(db: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PEPPER_DB"}
    done = subprocess.run([PY, "-m", "pepper", "prune", "--db", db, "--json", *args], env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_prune_removes_finished_work_keeps_what_is_needed_and_shrinks_the_file(tmp_path):
    db = str(tmp_path / "pepper.db")
    _fill(db, tmp_path / "home")
    before = _states(db)
    size_before = os.path.getsize(db)
    # When a dry run asks what would go
    dry = _prune(db, "--older-than", "0s", "--dry-run")
    # Then it counts the finished tasks (not the one still needed) and their logs, and changes nothing
    assert dry["dry_run"] is True
    assert dry["removed"]["tasks"] == 200 and dry["removed"]["logs"] >= 200  # chunks: one or two a task
    assert _states(db) == before
    # When pruning for real
    done = _prune(db, "--older-than", "0s")
    assert done["removed"] == dry["removed"]
    # Then the unfinished tasks and the task they depend on are intact, the rest is gone
    after = _states(db)
    assert after == {"needed": "completed", "waiting": "pending", "blocked": "blocked"}
    assert {row[0] for row in read_rows(db, "SELECT DISTINCT task_id FROM task_logs")} == {"needed"}
    # and the file gave its space back
    assert os.path.getsize(db) < size_before / 2
    # and a second prune finds nothing more
    assert set(_prune(db, "--older-than", "0s")["removed"].values()) == {0}


def test_prune_leaves_recent_work_alone_and_refuses_a_bad_age(tmp_path):
    db = str(tmp_path / "pepper.db")
    _fill(db, tmp_path / "home")
    assert set(_prune(db, "--older-than", "30d")["removed"].values()) == {0}
    env = {k: v for k, v in os.environ.items() if k != "PEPPER_DB"}
    bad = subprocess.run([PY, "-m", "pepper", "prune", "--db", db, "--older-than", "soon"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


def test_a_worker_with_retention_prunes_in_the_background(tmp_path):
    db = str(tmp_path / "pepper.db")
    _fill(db, tmp_path / "home")
    clock = ManualClock(start=10**10)  # far in the future: everything stored ended long ago
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, retention="1h", poll_interval="2h",
                             heartbeat_interval="2h", sample_interval="2h")  # fmt: skip
    try:
        runtime.start()
        clock.advance(clock.wait_for_timer(899, 901) - clock.now())  # its interval: a quarter of the retention
        eventually(lambda: _states(db).keys() == {"needed", "waiting", "blocked"}, "the background prune")
    finally:
        runtime.close()


def test_prune_on_postgresql_keeps_unfinished_work_and_its_dependencies(postgres_url, tmp_path):
    _fill(postgres_url, tmp_path / "home")
    before = _states(postgres_url)
    dry = _prune(postgres_url, "--older-than", "0s", "--dry-run")
    assert dry["removed"]["tasks"] == 200
    assert _states(postgres_url) == before
    done = _prune(postgres_url, "--older-than", "0s")
    assert done["removed"]["tasks"] == 200
    assert _states(postgres_url) == {"needed": "completed", "waiting": "pending", "blocked": "blocked"}
