"""Other processes act on the tasks while three workers run them: two submitters race over the same ids, and a
client cancels running and waiting tasks. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pepper.core import TaskOrchestrator
from tests.integration.fleet import DEADLINE, Fleet, fleet_on

ROUNDS = 10  # each round is a race of its own (both racers meet at a barrier first): ten races on each store

# Each round, both racers wait for the other at a barrier of files, then submit: a group whose first task has
# the same id in both but a different spec (one group must win whole, the other be refused whole), and a task
# with the same id and spec in both (both are acknowledged, it is stored once).
RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import pepper
    from pepper.core import TaskOrchestrator

    db, home, folder, me, other, rounds = sys.argv[1:7]
    folder = Path(folder)
    with pepper.Runtime(db=db, home=home, poll_interval="20ms") as runtime:
        orchestrator = TaskOrchestrator(runtime)
        for i in range(int(rounds)):
            (folder / f"ready-{me}-{i}").touch()
            while not (folder / f"ready-{other}-{i}").exists():
                time.sleep(0.001)
            group = [{"id": f"r{i}/shared", "type": "t", "inputs": {"by": me}},
                     {"id": f"r{i}/{me}1", "type": "t", "dependencies": [f"r{i}/shared"]},
                     {"id": f"r{i}/{me}2", "type": "t"}]
            try:
                orchestrator.submit_tasks(group)
                won = "won"
            except pepper.PepperError as exc:
                won = type(exc).__name__
            orchestrator.submit_tasks([{"id": f"same{i}", "type": "t", "inputs": {"n": i}}])
            print(json.dumps([i, won]), flush=True)
""")


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on(request, tmp_path)


@pytest.mark.slow
def test_two_processes_submitting_clashing_groups_at_once_one_wins_whole_the_other_stores_nothing(
    fleet: Fleet,
) -> None:
    for _ in range(3):
        fleet.start()
    fleet.until(lambda: fleet.registered(3), "three workers")
    script = fleet.folder / "racer.py"
    script.write_text(RACER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def racer(me: str, other: str) -> subprocess.Popen[str]:
        argv = [sys.executable, str(script), fleet.db, str(fleet.folder / f"home-{me}"), str(fleet.folder), me,
                other, str(ROUNDS)]  # fmt: skip
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    racers = {"A": racer("A", "B"), "B": racer("B", "A")}
    outcomes: dict[str, dict[int, str]] = {}
    for me, racer in racers.items():
        out, err = racer.communicate(timeout=DEADLINE)
        assert racer.returncode == 0, err[-3000:]
        outcomes[me] = dict(json.loads(line) for line in out.splitlines())

    expected: set[str] = set()
    for i in range(ROUNDS):
        # Then in every round exactly one group won, and the loser was told why
        results = {me: outcomes[me][i] for me in racers}
        winners = [me for me, result in results.items() if result == "won"]
        assert len(winners) == 1, (i, results)
        (loser,) = set(racers) - set(winners)
        assert results[loser] == "DuplicateTaskError", (i, results)
        expected |= {f"r{i}/shared", f"r{i}/{winners[0]}1", f"r{i}/{winners[0]}2", f"same{i}"}
    # and only the winners' tasks were stored, the shared one with the winner's inputs
    fleet.until(lambda: fleet.states() == {"completed": len(expected)}, "every stored task to complete")
    assert {task_id for (task_id,) in fleet.rows("SELECT task_id FROM tasks")} == expected
    for i in range(ROUNDS):
        (inputs,) = fleet.rows(f"SELECT inputs FROM tasks WHERE task_id = 'r{i}/shared'")[0]
        assert json.loads(inputs) == {"by": next(me for me in racers if outcomes[me][i] == "won")}
    fleet.stop_all()
    runs = Counter(task_id for task_id, _, _, _ in fleet.executions())
    assert set(runs) == expected and set(runs.values()) == {1}, runs.most_common(3)


@pytest.mark.slow
def test_a_client_cancels_running_and_waiting_tasks_that_workers_hold_and_they_stay_cancelled(fleet: Fleet) -> None:
    for _ in range(3):
        fleet.start()
    fleet.until(lambda: fleet.registered(3), "three workers")
    held = [f"h{i}" for i in range(6)]
    specs = [{"id": task_id, "type": "h"} for task_id in held]
    specs += [{"id": f"d{i}", "type": "t", "dependencies": [f"h{i}"]} for i in range(6)]
    specs += [{"id": f"e{i}", "type": "t", "dependencies": [f"d{i}"]} for i in range(6)]
    with fleet.runtime() as client:
        orchestrator = TaskOrchestrator(client)
        orchestrator.submit_tasks(specs)
        fleet.until(lambda: {task_id for task_id, *_ in fleet.executions()} == set(held), "every held task to run")

        # When another process cancels three running tasks and a waiting one
        for task_id in ("h0", "h1", "h2", "d3"):
            assert orchestrator.cancel_task(task_id) is True

        # Then they and everything after them are cancelled at once, while the agents still hold
        cancelled = {"h0", "h1", "h2", "d0", "d1", "d2", "d3", "e0", "e1", "e2", "e3"}
        state_of = "SELECT task_id FROM tasks WHERE state = 'cancelled'"
        fleet.until(lambda: {t for (t,) in fleet.rows(state_of)} == cancelled, "the cancellations")
        assert orchestrator.cancel_task("h0") is False  # already final: nothing changes
        # and once the agents let go, the rest completes and nothing cancelled was completed after all
        (fleet.folder / "release").touch()
        statuses = orchestrator.wait([s["id"] for s in specs], timeout=DEADLINE)
    assert {s.task_id for s in statuses if s.state.value == "cancelled"} == cancelled
    assert {s.task_id for s in statuses if s.state.value == "completed"} == {s["id"] for s in specs} - cancelled
    fleet.stop_all()
    assert fleet.states() == {"cancelled": len(cancelled), "completed": len(specs) - len(cancelled)}
    runs = Counter(task_id for task_id, _, _, _ in fleet.executions())
    assert set(runs) == {s["id"] for s in specs} - (cancelled - {"h0", "h1", "h2"})
    assert set(runs.values()) == {1}
