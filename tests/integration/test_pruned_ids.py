"""A pruned task id is free again, in every engine that held the task: a new task under that id runs with its own
spec, an acknowledged submission of it is stored, and a task depending on it waits for the new one.

The worker runs in the test's process; the prunes and submissions come from other processes (the CLI, a script
with no agents), or from the worker's own process (the store's prune, the background retention).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.errors import DuplicateTaskError, TaskNotFoundError
from pepper.testing import ManualClock
from tests.support import eventually, read_rows

PY = sys.executable
_ROOT = str(Path(__file__).resolve().parents[2])
_ENV = {**{k: v for k, v in os.environ.items() if k != "PEPPER_DB"}, "PYTHONPATH": _ROOT}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the tasks are stored: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "pepper.db")
    return str(request.getfixturevalue("postgres_url"))


def cli(db: str, *args: str) -> str:
    """Run ``pepper ARGS --db DB`` in a process of its own; its output."""
    done = subprocess.run([PY, "-m", "pepper", *args, "--db", db], env=_ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def prune_elsewhere(db: str) -> dict[str, int]:
    """``pepper prune --older-than 0s`` from another process: every finished task that may go goes."""
    return json.loads(cli(db, "prune", "--older-than", "0s", "--json"))["removed"]


def elsewhere(db: str, code: str) -> None:
    """Run ``code`` in another process, with ``o`` an orchestrator over ``db`` (no agents there)."""
    script = f"import pepper\nrt = pepper.Runtime(db={db!r})\no = pepper.TaskOrchestrator(rt)\n"
    done = subprocess.run([PY, "-c", script + textwrap.dedent(code) + "\nrt.close()"], env=_ENV, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def row(db: str, task_id: str) -> dict[str, Any] | None:
    """The stored row of ``task_id`` (inputs and result decoded), read through a store of its own."""
    found = read_rows(db, f"SELECT state, inputs, result, attempts, agent_id FROM tasks WHERE task_id = '{task_id}'")
    if not found:
        return None
    state, inputs, result, attempts, agent_id = found[0]
    return {"state": state, "inputs": json.loads(inputs), "result": None if result is None else json.loads(result),
            "attempts": attempts, "agent_id": agent_id}  # fmt: skip


@pytest.fixture
def worker(db: str, tmp_path: Path) -> Iterator[tuple[pepper.Runtime, list[tuple[str, dict[str, Any]]]]]:
    """A running worker with agent ``ag`` (task type ``t``), and every call of it: ``(task id, inputs)``. A task
    with input ``fail`` fails (no retry unless it asks for one)."""
    runs: list[tuple[str, dict[str, Any]]] = []
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), poll_interval="20ms", retry_delay="10m")

    @pepper.agent("ag", task_types=["t"], runtime=runtime)
    def ag(task: pepper.TaskRun) -> object:
        runs.append((task.task_id, dict(task.inputs)))
        if task.inputs.get("fail"):
            raise RuntimeError("this one fails")
        return {"ran_with": dict(task.inputs), "deps": dict(task.dependency_results or {})}

    runtime.start()
    yield runtime, runs
    runtime.close()


def keep_counter(orchestrator: pepper.TaskOrchestrator) -> None:
    """An unfinished task stored after the others: its row outlives every prune of the test."""
    orchestrator.submit_task(task_id="keeper", task_type="nobody")


@pytest.mark.parametrize("first", ["completed", "failed"])
def test_a_pruned_id_submitted_again_from_another_process_runs_with_its_new_inputs(db, worker, first):
    runtime, runs = worker
    o = pepper.TaskOrchestrator(runtime)
    # Given X ran here (and is held in this worker's memory), then was pruned by another process
    old = {"fail": 1} if first == "failed" else {"v": 1}
    o.submit_task(task_id="X", task_type="t", inputs=old)
    o.wait("X", timeout=30)
    keep_counter(o)
    assert prune_elsewhere(db)["tasks"] == 1
    assert row(db, "X") is None

    # When a third process submits X again with other inputs
    cli(db, "submit", "t", "--id", "X", "--input", "v=2")

    # Then the worker runs the new X with its own inputs, once, and the row holds that run
    done = eventually(lambda: (r := row(db, "X")) is not None and r["state"] == "completed" and r, "the new X ran")
    assert done == {"state": "completed", "inputs": {"v": 2}, "result": {"ran_with": {"v": 2}, "deps": {}},
                    "attempts": 1, "agent_id": "ag"}  # fmt: skip
    assert runs == [("X", old), ("X", {"v": 2})]
    status = o.get_task_status("X")
    assert (status.inputs, status.result) == ({"v": 2}, {"ran_with": {"v": 2}, "deps": {}})


def test_a_worker_forgets_what_another_process_pruned(db, worker):
    runtime, runs = worker
    o = pepper.TaskOrchestrator(runtime)
    o.submit_tasks([{"id": "X", "type": "t"}, {"id": "kept", "type": "t"}])
    o.wait(["X", "kept"], timeout=30)
    o.submit_task(task_id="waits", task_type="nobody", dependencies=["kept"])  # keeps "kept" from being pruned
    assert prune_elsewhere(db)["tasks"] == 1

    def forgotten() -> bool:
        try:
            o.get_task_status("X")
        except TaskNotFoundError:
            return True
        return False

    # Then the worker no longer answers for X from memory, and still knows what stayed
    eventually(forgotten, "the worker to forget X")
    assert o.get_task_status("kept").state is pepper.TaskState.COMPLETED
    assert runs == [("X", {}), ("kept", {})] or runs == [("kept", {}), ("X", {})]


def test_a_worker_that_missed_prunes_whose_records_went_forgets_what_they_deleted(tmp_path):
    # SQLite: a PostgreSQL worker is told of each prune as it commits, and looks at once
    db = str(tmp_path / "pepper.db")
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), poll_interval="1h", retry_delay="10m")
    runs = []
    pepper.agent("ag", task_types=["t"], runtime=runtime)(lambda task: runs.append(task.task_id) or 1)
    try:
        o = pepper.TaskOrchestrator(runtime)
        o.submit_task(task_id="X", task_type="t")
        o.wait("X", timeout=30)
        keep_counter(o)
        # Given three prunes before the worker looks again: the third lets the first one's records go
        assert prune_elsewhere(db)["tasks"] == 1
        for other in ("Y", "Z"):
            elsewhere(db, f"o.submit_task(task_id={other!r}, task_type='nobody'); o.cancel_task({other!r})")
            assert prune_elsewhere(db)["tasks"] == 1
        # When it looks (as its next poll would)
        service = runtime.portal().call(runtime.engine())
        runtime.portal().call(_catch_up(service))
        # Then it no longer answers for X from memory
        with pytest.raises(TaskNotFoundError):
            o.get_task_status("X")
        assert runs == ["X"]
    finally:
        runtime.close()


async def _catch_up(service: Any) -> None:
    service.engine.catch_up()


def test_the_pruning_process_takes_a_pruned_id_again_whatever_its_spec(db, worker):
    runtime, runs = worker
    o = pepper.TaskOrchestrator(runtime)
    o.submit_tasks([{"id": "X", "type": "t", "inputs": {"v": 1}}, {"id": "Y", "type": "t", "inputs": {"v": 1}}])
    o.wait(["X", "Y"], timeout=30)
    # When this very process prunes them (through its store, as the API does)
    assert runtime.store.prune(runtime.clock.now() + 60)["tasks"] == 2
    # Then a new X with another spec is taken, and a new Y with the same spec is stored and run again
    o.submit_task(task_id="X", task_type="t", inputs={"v": 2})
    o.submit_task(task_id="Y", task_type="t", inputs={"v": 1})
    eventually(lambda: all((r := row(db, t)) and r["state"] == "completed" for t in "XY"), "both ran again")
    assert row(db, "X") == {"state": "completed", "inputs": {"v": 2}, "result": {"ran_with": {"v": 2}, "deps": {}},
                            "attempts": 1, "agent_id": "ag"}  # fmt: skip
    assert row(db, "Y") == {"state": "completed", "inputs": {"v": 1}, "result": {"ran_with": {"v": 1}, "deps": {}},
                            "attempts": 1, "agent_id": "ag"}  # fmt: skip
    assert sorted(runs, key=str) == [("X", {"v": 1}), ("X", {"v": 2}), ("Y", {"v": 1}), ("Y", {"v": 1})]
    # and a different spec for a stored id is still refused, with nothing changed
    with pytest.raises(DuplicateTaskError):
        o.submit_task(task_id="X", task_type="t", inputs={"v": 3})
    assert row(db, "X")["inputs"] == {"v": 2}  # type: ignore[index]


def test_a_dependent_of_a_pruned_task_waits_for_the_new_one(db, worker):
    runtime, runs = worker
    o = pepper.TaskOrchestrator(runtime)
    o.submit_task(task_id="X", task_type="t", inputs={"v": 1})
    o.wait("X", timeout=30)
    keep_counter(o)
    prune_elsewhere(db)
    # When dependents of X are submitted after the prune, from another process and from this one
    cli(db, "submit", "t", "--id", "D", "--depends-on", "X")
    o.submit_task(task_id="E", task_type="t", dependencies=["X"])
    eventually(lambda: (r := row(db, "D")) is not None and r, "D stored")
    # Then both wait for X to be submitted, and neither ran with the old X's result
    for task_id in ("D", "E"):
        status = o.get_task_status(task_id)
        assert status.state is pepper.TaskState.BLOCKED, status
        assert [w.kind for w in status.waiting_on] == ["dependency_missing"]
    assert row(db, "D")["state"] == row(db, "E")["state"] == "blocked"  # type: ignore[index]
    assert runs == [("X", {"v": 1})]
    # and once a new X is submitted, they run with its result
    cli(db, "submit", "t", "--id", "X", "--input", "v=2")
    o.wait(["D", "E"], timeout=30)
    new_x = {"ran_with": {"v": 2}, "deps": {}}
    for task_id in ("D", "E"):
        assert row(db, task_id) == {"state": "completed", "inputs": {}, "attempts": 1, "agent_id": "ag",
                                    "result": {"ran_with": {}, "deps": {"X": new_x}}}  # fmt: skip
    assert sorted(runs, key=str) == [("D", {}), ("E", {}), ("X", {"v": 1}), ("X", {"v": 2})]


def test_background_retention_frees_the_ids_it_prunes(tmp_path):
    db = str(tmp_path / "pepper.db")
    clock = ManualClock(start=10**10)
    runs: list[tuple[str, dict[str, Any]]] = []
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, retention="1h", poll_interval="2h",
                             heartbeat_interval="2h", sample_interval="2h")  # fmt: skip

    @pepper.agent("ag", task_types=["t"], runtime=runtime)
    def ag(task: pepper.TaskRun) -> object:
        runs.append((task.task_id, dict(task.inputs)))
        return dict(task.inputs)

    try:
        o = pepper.TaskOrchestrator(runtime)
        o.submit_tasks([{"id": "X", "type": "t", "inputs": {"v": 1}}, {"id": "Y", "type": "t", "inputs": {"v": 1}}])
        o.wait(["X", "Y"], timeout=30)
        # When the worker's own retention prunes them (its timer: a quarter of the retention; they go once they
        # ended more than the retention ago)
        for _ in range(5):
            clock.advance(clock.wait_for_timer(899, 901) - clock.now())
        eventually(lambda: not read_rows(db, "SELECT task_id FROM tasks"), "the background prune")
        # Then new tasks under those ids are stored and run: one with a new spec, one with the old spec
        o.submit_task(task_id="X", task_type="t", inputs={"v": 2})
        o.submit_task(task_id="Y", task_type="t", inputs={"v": 1})
        assert [s.result for s in o.wait(["X", "Y"], timeout=30)] == [{"v": 2}, {"v": 1}]
        assert sorted(read_rows(db, "SELECT task_id, state, inputs FROM tasks")) == [
            ("X", "completed", '{"v":2}'), ("Y", "completed", '{"v":1}')]  # fmt: skip
        assert sorted(runs, key=str) == [("X", {"v": 1}), ("X", {"v": 2}), ("Y", {"v": 1}), ("Y", {"v": 1})]
    finally:
        runtime.close()


def test_narrowed_saves_never_use_the_values_of_a_pruned_row(db, tmp_path):
    """The worker remembers the rows it wrote (version 3: failed once, waiting for a retry); another process
    cancels, prunes and submits the same ids again, and places them twice (version 3 again). The worker's claims
    of the new rows, many in one commit, must store their attempt and agent."""
    n = 20
    ids = [f"x{i:02d}" for i in range(n)]
    gate = threading.Event()
    runs: list[tuple[str, dict[str, Any]]] = []
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), poll_interval="20ms", retry_delay="10m",
                             keep_finished=0)  # fmt: skip

    @pepper.agent("ag", task_types=["t"], capacity=n + 1, runtime=runtime)
    def ag(task: pepper.TaskRun) -> object:
        runs.append((task.task_id, dict(task.inputs)))
        if task.inputs.get("fail"):
            raise RuntimeError("the first life fails")
        if task.task_id != "go":
            assert gate.wait(60)
        return "ok"

    try:
        o = pepper.TaskOrchestrator(runtime)
        o.submit_tasks([{"id": t, "type": "t", "inputs": {"fail": 1}, "retries": 1} for t in ids])
        stored = "SELECT task_id, state, attempts, agent_id, version FROM tasks ORDER BY task_id"
        eventually(lambda: [r[1:] for r in read_rows(db, stored)] == [("pending", 1, "ag", 3)] * n, "first lives")
        elsewhere(db, f"for t in {ids!r}: o.cancel_task(t)")
        eventually(lambda: {r[1] for r in read_rows(db, stored)} == {"cancelled"}, "the cancels")
        keep_counter(o)
        assert prune_elsewhere(db)["tasks"] == n
        elsewhere(db, f"o.submit_tasks([{{'id': t, 'type': 't', 'needs': ['go']}} for t in {ids!r}])\n"
                      f"rt.place({{t: 'ag' for t in {ids!r}}})\nrt.place({{t: 'ag' for t in {ids!r}}})")  # fmt: skip
        assert {r[1:] for r in read_rows(db, stored) if r[0] in ids} == {("blocked", 0, None, 3)}
        elsewhere(db, "o.submit_task(task_id='go', task_type='t')")
        running = eventually(lambda: [r for r in read_rows(db, stored) if r[0] in ids and r[1] == "in_progress"]
                             if sum(1 for _, ran in runs if ran == {}) == n + 1 else None, "the claims")  # fmt: skip
        assert len(running) == n and {r[2:4] for r in running} == {(1, "ag")}
        gate.set()
        o.wait(ids, timeout=60)
        assert {r[1:4] for r in read_rows(db, stored) if r[0] in ids} == {("completed", 1, "ag")}
        assert sorted(read_rows(db, "SELECT task_id, attempt, agent_id FROM attempts")) == []
        assert sorted(runs, key=str) == sorted(
            [(t, {"fail": 1}) for t in ids] + [(t, {}) for t in [*ids, "go"]], key=str
        )
    finally:
        gate.set()
        runtime.close()


def test_a_task_stored_right_after_a_prune_of_the_newest_rows_is_seen_by_a_running_worker(db, tmp_path):
    """The prune deletes every row, the newest included, and a task is stored at once, before the worker
    looks again: the worker must still find it (the change numbers never go back)."""
    clock = ManualClock(start=10**10)
    runs: list[str] = []
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, poll_interval="1s",
                             heartbeat_interval="2h", sample_interval="2h")  # fmt: skip

    @pepper.agent("ag", task_types=["t"], runtime=runtime)
    def ag(task: pepper.TaskRun) -> object:
        runs.append(task.task_id)
        return task.task_id

    def polled(condition: Any) -> Any:
        """``condition`` once true, the worker looking for others' writes (a second of its clock) meanwhile."""

        def looked() -> Any:
            clock.advance(1)
            return condition()

        return eventually(looked, "the worker to catch up")

    try:
        runtime.start()
        o = pepper.TaskOrchestrator(runtime)
        elsewhere(db, "o.submit_task(task_id='X', task_type='t')\no.submit_task(task_id='N', task_type='nobody')")
        polled(lambda: (r := row(db, "X")) is not None and r["state"] == "completed")
        elsewhere(db, "o.cancel_task('N')")  # the newest change, by another process
        polled(lambda: o.get_task_status("N").state is pepper.TaskState.CANCELLED)
        # When one process prunes every row and stores a new task before the worker looks again
        elsewhere(db, "assert rt.store.prune(10**12)['tasks'] == 2\no.submit_task(task_id='Y', task_type='t')")
        # Then the worker finds it and runs it
        polled(lambda: (r := row(db, "Y")) is not None and r["state"] == "completed")
        assert runs == ["X", "Y"]
    finally:
        runtime.close()
