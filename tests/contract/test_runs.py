"""The store contract for workflow runs: a run's row is written with its first steps, through the write set."""

from __future__ import annotations

import pytest

from pepper.errors import RunNotFoundError
from pepper.model.outcome import TaskOutcome
from pepper.model.record import TaskRecord
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.model.workflow import Step, WorkflowSpec
from pepper.model.workflow_run import RunRecord, RunState
from pepper.store.protocol import NewRun, RunEnd, WriteSet

ME = "worker-me"


def run_record(run_id: str) -> RunRecord:
    spec = WorkflowSpec("wf", (Step("a", build_task(task_id="a", task_type="t")),))
    return RunRecord(run_id, spec, {}, RunState.RUNNING, 1.0, driver=ME)


def test_a_run_is_stored_with_its_first_steps(store):
    # Given a run and its first step in one write set
    step = build_task(task_id="wf-1/a", task_type="t")
    # When it is committed
    store.commit(WriteSet(submissions=[[step]], runs=[NewRun(run_record("wf-1"), 0)]), ME)
    # Then both are stored
    assert store.runs.get("wf-1").state is RunState.RUNNING
    assert set(store.runs.tasks("wf-1")) == {"wf-1/a"}


def test_a_run_whose_steps_are_refused_is_not_stored(store):
    # Given a task stored under the id of the run's first step, with another spec
    store.commit(WriteSet(submissions=[[build_task(task_id="wf-1/a", task_type="other")]]), ME)
    # When the run is committed with that step
    step = build_task(task_id="wf-1/a", task_type="t")
    result = store.commit(WriteSet(submissions=[[step]], runs=[NewRun(run_record("wf-1"), 0)]), ME)
    # Then the submission is rejected, and the run's row with it
    assert 0 in result.rejected
    with pytest.raises(RunNotFoundError):
        store.runs.get("wf-1")


def test_final_tasks_and_run_ends_are_written_once(store):
    # Given a stored run
    store.commit(WriteSet(submissions=[[]], runs=[NewRun(run_record("wf-1"), 0)]), ME)
    skipped = TaskRecord(build_task(task_id="wf-1/a", task_type="t"), TaskState.COMPLETED, finished_at=2.0,
                         reason="skipped: x was false", outcome=TaskOutcome.SKIPPED)  # fmt: skip
    # When a skipped step and the run's end are committed, then the same step again
    first = store.commit(WriteSet(finals=[skipped], run_ends=[RunEnd("wf-1", RunState.COMPLETED, None, 3.0)]), ME)
    again = store.commit(WriteSet(finals=[skipped]), ME)
    # Then the step is stored final with its outcome, once, and the run ended
    assert first.present == set() and again.present == {"wf-1/a"}
    stored = store.get_tasks(["wf-1/a"])["wf-1/a"]
    assert stored.state is TaskState.COMPLETED and stored.outcome is TaskOutcome.SKIPPED
    assert store.runs.get("wf-1").state is RunState.COMPLETED


def test_runs_are_listed_page_by_page_newest_first(store):
    # Given five runs, two of them created at the same moment, and one that ended
    created = {"r1": 1.0, "r2": 2.0, "r3": 3.0, "r4": 3.0, "r5": 5.0}
    for index, (run_id, at) in enumerate(created.items()):
        record = RunRecord(run_id, run_record(run_id).spec, {}, RunState.RUNNING, at, driver=ME)
        store.commit(WriteSet(submissions=[[build_task(task_id=f"{run_id}/a", task_type="t")]],
                              runs=[NewRun(record, 0)]), ME)  # fmt: skip
        if index == 0:
            store.commit(WriteSet(run_ends=[RunEnd(run_id, RunState.COMPLETED, None, 9.0)]), ME)
    # When they are read two at a time, each page starting after the last run of the one before
    pages, after = [], None
    while True:
        found = [r.run_id for r in store.runs.list(limit=2, after=after)]
        if not found:
            break
        pages.append(found)
        after = found[-1]
    # Then every run comes once, newest first (ties in a fixed order), and a state filter pages the same way
    assert pages == [["r5", "r4"], ["r3", "r2"], ["r1"]]
    assert [r.run_id for r in store.runs.list(RunState.RUNNING, limit=10, after="r4")] == ["r3", "r2"]
    assert [r.run_id for r in store.runs.list(RunState.COMPLETED)] == ["r1"]


def test_runs_of_one_workflow_are_listed_however_many_runs_of_others_came_after(store):
    # Given one run of "mine", then 150 of "other", then a second run of "mine"
    def add(run_id: str, name: str, at: float) -> None:
        spec = WorkflowSpec(name, (Step("a", build_task(task_id="a", task_type="t")),))
        store.commit(WriteSet(submissions=[[build_task(task_id=f"{run_id}/a", task_type="t")]],
                              runs=[NewRun(RunRecord(run_id, spec, {}, RunState.RUNNING, at, driver=ME), 0)]),
                     ME)  # fmt: skip

    add("m1", "mine", 1.0)
    for n in range(150):
        add(f"o{n:03}", "other", 2.0 + n)
    add("m2", "mine", 500.0)
    # When the runs of "mine" are listed, a page of one at a time
    first = store.runs.list(limit=1, workflow="mine")
    then = store.runs.list(limit=1, after=first[0].run_id, workflow="mine")
    # Then both come, newest first, and no run of another workflow; a name without runs lists none
    assert [r.run_id for r in first + then] == ["m2", "m1"]
    assert [r.run_id for r in store.runs.list(limit=10, workflow="mine")] == ["m2", "m1"]
    assert store.runs.list(RunState.COMPLETED, workflow="mine") == []
    assert store.runs.list(workflow="nobody") == []
    assert len(store.runs.list(limit=1000, workflow="other")) == 150
