"""A process cancels a task that a worker in another process has claimed and runs, before this process has read
the claim: its cancel loses to the worker's row. The cancel is decided again on that row (the worker is asked to
stop the task), and the task's dependent is cancelled with it, never alone while the task runs on. On a SQLite
file and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.stored import StoreBackend
from pepper.model.record import TaskRecord
from tests.integration.fleet import CONFIG, DEADLINE, Fleet, fleet_on


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on(request, tmp_path)


def _ran(fleet: Fleet) -> set[str]:
    return {task_id for task_id, *_ in fleet.executions()}


@pytest.mark.slow
def test_a_cancel_decided_on_a_stale_row_stops_the_running_task_and_its_dependent_with_it(fleet: Fleet) -> None:
    # The test's own process holds its engine's loop on purpose while the worker starts: the other workers must
    # not judge it dead meanwhile (its heartbeat waits for the loop too).
    (fleet.folder / "pepper.toml").write_text(CONFIG.replace('visibility_timeout = "2s"', 'visibility_timeout = "10m"'))
    outcome: dict[str, Any] = {}
    with fleet.runtime() as client:
        orchestrator = TaskOrchestrator(client)

        @pepper.agent("blocker", task_types=["block"], runtime=client)
        async def block(task: pepper.TaskRun) -> str:
            # Runs on the engine's loop and holds it: this engine reads nothing from the store meanwhile, so it
            # still holds T pending when the worker has claimed and started it.
            (fleet.folder / "loop-held").touch()
            end = time.monotonic() + DEADLINE
            while "T" not in _ran(fleet):
                assert time.monotonic() < end, "the worker never ran T"
                time.sleep(0.01)
            outcome["state held"] = client_state("T")
            outcome["cancelled"] = await orchestrator.cancel_task_async("T", reason="not needed")
            return "done"

        def client_state(task_id: str) -> str:
            service = client._service
            assert service is not None
            return service.engine.state.tasks[task_id].state.value

        orchestrator.submit_task("T", "h", "high", [])  # the fleet's ``held`` agent: holds until ``release``
        orchestrator.submit_task("D", "t", "high", ["T"])
        # (from a thread: its acknowledgement comes through the loop that B's agent holds)
        threading.Thread(target=orchestrator.submit_task, args=("B", "block", "high", []), daemon=True).start()
        fleet.until(lambda: (fleet.folder / "loop-held").exists(), "this process's loop to be held")
        fleet.start()
        assert orchestrator.get_result("B", timeout=DEADLINE) == "done"
        assert outcome["state held"] == "pending"  # the cancel was decided on the stale row

        # Then the cancel is recorded: the worker running T is asked to stop it (not "already finished")
        assert outcome["cancelled"] is True
        (row,) = fleet.rows("SELECT state, cancel_requested FROM tasks WHERE task_id = 'T'")
        assert row[0] == "cancelled" or bool(row[1]), row
        # and the worker stops it: T and its dependent end cancelled together, while T's agent still holds
        rows = "SELECT task_id, state, reason FROM tasks WHERE task_id IN ('T', 'D') ORDER BY task_id"
        fleet.until(lambda: {state for _, state, _ in fleet.rows(rows)} == {"cancelled"}, "T and D cancelled")
        assert fleet.rows(rows) == [("D", "cancelled", "dependency 'T' cancelled"), ("T", "cancelled", "not needed")]
        (fleet.folder / "release").touch()
        statuses = orchestrator.wait(["T", "D"], timeout=DEADLINE)
    assert [s.state.value for s in statuses] == ["cancelled", "cancelled"]
    fleet.stop_all()
    # T ran once (its attempt was stopped), D never: nothing of either was lost or run twice
    assert Counter(task_id for task_id, *_ in fleet.executions()) == Counter({"T": 1})
    assert fleet.rows("SELECT state FROM tasks WHERE task_id = 'T'") == [("cancelled",)]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "p.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def test_a_cancel_without_an_engine_that_loses_to_a_completion_leaves_the_dependent_to_run(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    client = pepper.Runtime(db=db, home=str(tmp_path / "client"))
    worker = pepper.Runtime(db=db, home=str(tmp_path / "worker"), poll_interval="20ms")
    try:
        orchestrator = TaskOrchestrator(client)
        orchestrator.submit_task("T", "first", "high", [])
        orchestrator.submit_task("D", "then", "high", ["T"])
        assert not client.running  # a process without an engine: the cancel is written straight to the store

        def finish_t() -> None:
            @pepper.agent("first", task_types=["first"], runtime=worker)
            def first(task: pepper.TaskRun) -> str:
                ran.append(task.task_id)
                return "done"

            assert TaskOrchestrator(worker).get_result("T", timeout=DEADLINE) == "done"

        read = StoreBackend._neighbourhood

        def stale(self: StoreBackend, target: TaskRecord) -> list[TaskRecord]:
            records = read(self, target)
            if not ran:  # the rows are read; before the cancel is written, another process runs T to its end
                elsewhere = threading.Thread(target=finish_t)
                elsewhere.start()
                elsewhere.join(DEADLINE)
            return records

        monkeypatch.setattr(StoreBackend, "_neighbourhood", stale)
        # When the cancel, decided on T pending, is written
        cancelled = orchestrator.cancel_task("T")
        # Then it loses to the completion: nothing was cancelled, and D is left to run
        assert cancelled is False and ran == ["T"]
        assert [orchestrator.get_task_status(t).state.value for t in ("T", "D")] == ["completed", "pending"]

        @pepper.agent("then", task_types=["then"], runtime=worker)
        def then(task: pepper.TaskRun) -> str:
            ran.append(task.task_id)
            return "after"

        assert TaskOrchestrator(worker).get_result("D", timeout=DEADLINE) == "after"
        assert Counter(ran) == Counter({"T": 1, "D": 1})
    finally:
        client.close()
        worker.close()
