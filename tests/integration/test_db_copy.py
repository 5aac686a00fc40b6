"""Copying a pepper database: SQLite to PostgreSQL and back, row for row; refusals that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import ResourceAllocator, TaskOrchestrator, WorkflowController
from pepper.errors import ConfigError, ConflictError
from pepper.store import catalog
from pepper.store.copy import CopyProgress, copy_database, same_database
from pepper.store.location import open_store
from pepper.store.sql_store import SqlStore
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}
#: Every table a copy carries (the schema version stays each database's own).
TABLES = {"tasks", "attempts", "errors", "runs", "feedback", "alerts", "workers", "agents", "pool", "leases",
          "usage_samples", "tokens", "schedules", "approvals", "task_logs", "alert_states", "pruned_tasks"}  # fmt: skip
#: The tables ``fill`` writes rows into.
FILLED = TABLES - {"alerts", "agents", "usage_samples", "tokens", "pruned_tasks"}


def fill(db: str, home: Path) -> None:
    """A database with a bit of everything, written through the public API: dependencies, a completed task
    that needed a retry, a failed one with its errors, workflow runs (one decided by a person), a schedule,
    feedback, a lease, a firing alert rule and pending work."""
    with pepper.Runtime(db=db, home=str(home), resources={"api": 3}, **FAST) as runtime:

        @pepper.agent("worker-a", task_types=["t", "flaky", "bad", "step"], capacity=2, runtime=runtime)
        def work(task: Any) -> Any:
            task.log(f"attempt {task.attempt} of {task.task_id}")
            if task.task_type == "flaky" and task.attempt == 1:
                raise OSError("disk full")
            if task.task_type == "bad":
                raise ValueError(f"never works (attempt {task.attempt})")
            return {"echo": task.inputs, "pi": 3.141592653589793}

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("a", "t", inputs={"x": 1.5, "text": "é ✓"}, priority="high")
        orchestrator.submit_task("b", "t", dependencies=["a"], metadata={"owner": "me"})
        orchestrator.submit_task("flaky", "flaky", max_retries=2)
        orchestrator.submit_task("bad", "bad", max_retries=1)
        orchestrator.wait(["a", "b", "flaky", "bad"], timeout=30)
        workflow = WorkflowController("pipeline", runtime)
        workflow.add_step("fetch", "step")
        workflow.add_step("build", "step", dependencies=["fetch"])
        assert workflow.run(timeout=30).status == "completed"
        pepper.schedule("nightly", workflow, cron="0 2 * * *", timezone="Europe/Paris", runtime=runtime)
        gated = WorkflowController("gated", runtime)
        gated.add_step("build", "step")
        gated.add_step("gate", dependencies=["build"], approval={"timeout": "1h", "approvers": ["lead@example.com"]})
        gated_run = gated.start()
        eventually(lambda: any(a.waiting for a in runtime.store.approvals.of_run(gated_run)), "the approval request")
        gated.approve(gated_run, "gate", by="lead@example.com", reason="read it")
        assert gated.wait(gated_run, timeout=30).status == "completed"
        runtime.store.alert_states.fire("queue-too-long", 42.0, runtime.clock.now())
        orchestrator.add_feedback("a", rating=4, comment="good", metrics={"edits": 2})
        orchestrator.add_feedback("b", rating=2)
        ResourceAllocator(runtime).allocate("worker-a", {"api": 1}, duration="1h")
    with pepper.Runtime(db=db, home=str(home), **FAST) as offline:  # no agents: these wait for a worker
        orchestrator = TaskOrchestrator(offline)
        orchestrator.submit_task("later-1", "t", inputs={"n": 1})
        orchestrator.submit_task("later-2", "t", dependencies=["later-1"])
        orchestrator.submit_task("later-3", "t", delay="1h")


def rows_of(store: SqlStore, table: str) -> list[dict[str, Any]]:
    """Every row of a table as ``{column: value}``, in primary key order."""
    key = ", ".join(catalog.primary_key(store, table) or catalog.columns(store, table))
    return [dict(zip(row.keys(), row, strict=True)) for row in store.fetch(f"SELECT * FROM {table} ORDER BY {key}")]


def normalised(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Values as comparable across databases: numbers as floats (1 == 1.0), the rest as they are."""
    return [{k: float(v) if isinstance(v, int | float) else v for k, v in row.items()} for row in rows]


@pytest.fixture
def original(tmp_path: Path) -> Iterator[SqlStore]:
    fill(str(tmp_path / "original.db"), tmp_path / "home")
    store = open_store(str(tmp_path / "original.db"), create=False)
    yield store
    store.close()


def test_a_copy_to_postgresql_and_back_is_equal_row_by_row(original: SqlStore, postgres_url: str, tmp_path: Path):
    # Given a SQLite database filled through the API, and an empty PostgreSQL one
    postgres = open_store(postgres_url)
    back = open_store(str(tmp_path / "back.db"))
    try:
        # When it is copied to PostgreSQL, then from there to a new SQLite file
        seen: list[CopyProgress] = []
        there = copy_database(original, postgres, batch=3, progress=seen.append)
        again = copy_database(postgres, back)

        # Then every table holds the same rows on all three, and the counts say so
        assert set(there) == TABLES and there == again
        assert there["tasks"] == 11 and there["errors"] >= 3 and there["runs"] == 2 and there["feedback"] == 2
        assert there["attempts"] >= 2 and there["leases"] >= 1 and there["pool"] >= 1 and there["task_logs"] >= 8
        for table in TABLES:
            expected = rows_of(original, table)
            assert len(expected) == there[table]
            assert rows_of(back, table) == expected, table
            assert normalised(rows_of(postgres, table)) == normalised(expected), table
        assert all(there[table] for table in FILLED), {t: there[t] for t in FILLED if not there[t]}
        assert seen[-1].rows == seen[-1].total == sum(there.values())
        assert [step.rows for step in seen] == sorted(step.rows for step in seen)
    finally:
        postgres.close()
        back.close()


def test_after_a_copy_new_rows_continue_the_sequences_and_a_worker_finishes_the_pending_tasks(
    original: SqlStore, postgres_url: str, tmp_path: Path
):
    # Given a copy in PostgreSQL
    postgres = open_store(postgres_url)
    copy_database(original, postgres)
    last_seq = max(row["seq"] for row in rows_of(original, "tasks"))
    last_error = max(row["error_id"] for row in rows_of(original, "errors"))
    change_seq = original.current_change_seq()
    postgres.close()

    # When a worker runs on it, and a new task is submitted there
    with runtime_on(postgres_url, tmp_path / "pg-home") as runtime:

        @pepper.agent("worker-b", task_types=["t", "bad"], runtime=runtime)
        def work(task: Any) -> str:
            if task.task_type == "bad":
                raise ValueError("still broken")
            return "done"

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("new", "t")
        orchestrator.submit_task("bad-again", "bad")  # a failure records a new error row
        statuses = orchestrator.wait(["later-1", "later-2", "new", "bad-again"], timeout=30)
        assert [s.state.value for s in statuses] == ["completed", "completed", "completed", "failed"]
        orchestrator.add_feedback("new", rating=5)
        store = runtime.store

        # Then the new rows are numbered after the copied ones, and the change counter went on from the copy's
        rows = {row["task_id"]: row for row in rows_of(store, "tasks")}
        assert rows["new"]["seq"] > last_seq and rows["bad-again"]["seq"] > last_seq
        assert rows["later-2"]["change_seq"] > change_seq
        assert max(row["feedback_id"] for row in rows_of(store, "feedback")) == 3
        errors = {row["error_id"]: row["task_id"] for row in rows_of(store, "errors")}
        assert [task for error_id, task in errors.items() if error_id > last_error] == ["bad-again"]


def runtime_on(url: str, home: Path) -> pepper.Runtime:
    """A runtime on the PostgreSQL database at ``url``."""
    runtime = pepper.Runtime(db=url, home=str(home), **FAST)
    assert runtime.store.kind == "PostgreSQL"
    return runtime


def test_a_copy_between_sqlite_files_holds_every_table_and_the_same_approvals(original: SqlStore, tmp_path: Path):
    # Given a SQLite database with a decided approval, a schedule, task logs and an alert rule's state
    dst = open_store(str(tmp_path / "copy.db"))
    try:
        # When it is copied to another SQLite file
        copied = copy_database(original, dst)

        # Then every table of the schema is copied, row for row
        assert set(copied) == set(catalog.tables(original)) == TABLES
        for table in TABLES:
            assert rows_of(dst, table) == rows_of(original, table), table
        assert all(copied[table] for table in FILLED)
        (run,) = [r for r in original.runs.list() if r.workflow == "gated"]
        (approval,) = dst.approvals.of_run(run.run_id)
        assert approval == original.approvals.of_run(run.run_id)[0]
        assert approval.decision == "approved" and approval.decided_by == "lead@example.com"
        assert [s.name for s in dst.schedules.list()] == ["nightly"]
        assert dst.alert_states.states() == original.alert_states.states()
    finally:
        dst.close()


# --- refusals, on SQLite files (each changes nothing) ------------------------------------------


def test_a_database_is_not_copied_onto_itself(tmp_path: Path):
    path = tmp_path / "one.db"
    open_store(str(path)).close()
    assert same_database(str(path), f"{tmp_path}/./one.db")
    assert same_database("postgresql://u:p@db.example.com/pepper", "postgres://other@DB.example.com:5432/pepper")
    assert not same_database("postgresql://u:p@db.example.com/pepper", "postgresql://u:p@db.example.com/other")
    assert not same_database(str(path), "postgresql://u:p@localhost/one")
    first, second = open_store(str(path)), open_store(f"{tmp_path}/./one.db")
    try:
        with pytest.raises(ConfigError, match="one database"):
            copy_database(first, second)
    finally:
        first.close()
        second.close()


def test_a_destination_in_use_is_refused_unless_replaced(original: SqlStore, tmp_path: Path):
    dst = open_store(str(tmp_path / "used.db"))
    try:
        dst.submit([pepper.Task(task_id="mine", task_type="t")], "someone")
        with pytest.raises(ConflictError, match=r"already holds 1 task, which the copy would delete; .*--force"):
            copy_database(original, dst)
        assert [row["task_id"] for row in rows_of(dst, "tasks")] == ["mine"]

        copied = copy_database(original, dst, replace=True)
        assert copied["tasks"] == 11
        assert rows_of(dst, "tasks") == rows_of(original, "tasks")
    finally:
        dst.close()


def _holding_tokens_and_an_alert(store: SqlStore) -> list[dict[str, Any]]:
    """Two tokens and a firing alert in ``store`` (no task, no run), and the machine pool every runtime records
    on opening (not content: it does not count); its rows that a copy must not lose."""
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    for name in ("ops-admin", "ci-bot"):
        store.tokens.add(name, "admin", f"hash-of-{name}", 1.0)
    store.alert_states.fire("queue-too-long", 42.0, 1.0)
    return rows_of(store, "tokens") + rows_of(store, "alert_states")


@pytest.mark.parametrize("direction", ["sqlite-to-sqlite", "sqlite-to-postgresql", "postgresql-to-sqlite"])
def test_a_destination_holding_anything_the_copy_would_delete_is_refused_unless_replaced(
    original: SqlStore, tmp_path: Path, request: pytest.FixtureRequest, direction: str
):
    # Given a destination with no task or run, but with tokens and an alert (a source on either database)
    src, dst = original, open_store(str(tmp_path / "held.db"))
    if direction != "sqlite-to-sqlite":
        postgres = open_store(request.getfixturevalue("postgres_url"))
        if direction == "sqlite-to-postgresql":
            dst.close()
            dst = postgres
        else:
            copy_database(original, postgres)
            src = postgres
    try:
        kept = _holding_tokens_and_an_alert(dst)

        # When it is copied onto without --force, then it is refused naming what it holds, and nothing changed
        refused = r"holds 2 tokens and 1 alert state, which the copy would delete; .*--force"
        with pytest.raises(ConflictError, match=refused):
            copy_database(src, dst)
        assert rows_of(dst, "tokens") + rows_of(dst, "alert_states") == kept
        assert rows_of(dst, "tasks") == []

        # And with --force its content is replaced by the source's
        copy_database(src, dst, replace=True)
        assert normalised(rows_of(dst, "tokens")) == normalised(rows_of(original, "tokens")) == []
        assert len(rows_of(dst, "tasks")) == 11
    finally:
        for store in {id(src): src, id(dst): dst}.values():
            if store is not original:
                store.close()


def test_a_copy_that_fails_midway_leaves_the_destination_as_it_was(original: SqlStore, tmp_path: Path):
    dst = open_store(str(tmp_path / "kept.db"))
    try:
        dst.submit([pepper.Task(task_id="mine", task_type="t")], "someone")
        before = {table: rows_of(dst, table) for table in TABLES}

        def interrupt(step: CopyProgress) -> None:
            if step.rows >= 5:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            copy_database(original, dst, replace=True, batch=2, progress=interrupt)
        assert {table: rows_of(dst, table) for table in TABLES} == before
    finally:
        dst.close()


def test_a_destination_lacking_a_column_of_the_source_is_refused(original: SqlStore, tmp_path: Path):
    # Given a source whose pool has a column the destination's schema does not know
    with original.transaction() as conn:
        conn.execute("ALTER TABLE pool ADD COLUMN zone TEXT")
    dst = open_store(str(tmp_path / "older.db"))
    try:
        with pytest.raises(ConfigError, match=r"no column pool\.zone.*older than the source's.*open .* first"):
            copy_database(original, dst)
        assert catalog.count(dst, "tasks") == 0
    finally:
        dst.close()


def test_columns_only_the_destination_has_keep_their_defaults(original: SqlStore, tmp_path: Path):
    dst = open_store(str(tmp_path / "newer.db"))
    try:
        with dst.transaction() as conn:
            conn.execute("ALTER TABLE workers ADD COLUMN host_id TEXT NOT NULL DEFAULT 'here'")
        copy_database(original, dst)
        workers = rows_of(dst, "workers")
        assert workers and {row["host_id"] for row in workers} == {"here"}
        assert [{k: v for k, v in row.items() if k != "host_id"} for row in workers] == rows_of(original, "workers")
    finally:
        dst.close()
