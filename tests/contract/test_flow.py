"""The store contract for steps that shape their run: approval requests kept once with their first deadline, a
decision written once however many processes try, a sub-workflow's run found by its parent step, and a fanned-out
step's result stored as a list."""

from __future__ import annotations

import threading

import pytest

from pepper.model.approval import Approval
from pepper.model.codec import normalise
from pepper.model.record import TaskRecord
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.model.workflow import Step, WorkflowSpec
from pepper.model.workflow_run import RunRecord, RunState
from pepper.store.protocol import NewRun, WriteSet

ME = "worker-me"


def _run(run_id: str, parent: str | None = None) -> RunRecord:
    spec = WorkflowSpec("wf", (Step("a", build_task(task_id="a", task_type="t")),))
    return RunRecord(run_id, spec, {}, RunState.RUNNING, 1.0, driver=ME, parent=parent)


def test_an_approval_request_is_kept_with_its_first_deadline(store):
    first = store.approvals.request(Approval("wf-1/gate", "wf-1", "gate", ("ops@example.com",), 10.0, 3610.0))
    again = store.approvals.request(Approval("wf-1/gate", "wf-1", "gate", ("ops@example.com",), 50.0, 3650.0))
    assert first == again and again.deadline == 3610.0 and again.waiting
    assert [a.step_id for a in store.approvals.of_run("wf-1")] == ["gate"]
    assert store.approvals.get("wf-1/other") is None


def test_one_decision_is_recorded_however_many_processes_decide_at_once(open_store):
    if not open_store.shared:
        pytest.skip("each open of this store is a database of its own")
    stores = [open_store() for _ in range(4)]
    stores[0].approvals.request(Approval("wf-1/gate", "wf-1", "gate", (), 10.0, 3610.0))
    wins: list[int] = []
    start = threading.Barrier(len(stores))

    def decide(index: int) -> None:
        start.wait()
        if stores[index].approvals.decide("wf-1/gate", "approved", f"p{index}@example.com", None, 20.0 + index):
            wins.append(index)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    decided = stores[-1].approvals.get("wf-1/gate")
    assert decided.decision == "approved" and decided.decided_by == f"p{wins[0]}@example.com"
    assert not stores[0].approvals.decide("wf-1/gate", "rejected", "late@example.com", None, 99.0)


def test_a_sub_workflow_run_is_found_by_its_parent_step(store):
    store.commit(WriteSet(submissions=[[], []], runs=[NewRun(_run("wf-1"), 0), NewRun(_run("child-1", "wf-1/b"), 1)]),
                 ME)  # fmt: skip
    assert store.runs.get("child-1").parent == "wf-1/b" and store.runs.get("wf-1").parent is None
    assert [r.run_id for r in store.runs.children("wf-1/b")] == ["child-1"]
    assert [r.run_id for r in store.runs.children_of_run("wf-1")] == ["child-1"]
    assert store.runs.children_of_run("child-1") == []


def test_a_fanned_out_step_is_stored_final_with_its_list_and_its_items_are_tasks_of_the_run(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="wf-1/a[0]", task_type="t")]],
                          runs=[NewRun(_run("wf-1"), 0)]), ME)  # fmt: skip
    value, text = normalise([{"n": 0}], "result")
    final = TaskRecord(build_task(task_id="wf-1/a", task_type="t"), TaskState.COMPLETED, finished_at=2.0,
                       result=value, result_json=text)  # fmt: skip
    store.commit(WriteSet(finals=[final]), ME)
    assert store.get_tasks(["wf-1/a"])["wf-1/a"].result == [{"n": 0}]
    assert set(store.runs.tasks("wf-1")) == {"wf-1/a", "wf-1/a[0]"}
