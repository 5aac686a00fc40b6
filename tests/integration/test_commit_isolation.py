"""A write the database refuses fails only its own item: the rest of the batch commits, the worker goes on."""

from __future__ import annotations

import threading

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.errors import StoreError
from pepper.model.lease import Lease, LeaseKind
from pepper.model.resources import Resources
from pepper.model.task import TaskState

FAST = {"poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), resources={"cpu": 4}, **FAST)
    yield rt
    rt.close()


def test_a_claim_whose_lease_the_database_refuses_fails_that_task_and_the_rest_complete(runtime):
    # Given a lease row already holding the id the engine will give the claim of "clash" (released, so
    # it takes no room: only its id collides)
    now, clash = runtime.clock.now(), f"task:clash:1@{runtime.worker_id}"
    runtime.store.leases.grant(Lease(clash, "x", LeaseKind.TASK, Resources.parse({"cpu": 1}), now), now)
    runtime.store.leases.release(clash, now)
    ran: list[str] = []
    lock = threading.Lock()

    def work(task):
        with lock:
            ran.append(task.task_id)
        return task.task_id

    pepper.agent("cpu-worker", task_types=["t"], capacity=8, runtime=runtime)(work)
    orchestrator = TaskOrchestrator(runtime)
    ids = [f"t{i}" for i in range(12)] + ["clash"]
    needs = {"resources": {"cpu": 1}}
    # When the claims of all of them go to the database together
    orchestrator.submit_tasks([{"id": i, "type": "t", "requirements": needs} for i in ids])
    statuses = {s.task_id: s for s in orchestrator.wait(ids, timeout=60)}
    # Then only "clash" fails, with the database's reason, and never ran; every other task ran exactly once
    assert statuses["clash"].state is TaskState.FAILED
    assert statuses["clash"].error.type == "StoreError" and "UNIQUE" in statuses["clash"].error.message
    assert all(statuses[i].state is TaskState.COMPLETED for i in ids if i != "clash")
    assert sorted(ran) == sorted(i for i in ids if i != "clash")
    # And the worker keeps committing: a new task runs as usual
    orchestrator.submit_task(task_id="after", task_type="t", requirements=needs)
    assert orchestrator.wait(["after"], timeout=30)[0].state is TaskState.COMPLETED


def test_a_progress_message_the_database_cannot_hold_does_not_stop_the_other_tasks(runtime):
    release = threading.Event()

    def work(task):
        if task.task_id == "odd":
            task.report_progress(0.5, "reading " + b"caf\xe9.txt".decode("utf-8", "surrogateescape"))
        release.wait(30)
        return "ok"

    pepper.agent("worker", task_types=["t"], capacity=8, runtime=runtime)(work)
    orchestrator = TaskOrchestrator(runtime)
    ids = ["odd", *(f"n{i}" for i in range(6))]
    orchestrator.submit_tasks([{"id": i, "type": "t"} for i in ids])
    release.set()
    statuses = {s.task_id: s for s in orchestrator.wait(ids, timeout=60)}
    assert all(statuses[i].state is TaskState.COMPLETED for i in ids if i != "odd")
    assert statuses["odd"].state in (TaskState.COMPLETED, TaskState.FAILED)
    if statuses["odd"].progress_message is not None:
        statuses["odd"].progress_message.encode("utf-8")  # what was stored is valid text


def test_a_submission_the_database_refuses_raises_a_typed_error_and_stores_nothing_of_it(runtime):
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task(task_id="fine", task_type="t")
    with pytest.raises((StoreError, pepper.errors.ValidationError)):
        orchestrator.submit_tasks([{"id": "a", "type": "t"}, {"id": "b", "type": "t", "max_retries": 10**30}])
    assert runtime.store.get_tasks(["a", "b"]) == {}
    orchestrator.submit_task(task_id="later", task_type="t")
    assert set(runtime.store.get_tasks(["fine", "later"])) == {"fine", "later"}
