"""Waiting for many tasks at once reads the finished ones the engine no longer keeps in one go, and does not
load them back into memory."""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine import task_statuses
from pepper.errors import TaskNotFoundError, WaitTimeoutError
from tests.support import eventually


def test_waiting_again_for_tasks_trimmed_from_memory_reads_them_without_keeping_them(tmp_path: Path) -> None:
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), keep_finished=5,
                        poll_interval="20ms") as runtime:  # fmt: skip
        pepper.agent("echo", task_types=["echo"], capacity=4, runtime=runtime)(lambda task: task.inputs["n"])
        orchestrator = TaskOrchestrator(runtime)
        ids = [f"t-{i:02d}" for i in range(60)]
        orchestrator.submit_tasks([{"id": tid, "type": "echo", "inputs": {"n": i}} for i, tid in enumerate(ids)])
        first = orchestrator.wait(ids, timeout=60)
        assert [s.state for s in first] == [pepper.TaskState.COMPLETED] * 60
        state = runtime._service.engine.state
        kept = len(state.tasks)
        assert kept < 60  # most were trimmed: they live in the database only

        again = orchestrator.wait(ids, timeout=60)  # nothing to wait for: every status comes from the database
        assert [(s.task_id, s.state, s.result) for s in again] == [
            (tid, pepper.TaskState.COMPLETED, i) for i, tid in enumerate(ids)
        ]
        assert len(state.tasks) == kept  # the trimmed ones were not loaded back

        with pytest.raises(TaskNotFoundError, match="nope"):
            orchestrator.wait([*ids, "nope"], timeout=60)
        assert len(state.tasks) == kept


def test_a_trimmed_task_and_an_open_one_waited_for_together(tmp_path: Path) -> None:
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), keep_finished=0,
                        poll_interval="20ms") as runtime:  # fmt: skip
        pepper.agent("echo", task_types=["echo"], runtime=runtime)(lambda task: task.inputs["n"])
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("done", "echo", inputs={"n": 1})
        assert orchestrator.get_result("done", timeout=60) == 1
        orchestrator.submit_task("later", "echo", inputs={"n": 2}, dependencies=["done"])
        statuses = orchestrator.wait(["done", "later"], timeout=60)
        assert [(s.task_id, s.state, s.result) for s in statuses] == [
            ("done", pepper.TaskState.COMPLETED, 1),
            ("later", pepper.TaskState.COMPLETED, 2),
        ]


def test_a_process_without_agents_waits_for_many_tasks_another_one_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    with (
        pepper.Runtime(db=db, home=str(tmp_path / "submitter")) as submitter,
        pepper.Runtime(db=db, home=str(tmp_path / "worker"), poll_interval="20ms") as worker,
    ):
        pepper.agent("echo", task_types=["echo"], capacity=4, runtime=worker)(lambda task: task.inputs["n"])
        worker.start()
        orchestrator = TaskOrchestrator(submitter)  # no agents here: it reads the database
        ids = [f"t-{i:02d}" for i in range(40)]
        with pytest.raises(TaskNotFoundError, match="nope"):
            orchestrator.wait(["nope"], timeout=60)
        orchestrator.submit_tasks([{"id": tid, "type": "echo", "inputs": {"n": i}} for i, tid in enumerate(ids)])
        statuses = orchestrator.wait(ids, timeout=60)
        assert [(s.task_id, s.state, s.result) for s in statuses] == [
            (tid, pepper.TaskState.COMPLETED, i) for i, tid in enumerate(ids)
        ]


def test_tasks_that_settle_while_waited_for_are_answered_without_reading_them_back(tmp_path: Path) -> None:
    gate = threading.Event()
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), keep_finished=0,
                        poll_interval="20ms") as runtime:  # fmt: skip
        ran = []

        def echo(task: pepper.TaskRun) -> int:
            gate.wait(60)
            ran.append(task.task_id)
            if task.inputs["n"] == 3:
                raise ValueError("three is refused")
            return int(task.inputs["n"])

        pepper.agent("echo", task_types=["echo"], capacity=4, runtime=runtime)(echo)
        orchestrator = TaskOrchestrator(runtime)
        ids = [f"t-{i:02d}" for i in range(30)]
        orchestrator.submit_tasks([{"id": tid, "type": "echo", "inputs": {"n": i}} for i, tid in enumerate(ids)])
        engine = runtime._service.engine
        store = engine.store
        read: list[str] = []
        reading, reading_statuses = store.get_tasks, store.get_statuses

        def get_tasks(task_ids: Collection[str]) -> object:
            read.extend(task_ids)
            return reading(task_ids)

        def get_statuses(task_ids: Collection[str]) -> object:
            read.extend(task_ids)
            return reading_statuses(task_ids)

        store.get_tasks = get_tasks  # type: ignore[method-assign]
        store.get_statuses = get_statuses  # type: ignore[method-assign]
        waiting = runtime.portal().submit(orchestrator.wait_async([*ids, ids[0]], timeout=60))
        eventually(lambda: len(engine.waiters) == len(ids), "the wait to wait for every task")
        gate.set()
        statuses = waiting.result(timeout=60)
        assert not engine.state.tasks  # every one was forgotten
        assert not set(read) & set(ids)  # and none was read back from the store
        assert [(s.task_id, s.state, s.result) for s in statuses[:3]] == [
            (tid, pepper.TaskState.COMPLETED, i) for i, tid in enumerate(ids[:3])
        ]
        assert statuses[3].state is pepper.TaskState.FAILED and "three is refused" in str(statuses[3].error)
        assert statuses[-1] == statuses[0] and sorted(ran) == ids  # each ran once
        assert len(engine.waiters) == 0


def test_a_wait_that_times_out_stops_waiting_and_leaves_other_waits_waiting(tmp_path: Path) -> None:
    gate = threading.Event()
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home")) as runtime:
        pepper.agent("slow", task_types=["slow"], runtime=runtime)(lambda task: gate.wait(60) and "done")
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([{"id": "a", "type": "slow"}, {"id": "b", "type": "slow"}])
        engine = runtime._service.engine
        patient = runtime.portal().submit(orchestrator.wait_async(["a", "b"], timeout=60))
        eventually(lambda: len(engine.waiters) == 2, "the patient wait to wait")
        with pytest.raises(WaitTimeoutError) as caught:
            orchestrator.wait(["b", "a"], timeout=0.05)
        assert set(caught.value.pending) == {"a", "b"}
        assert len(engine.waiters) == 2  # the patient wait still waits for both
        gate.set()
        assert [(s.task_id, s.result) for s in patient.result(timeout=60)] == [("a", "done"), ("b", "done")]
        assert len(engine.waiters) == 0


def test_tasks_read_back_a_chunk_at_a_time_keep_their_order_and_an_unknown_id_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task_statuses, "_READ_CHUNK", 4)
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), keep_finished=0) as runtime:
        pepper.agent("echo", task_types=["echo"], capacity=4, runtime=runtime)(lambda task: task.inputs["n"])
        orchestrator = TaskOrchestrator(runtime)
        ids = [f"t-{i:02d}" for i in range(18)]
        orchestrator.submit_tasks([{"id": tid, "type": "echo", "inputs": {"n": i}} for i, tid in enumerate(ids)])
        orchestrator.wait(ids, timeout=60)
        backwards = ids[::-1]
        statuses = orchestrator.wait([*backwards, backwards[0]], timeout=60)  # all trimmed: read back, in chunks
        assert [(s.task_id, s.result) for s in statuses] == [(tid, int(tid[2:])) for tid in [*backwards, ids[-1]]]
        with pytest.raises(TaskNotFoundError, match="nope"):
            orchestrator.wait([*ids[:9], "nope", *ids[9:], "nada"], timeout=60)


def test_a_wait_answers_with_the_status_kept_at_settling_unless_the_task_changed_since(tmp_path: Path) -> None:
    calls: list[str] = []
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home")) as runtime:

        def flaky(task: pepper.TaskRun) -> str:
            calls.append(task.task_id)
            if task.task_id == "b" and calls.count("b") == 1:
                raise ValueError("not yet")
            return task.task_id

        pepper.agent("flaky", task_types=["flaky"], runtime=runtime)(flaky)
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([{"id": "a", "type": "flaky"}, {"id": "b", "type": "flaky", "max_retries": 0}])
        first = orchestrator.wait(["a", "b"], timeout=60)
        assert [s.state for s in first] == [pepper.TaskState.COMPLETED, pepper.TaskState.FAILED]
        service_ = runtime._service
        assert service_ is not None
        assert runtime.portal().submit(service_.replay("b", None)).result(timeout=60)  # runs again after settling
        assert orchestrator.get_result("b", timeout=60) == "b"

        async def statuses() -> list[pepper.TaskStatus]:
            return service_.statuses(["a", "b"], {s.task_id: s for s in first})

        a, b = runtime.portal().submit(statuses()).result(timeout=60)
        assert a is first[0]  # unchanged since it settled: the kept status is the answer
        assert (b.state, b.attempts, b.result) == (pepper.TaskState.COMPLETED, 2, "b")  # changed: read anew
        assert calls == ["a", "b", "b"]
