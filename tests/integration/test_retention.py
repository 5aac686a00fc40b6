"""Pruning finished work: what goes, what always stays, space given back; by hand and in the background."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pepper
from pepper.engine.alert_rules import RuleKeeper
from pepper.model.alert_config import parse_rule
from pepper.monitoring.alerts import Alert
from pepper.store.location import open_store
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


def test_a_worker_with_retention_prunes_as_it_starts_then_in_the_background(tmp_path):
    db = str(tmp_path / "pepper.db")
    _fill(db, tmp_path / "home")
    clock = ManualClock(start=10**10)  # far in the future: everything stored ended long ago
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, retention="1h", poll_interval="2h",
                             heartbeat_interval="2h", sample_interval="2h")  # fmt: skip
    try:
        runtime.start()
        # Then the first prune comes as the worker starts, no time passing (a short-lived worker prunes too)
        eventually(lambda: _states(db).keys() == {"needed", "waiting", "blocked"}, "the prune at start")
        # and then every quarter of the retention: what ends now goes once the retention has passed
        pepper.TaskOrchestrator(runtime).cancel_task("waiting")  # it and "blocked" end now
        for _ in range(5):  # 4 x 15 minutes make the hour; the fifth prune is the first past it
            assert "waiting" in _states(db)
            clock.advance(clock.wait_for_timer(899, 901) - clock.now())
        eventually(lambda: not _states(db), "the prune past the retention")  # "needed" went as nothing needs it
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


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file, or a fresh PostgreSQL database."""
    return str(tmp_path / "a.db") if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def test_prune_keeps_the_alert_of_a_rule_still_firing_and_one_that_ended_after_the_horizon(any_db):
    # Given rules fired and resolved by a keeper at set times, and a monitor's alert
    rules = {name: parse_rule({"name": name, "metric": "error_rate", "threshold": 0.5}) for name in "abc"}
    values: dict[str, float] = {}
    store = open_store(any_db)
    try:
        keeper = RuleKeeper(store, tuple(rules.values()), lambda rule, now: values.get(rule.name))

        def at(t: float, **changed: float) -> None:
            values.clear()
            values.update(changed)
            keeper.tick(t)

        at(10.0, a=1.0, b=1.0, c=1.0)  # all three fire
        at(15.0, c=0.0)  # c resolves
        at(20.0, a=0.0)  # a resolves...
        at(30.0, a=1.0)  # ...and fires again: still firing
        at(50.0, b=0.0)  # b resolves after the horizon
        assert keeper.flush()
        store.alerts.record(Alert("monitor-1", "cpu", "monitor", "cpu", 90.0, 80.0, True, 5.0).to_row())

        def rules_left() -> list[tuple[str, float]]:
            return sorted((a["rule_id"], a["at"]) for a in store.alerts.recent())

        # When pruning what ended before t=40
        assert store.prune(40.0, dry_run=True)["alerts"] == 3
        assert store.prune(40.0)["alerts"] == 3
        # Then a's second alert (still firing) and b's (ended at 50) stay; a's first (ended before a fired
        # again at 30), c's (ended at 15) and the monitor's go
        assert rules_left() == [("a", 30.0), ("b", 10.0)]
        # and once b has ended before the horizon and a resolved, they go too
        at(60.0, a=0.0)
        assert store.prune(55.0)["alerts"] == 1 and rules_left() == [("a", 30.0)]
        assert store.prune(61.0)["alerts"] == 1 and rules_left() == []
    finally:
        store.close()
