"""The store contract: what every store implementation must do (run against each one)."""

from __future__ import annotations

import re
import sqlite3

import pytest

from pepper.errors import ConfigError, CycleError, DuplicateTaskError
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.record import TaskRecord
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.store.connection import migrate, migrations, schema_sql
from pepper.store.sqlite import SQLiteStore, WriteSet, save_params

ME, OTHER = "worker-me", "worker-other"


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    path = str(tmp_path / "state.db") if request.param == "file" else ":memory:"
    s = SQLiteStore(path)
    yield s
    s.close()


def save(task_id: str, version: int, state: str = "in_progress", writer: str = ME, result=None):
    """``save_task`` parameters for a simple state change."""
    record = TaskRecord(build_task(task_id=task_id, task_type="t"), TaskState(state), attempts=1, agent_id="agent",
                        owner=writer, ready_at=1.0, started_at=2.0, result_json=result)  # fmt: skip
    return save_params(record, writer, version)


def attempt(task_id: str, writer: str = ME):
    return (task_id, 1, "agent", writer, "t", 1.0, 2.0, "retry", None, task_id, writer)


def count(store: SQLiteStore) -> int:
    return sum(store.count_by_state().values())


def _normalised_schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    # compare structure, not layout: ALTER TABLE rewrites the stored text with its own spacing
    return [(name, re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql)).strip()) for name, sql in rows]


def test_migrations_reproduce_the_schema_file_exactly():
    migrated = sqlite3.connect(":memory:")
    migrate(migrated)
    reference = sqlite3.connect(":memory:")
    reference.executescript(schema_sql())
    assert _normalised_schema(migrated) == _normalised_schema(reference)
    assert migrate(migrated) == migrations()[-1][0]  # running again changes nothing


def test_a_database_from_a_newer_pepper_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (999, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="newer pepper"):
        SQLiteStore(path)


def test_submitted_tasks_read_back_identically(store):
    task = build_task(
        task_id="a",
        task_type="docs",
        priority="high",
        dependencies=["z"],
        inputs={"n": [1, 2]},
        requirements={"skills": ["md"], "resources": {"cpu": 1}},
        timeout=5,
        max_retries=2,
        metadata={"owner": "me"},
        now=12.5,
    )
    store.commit(WriteSet(submissions=[[task]]), ME)
    record = store.get_tasks(["a"])["a"]
    assert record.task == task and record.task.created_at == 12.5
    assert record.state is TaskState.BLOCKED and record.version == 1  # it has a dependency


def test_a_submission_group_is_all_or_nothing(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    clash = [build_task(task_id="b", task_type="t"), build_task(task_id="a", task_type="other")]
    result = store.commit(WriteSet(submissions=[clash]), OTHER)
    assert isinstance(result.rejected[0], DuplicateTaskError)
    assert set(store.get_tasks(["a", "b"])) == {"a"}


def test_resubmitting_the_same_spec_reports_it_as_existing(store):
    original = build_task(task_id="a", task_type="t", now=1.0)
    store.commit(WriteSet(submissions=[[original]]), ME)
    result = store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t", now=2.0)]]), OTHER)
    assert result.rejected == {} and result.existing["a"].created_at == 1.0


def test_saves_are_refused_when_someone_else_wrote_first(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    assert store.commit(WriteSet(saves=[save("a", 1)]), ME).conflicts == set()
    stale = store.commit(WriteSet(saves=[save("a", 1, state="completed")], attempts=[attempt("a")]), OTHER)
    assert stale.conflicts == {"a"}
    record = store.get_tasks(["a"])["a"]
    assert record.state is TaskState.IN_PROGRESS and record.version == 2
    assert store.attempts("a") == []  # history follows only a write that went through


def test_history_is_recorded_with_the_write_that_caused_it(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    store.commit(WriteSet(saves=[save("a", 1, state="pending")], attempts=[attempt("a")]), ME)
    (row,) = store.attempts("a")
    assert (row["outcome"], row["worker_id"]) == ("retry", ME)


def test_changes_since_returns_only_what_others_wrote(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="mine", task_type="t")]]), ME)
    _, seen = store.changes_since(0, ME)
    store.commit(WriteSet(submissions=[[build_task(task_id="theirs", task_type="t")]]), OTHER)
    store.commit(WriteSet(saves=[save("mine", 1)]), ME)
    changed, now = store.changes_since(seen, ME)
    assert [r.task.task_id for r in changed] == ["theirs"] and now > seen
    assert store.changes_since(now, ME)[0] == []


def test_direct_submission_validates_inside_its_transaction(store):
    store.submit([build_task(task_id="x", task_type="t", dependencies=["y"])], ME)
    before = count(store)
    with pytest.raises(CycleError):
        store.submit([build_task(task_id="y", task_type="t", dependencies=["x"])], ME)
    with pytest.raises(DuplicateTaskError):
        store.submit([build_task(task_id="new", task_type="t"), build_task(task_id="x", task_type="other")], ME)
    assert count(store) == before
    assert store.submit([build_task(task_id="x", task_type="t", dependencies=["y"])], ME).new == ()


def test_results_and_errors_round_trip(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    store.commit(WriteSet(saves=[save("a", 1, state="completed", result=codec.encode({"pages": [1, 2]}))]), ME)
    record = store.get_tasks(["a"])["a"]
    assert record.result == {"pages": [1, 2]} and record.to_status().result == {"pages": [1, 2]}


def test_listing_counting_and_queue_position(store):
    tasks = [build_task(task_id=f"t{i}", task_type="t", priority="high" if i == 3 else "normal") for i in range(5)]
    store.commit(WriteSet(submissions=[tasks]), ME)
    store.commit(WriteSet(saves=[save("t0", 1)]), ME)
    assert store.count_by_state() == {"pending": 4, "in_progress": 1}
    assert [r.task.task_id for r in store.list_tasks(TaskState.PENDING, limit=2)] == ["t4", "t3"]
    assert [r.task.task_id for r in store.ready_tasks(now=100.0)] == ["t1", "t2", "t3", "t4"]
    assert store.running_by_agent() == {"agent": 1}
    assert store.running_tasks() == [("agent", "t", 2.0)]
    backing_off = TaskRecord(
        build_task(task_id="t1", task_type="t"), TaskState.PENDING, failures=1, next_attempt_at=50.0
    )
    store.commit(WriteSet(saves=[save_params(backing_off, ME, 1)]), ME)
    assert [r.task.task_id for r in store.ready_tasks(now=10.0)] == ["t2", "t3", "t4"]  # t1 waits out its back-off
    assert [r.task.task_id for r in store.ready_tasks(now=50.0)] == ["t1", "t2", "t3", "t4"]


def test_workers_and_their_agents(store):
    store.workers.register(ME, "host", 123, 10.0)
    spec = AgentSpec.build("docs", task_types=["documentation"], skills=["md"])
    store.workers.register_agent(spec, ME, 10.0)
    (registered,) = store.workers.agents()
    assert registered.spec == spec and registered.pid == 123
    assert store.workers.heartbeat(ME, 11.0)
    assert store.workers.stop(ME, 12.0) is True
    assert store.workers.stop(ME, 12.0) is False  # only one caller stops it
    assert store.workers.agents() == [] and store.workers.live() == []
    assert not store.workers.heartbeat(ME, 13.0)
    store.workers.revive(ME, 14.0)
    assert [w.worker_id for w in store.workers.live()] == [ME]
