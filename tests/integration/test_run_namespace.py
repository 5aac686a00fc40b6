"""Ids inside a workflow run's namespace (``<run id>/...``) belong to the run: submit_task and submit_tasks
refuse a new task there, with an engine in the process and without one, so a task of the user's is never taken
for a step or an item of the run. Ids that merely contain '/' are still fine. A fanned-out step adopts only the
items its run created. On SQLite and PostgreSQL; executions are counted in the agent."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator, WorkflowController
from pepper.errors import TaskNotFoundError, ValidationError
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from tests.conftest import FAST


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "pepper.db")


class Fan:
    """scan -> docs (one item per name scan finds); scan holds until ``gate`` is set."""

    def __init__(self, runtime: pepper.Runtime) -> None:
        self.gate = threading.Event()
        self.runs: Counter[str] = Counter()
        lock = threading.Lock()

        @pepper.agent("w", task_types=["scan", "doc", "other"], runtime=runtime, capacity=4)
        def work(task):
            with lock:
                self.runs[task.task_type] += 1
            if task.task_type == "scan":
                assert self.gate.wait(30)
                return {"m": ["a", "b"]}
            if task.task_type == "other":
                return "FOREIGN"
            return "doc-" + task.inputs["m"]

        self.workflow = WorkflowController("fan", runtime)
        self.workflow.add_step("scan", "scan")
        self.workflow.add_step(
            "docs", "doc", dependencies=["scan"], for_each="${{ steps.scan.result.m }}", inputs={"m": "${{ item }}"}
        )


def test_a_task_inside_a_runs_namespace_is_refused_and_the_fan_out_runs_its_own_items(db, tmp_path: Path):
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        fan = Fan(runtime)
        orchestrator = TaskOrchestrator(runtime)
        run_id = fan.workflow.start()
        with pytest.raises(ValidationError, match=f"namespace of workflow run '{run_id}'") as refused:
            orchestrator.submit_task(f"{run_id}/docs[0]", "other")
        assert refused.value.field == "task_id" and "outside it" in str(refused.value)
        with pytest.raises(ValidationError, match="namespace of workflow run"):
            orchestrator.submit_tasks([{"id": "mine", "type": "other"}, {"id": f"{run_id}/extra", "type": "other"}])
        with pytest.raises(TaskNotFoundError):  # the batch was refused whole
            orchestrator.get_task_status("mine")
        fan.gate.set()
        result = fan.workflow.wait(run_id, timeout=60)
        assert result.status == "completed" and result["docs"].result == ["doc-a", "doc-b"]
        assert fan.runs == Counter({"scan": 1, "doc": 2})
        # a task may depend on a run's step, and ids with '/' outside any run are fine
        orchestrator.submit_task("after", "other", dependencies=[f"{run_id}/docs"])
        for task_id in ("team/build", "fan-0123456789/docs[0]", "fan-notarunid/x", f"x/{run_id}/docs[0]"):
            orchestrator.submit_task(task_id, "other")
        statuses = orchestrator.wait(["after", "team/build", "fan-0123456789/docs[0]"], timeout=60)
        assert all(s.state is TaskState.COMPLETED for s in statuses)
        orchestrator.wait(["fan-notarunid/x", f"x/{run_id}/docs[0]"], timeout=60)
        assert fan.runs["other"] == 5


def test_without_an_engine_the_store_refuses_the_namespace_too(db, tmp_path: Path):
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        fan = Fan(runtime)
        fan.gate.set()
        run_id = fan.workflow.run(timeout=60).run_id
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:  # no agents: calls go to the store
        orchestrator = TaskOrchestrator(runtime)
        with pytest.raises(ValidationError, match="namespace of workflow run"):
            orchestrator.submit_task(f"{run_id}/docs[2]", "other")
        with pytest.raises(TaskNotFoundError):
            orchestrator.get_task_status(f"{run_id}/docs[2]")
        assert orchestrator.submit_task(f"{run_id}-copy/docs[2]", "other").task_id == f"{run_id}-copy/docs[2]"
        # the run's own step, given again as stored, is the stored one
        step = runtime.store.get_tasks([f"{run_id}/scan"])[f"{run_id}/scan"].task
        assert orchestrator.submit_tasks([step])[0].task_id == f"{run_id}/scan"


def test_a_task_stored_under_an_items_id_that_the_run_did_not_create_is_not_adopted(db, tmp_path: Path):
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        fan = Fan(runtime)
        run_id = fan.workflow.start()
        foreign = build_task(task_id=f"{run_id}/docs[0]", task_type="nobody", now=runtime.clock.now())
        store = runtime.store
        with store.transaction() as conn:  # written past the checks, as a database from before them may hold
            store.begin_change(conn)
            store.insert_tasks(conn, [foreign], "elsewhere")
        fan.gate.set()
        result = fan.workflow.wait(run_id, timeout=60)
        docs = result["docs"]
        assert result.status == "failed" and docs.state is TaskState.FAILED
        assert docs.error is not None and "taken by a task this run did not create" in docs.error.message
        assert fan.runs == Counter({"scan": 1})
        assert TaskOrchestrator(runtime).get_task_status(f"{run_id}/docs[0]").state is TaskState.PENDING
