"""Three ``pepper worker`` processes on one database run a DAG with retries and timeouts; one is killed (-9) while
it holds work, another is stopped (SIGTERM) in a burst. Every task completes; executions are counted in the
agents: each attempt runs once, and a task runs again only because the worker running it was killed."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from pepper.core import TaskOrchestrator
from tests.integration.fleet import Fleet, fleet_on

GROUPS = 12


def dag() -> list[dict]:
    """Per group a root, a fan-out to a task failing once, one timing out once and one held until released, and
    a fan-in joining the three; then a chain of three after the join."""
    specs = []
    for g in range(GROUPS):
        root, flaky, stuck, held, join = (f"g{g}/{name}" for name in ("root", "flaky", "stuck", "held", "join"))
        specs += [
            {"id": root, "type": "t"},
            {"id": flaky, "type": "f", "dependencies": [root], "max_retries": 3},
            {"id": stuck, "type": "s", "dependencies": [root], "max_retries": 3, "timeout": 1},
            {"id": held, "type": "h", "dependencies": [root]},
            {"id": join, "type": "t", "dependencies": [flaky, stuck, held]},
        ]
        previous = join
        for link in range(3):
            specs.append({"id": f"g{g}/chain{link}", "type": "t", "dependencies": [previous]})
            previous = f"g{g}/chain{link}"
    return specs


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on(request, tmp_path)


@pytest.mark.slow
def test_a_worker_killed_holding_dag_work_loses_nothing_and_only_its_attempts_run_again(fleet: Fleet) -> None:
    specs = dag()
    kinds = {spec["id"]: spec["type"] for spec in specs}
    workers = [fleet.start() for _ in range(3)]
    fleet.until(lambda: fleet.registered(3), "three workers")
    with fleet.runtime() as client:
        TaskOrchestrator(client).submit_tasks(specs)

    # Given every held task running, spread over the three workers
    def holding() -> dict[int, int]:
        return Counter(pid for task_id, _, pid, _ in fleet.executions() if kinds[task_id] == "h")

    fleet.until(lambda: sum(holding().values()) == GROUPS, "every held task to start")
    victim = max(workers, key=lambda proc: holding().get(proc.pid, 0))
    assert holding()[victim.pid] > 0

    # When the busiest worker is killed and a fresh one started, then the held tasks released
    fleet.kill(victim)
    fleet.start()
    (fleet.folder / "release").touch()
    fleet.until(lambda: fleet.states() == {"completed": len(specs)}, "every task to complete")
    fleet.stop_all()

    # Then each attempt ran at most once, and every task's last attempt ran once, on a live worker
    fleet.once_per_attempt()
    by_task: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for task_id, attempt, pid, _ in fleet.executions():
        by_task[task_id].append((attempt, pid))
    assert set(by_task) == set(kinds)
    attempts = {task_id: int(n) for task_id, n in fleet.rows("SELECT task_id, attempts FROM tasks")}
    for task_id, runs in by_task.items():
        assert attempts[task_id] == max(attempt for attempt, _ in runs), (task_id, runs)  # the last one ran
        for attempt, pid in runs:  # an earlier one failed on purpose, or its worker was killed
            failed_on_purpose = attempt == 1 and kinds[task_id] in ("f", "s")
            assert attempt == attempts[task_id] or failed_on_purpose or pid in fleet.killed, (task_id, runs)
    # and every held task the killed worker was running is recorded as an interrupted attempt
    interrupted = {row[0] for row in fleet.rows("SELECT task_id FROM attempts WHERE outcome = 'interrupted'")}
    held_by_victim = {t for t, runs in by_task.items() if kinds[t] == "h" and any(p in fleet.killed for _, p in runs)}
    assert held_by_victim and held_by_victim <= interrupted
    assert {result for (result,) in fleet.rows("SELECT result FROM tasks")} == {f'"{t}"' for t in kinds}
    # and the first attempt of each task that waits too long, run on a live worker, ended as timed out
    timed_out = {t for (t,) in fleet.rows("SELECT task_id FROM attempts WHERE error LIKE '%TimeoutError%'")}
    stuck_live = {t for t, runs in by_task.items() if kinds[t] == "s" and (1, victim.pid) not in runs}
    assert stuck_live and stuck_live <= timed_out


@pytest.mark.slow
def test_a_worker_stopped_in_a_burst_keeps_what_it_finished_and_nothing_runs_twice(fleet: Fleet) -> None:
    total = 600
    first, _ = fleet.start(), fleet.start()
    fleet.until(lambda: fleet.registered(2), "two workers")
    with fleet.runtime() as client:
        TaskOrchestrator(client).submit_tasks([{"id": f"b{i:04d}", "type": "t"} for i in range(total)])

    # When a worker is stopped (SIGTERM) while the burst runs
    fleet.until(lambda: len(fleet.executions()) >= total // 5, "a fifth of the burst to run")
    fleet.stop(first)
    ran_by_first = {task_id for task_id, _, pid, _ in fleet.executions() if pid == first.pid}
    assert ran_by_first

    # Then everything it ran is stored completed (by it), and the other worker runs the rest
    results = dict(fleet.rows("SELECT task_id, state FROM tasks"))
    assert {results[task_id] for task_id in ran_by_first} == {"completed"}
    fleet.until(lambda: fleet.states() == {"completed": total}, "every task to complete")
    fleet.stop_all()
    runs = Counter(task_id for task_id, _, _, _ in fleet.executions())
    assert len(runs) == total and set(runs.values()) == {1}, runs.most_common(3)
    # no attempt failed; one claimed as the stop began was handed back before it ran, not run and thrown away
    handed_back = fleet.rows("SELECT task_id, outcome FROM attempts")
    assert {outcome for _, outcome in handed_back} <= {"interrupted"}
    assert not {task_id for task_id, _ in handed_back} & ran_by_first
