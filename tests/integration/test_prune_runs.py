"""Pruning workflow runs on both stores: approvals go with their run, sub-workflows of unfinished runs stay."""

from __future__ import annotations

import time

import pytest

import pepper
from pepper.core import WorkflowController
from tests.support import eventually, read_rows

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}
APPROVER = "approver@example.com"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "p.db")
    return request.getfixturevalue("postgres_url")


def _workflows(runtime: pepper.Runtime) -> tuple[WorkflowController, WorkflowController]:
    """A release gated by an approval, and a parent whose sub-workflow runs before its own approval step."""

    @pepper.agent("worker", task_types=["t"], capacity=4, runtime=runtime)
    def work(task: pepper.TaskRun) -> object:
        return task.step_id

    release = WorkflowController("release", runtime)
    release.add_step("build", "t")
    release.add_step("gate", dependencies=["build"], approval={"timeout": "1h", "approvers": [APPROVER]})
    child = WorkflowController("child", runtime)
    child.add_step("write", "t")
    parent = WorkflowController("parent", runtime)
    parent.add_step("docs", workflow=child)
    parent.add_step("gate", dependencies=["docs"], approval={"timeout": "1h", "approvers": [APPROVER]})
    return release, parent


def _snapshot(db: str) -> dict[str, object]:
    return {
        "runs": sorted(read_rows(db, "SELECT run_id, state, parent FROM runs")),
        "tasks": sorted(read_rows(db, "SELECT task_id, state FROM tasks")),
        "approvals": sorted(read_rows(db, "SELECT task_id, decision FROM approvals")),
    }


def _approved_run(runtime: pepper.Runtime, release: WorkflowController) -> str:
    """A run of ``release`` that waited for its approval, was approved, and completed: its id."""
    run_id = release.start()
    eventually(lambda: any(a.waiting for a in runtime.store.approvals.of_run(run_id)), "the release's approval")
    release.approve(run_id, "gate", by=APPROVER)
    assert release.wait(run_id, timeout=60).status == "completed"
    return run_id


def test_a_pruned_run_takes_its_approvals_and_a_child_of_an_unfinished_run_stays(db, tmp_path):
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST)
    try:
        release, parent = _workflows(runtime)
        # Given a finished run whose approval was decided
        done = _approved_run(runtime, release)
        # and an unfinished run whose sub-workflow has finished, now waiting for its own approval
        going = parent.start()
        eventually(lambda: any(a.waiting for a in runtime.store.approvals.of_run(going)), "the parent's approval")
        (child,) = runtime.store.runs.children(f"{going}/docs")
        eventually(lambda: runtime.store.runs.get(child.run_id).state.value == "completed", "the child run's end")
        horizon = time.time() + 3600  # everything finished counts as old
        before = _snapshot(db)

        # When a dry run counts what would go
        dry = runtime.store.prune(horizon, dry_run=True)
        # Then it counts the finished run, its steps and its approval, and changes nothing
        assert (dry["runs"], dry["tasks"], dry["approvals"]) == (1, 2, 1)
        assert _snapshot(db) == before

        # When pruning for real
        removed = runtime.store.prune(horizon)
        # Then it removed what the dry run counted
        assert removed == dry
        after = _snapshot(db)
        # the finished run went with its steps and its approval
        assert all(row[0] != done for row in after["runs"])
        assert all(not row[0].startswith(f"{done}/") for row in after["tasks"] + after["approvals"])
        # the unfinished run, its finished child run (old as it is) and the child's steps stay
        assert {row[0] for row in after["runs"]} == {going, child.run_id}
        assert (f"{child.run_id}/write", "completed") in after["tasks"]
        assert after["approvals"] == [(f"{going}/gate", None)]
        # and a second prune finds nothing more
        assert set(runtime.store.prune(horizon).values()) == {0}
        # and the parent can still finish
        parent.approve(going, "gate", by=APPROVER)
        assert parent.wait(going, timeout=60).status == "completed"
    finally:
        runtime.close()


def test_on_postgresql_the_space_of_every_pruned_table_is_given_back(postgres_url, tmp_path):
    runtime = pepper.Runtime(db=postgres_url, home=str(tmp_path / "home"), **FAST)
    try:
        release, _ = _workflows(runtime)
        _approved_run(runtime, release)
        assert runtime.store.prune(time.time() + 3600)["approvals"] == 1
    finally:
        runtime.close()
    tables = ("tasks", "attempts", "errors", "task_logs", "runs", "alerts", "approvals")
    vacuumed = {
        row[0]
        for row in read_rows(postgres_url, "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL")
    }
    assert set(tables) <= vacuumed, f"not vacuumed: {sorted(set(tables) - vacuumed)}"
