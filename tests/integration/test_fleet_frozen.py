"""A worker frozen (SIGSTOP) past the visibility timeout is presumed dead and its tasks run elsewhere; then it
wakes up (SIGCONT) while work is being handed out. Nothing it claims after waking runs twice."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pepper.core import TaskOrchestrator
from tests.integration.fleet import Fleet, fleet_on, freeze_between_writes


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on(request, tmp_path)


@pytest.mark.slow
def test_a_worker_waking_after_it_was_presumed_dead_runs_nothing_a_second_time(fleet: Fleet) -> None:
    held = [f"h{i}" for i in range(4)]
    first = fleet.start()
    fleet.until(lambda: fleet.registered(1), "the first worker")
    with fleet.runtime() as client:
        orchestrator = TaskOrchestrator(client)
        orchestrator.submit_tasks([{"id": task_id, "type": "h"} for task_id in held])
        fleet.until(lambda: len(fleet.executions()) == len(held), "the held tasks to start on the first worker")
        second = fleet.start()
        fleet.until(lambda: fleet.registered(2), "the second worker")

        # Given the first worker frozen until the second presumes it dead and runs its tasks again
        freeze_between_writes(first, fleet.db)
        fleet.until(lambda: len(fleet.executions()) == 2 * len(held), "the second worker to take the held tasks")
        assert {pid for _, _, pid, _ in fleet.executions()[len(held) :]} == {second.pid}

        # When a burst is submitted and the first worker wakes up while it is handed out
        burst = [f"b{i:03d}" for i in range(1000)]
        orchestrator.submit_tasks([{"id": task_id, "type": "t"} for task_id in burst])
        fleet.until(lambda: len(fleet.executions()) > 2 * len(held) + 5, "the burst to start")
        first.send_signal(signal.SIGCONT)
        (fleet.folder / "release").touch()
        statuses = orchestrator.wait(held + burst, timeout=120)
    assert {s.state.value for s in statuses} == {"completed"}
    fleet.stop_all()

    # Then each task of the burst ran once, and a held task ran again only on the second worker
    runs = Counter(task_id for task_id, _, _, _ in fleet.executions())
    assert {t: n for t, n in runs.items() if t in burst and n != 1} == {}
    assert all(runs[t] == 2 for t in held)
    fleet.once_per_attempt()
    assert any(pid == first.pid and t in burst for t, _, pid, _ in fleet.executions())  # it did take work again


@pytest.mark.slow
def test_a_task_cancelled_while_its_worker_is_frozen_and_then_killed_is_not_run_again(fleet: Fleet) -> None:
    first = fleet.start()
    fleet.until(lambda: fleet.registered(1), "the first worker")
    with fleet.runtime() as client:
        orchestrator = TaskOrchestrator(client)
        orchestrator.submit_tasks([
            {"id": "h0", "type": "h"}, {"id": "h1", "type": "h"},
            {"id": "after", "type": "t", "dependencies": ["h0"]},
        ])  # fmt: skip
        fleet.until(lambda: len(fleet.executions()) == 2, "the held tasks to start on the first worker")
        second = fleet.start()
        fleet.until(lambda: fleet.registered(2), "the second worker")

        # Given the worker running the tasks frozen, so that it cannot act on a cancel
        freeze_between_writes(first, fleet.db)
        # When another process cancels one of them, and the frozen worker is then killed
        assert orchestrator.cancel_task("h0", reason="not needed") is True
        fleet.kill(first)
        (fleet.folder / "release").touch()
        statuses = orchestrator.wait(["h0", "h1", "after"], timeout=120)

    # Then the cancelled task and its dependent end cancelled, the other runs again on the second worker
    assert [(s.task_id, s.state.value) for s in statuses] == [
        ("h0", "cancelled"), ("h1", "completed"), ("after", "cancelled"),
    ]  # fmt: skip
    assert statuses[0].reason == "not needed"
    fleet.stop_all()
    ran = [(task_id, pid) for task_id, _, pid, _ in fleet.executions()]
    assert sorted(ran) == sorted([("h0", first.pid), ("h1", first.pid), ("h1", second.pid)])
