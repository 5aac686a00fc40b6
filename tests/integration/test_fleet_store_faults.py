"""Workers sharing PostgreSQL while the server drops their connections (``pg_terminate_backend``, as in a
failover): no worker dies, every task completes, and each runs once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pepper.core import TaskOrchestrator
from tests.integration.fleet import Fleet, fleet_on

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str) -> Iterator[Fleet]:
    group = Fleet(tmp_path, postgres_url, hosts=True)
    yield group
    group.close()


def drop_connections(url: str) -> int:
    """Terminate every other connection of the workers' role to the database; how many there were (a server's
    own connections of a superuser, which this role may not end, are left alone)."""
    with psycopg.connect(url, autocommit=True) as admin:
        return int(admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user"
        ).fetchone()[0])  # fmt: skip


@pytest.mark.slow
def test_workers_outlive_their_connections_being_dropped_and_run_each_task_once(fleet: Fleet) -> None:
    total = 600  # the gate, not the number of tasks, keeps work waiting until the dropping is over
    for _ in range(3):
        fleet.start()
    fleet.until(lambda: fleet.registered(3), "three workers")
    # Chains of 20; the later half of the chains waits for ``gate``, held until the dropping is over, so the
    # connections are dropped while there is work left, however fast the machine
    specs = [{"id": "gate", "type": "h"}] + [
        {"id": f"c{i:04d}", "type": "t",
         "dependencies": [f"c{i - 1:04d}"] if i % 20 else (["gate"] if i >= total // 2 else [])}
        for i in range(total)
    ]  # fmt: skip
    with fleet.runtime() as client:
        TaskOrchestrator(client).submit_tasks(specs)

    # While the tasks run, the server drops every connection again and again
    stop = threading.Event()
    dropped: list[int] = []

    def keep_dropping() -> None:
        while not stop.is_set() and len(dropped) < 12:
            dropped.append(drop_connections(fleet.db))
            stop.wait(0.1)

    dropper = threading.Thread(target=keep_dropping, daemon=True)
    fleet.until(lambda: fleet.executions(), "the first task to run")
    dropper.start()
    try:
        fleet.until(lambda: len(dropped) >= 12, "the connections to be dropped")
    finally:
        stop.set()
        dropper.join(30)
    assert sum(dropped) > 3 and len([n for n in dropped if n]) >= 3, dropped
    assert f"c{total - 1:04d}" not in {task_id for task_id, _, _, _ in fleet.executions()}  # it waits for the gate
    (fleet.folder / "release").touch()

    # Then the workers, still alive, finish everything, and no task ran twice
    fleet.until(lambda: fleet.states() == {"completed": total + 1}, "every task to complete")
    fleet.stop_all()
    runs = Counter(task_id for task_id, _, _, _ in fleet.executions())
    assert len(runs) == total + 1 and set(runs.values()) == {1}, runs.most_common(5)
    assert fleet.rows("SELECT COUNT(*) FROM attempts") == [(0,)]


@pytest.fixture(params=["sqlite", "postgres"])
def failing_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on(request, tmp_path, faults=True)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["refuse", "lose"], ids=["nothing-written", "written-unanswered"])
def test_workers_whose_commits_fail_for_a_while_lose_nothing_and_run_each_task_once(
    failing_fleet: Fleet, fault: str
) -> None:
    fleet, total = failing_fleet, 600
    for _ in range(3):
        fleet.start()
    fleet.until(lambda: fleet.registered(3), "three workers")
    specs = [
        {"id": f"c{i:04d}", "type": "t", "dependencies": [f"c{i - 1:04d}"] if i % 10 else []} for i in range(total)
    ]
    specs += [{"id": f"f{i:03d}", "type": "f", "max_retries": 2} for i in range(30)]
    with fleet.runtime() as client:
        TaskOrchestrator(client).submit_tasks(specs)

    # While the tasks run, the workers' commits fail for a while
    fleet.until(lambda: len(fleet.executions()) >= 50, "the first tasks to run")
    switch = fleet.folder / fault
    switch.touch()
    said = {"refuse": "disk is full", "lose": "server closed the connection"}[fault]
    fleet.until(lambda: all(said in fleet.output(proc) for proc in fleet.procs), "every worker's commits to fail")
    switch.unlink()

    # Then the workers, still alive, finish everything; each attempt ran once, and no task ran again
    fleet.until(lambda: fleet.states() == {"completed": len(specs)}, "every task to complete")
    fleet.stop_all()
    runs = fleet.once_per_attempt()
    assert {task_id for task_id, _ in runs} == {s["id"] for s in specs}
    for task_id, attempt in runs:
        assert attempt == 1 or (task_id.startswith("f") and attempt == 2), (task_id, attempt)
