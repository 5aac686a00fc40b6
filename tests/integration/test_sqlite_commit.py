"""SQLite's write transaction: the change number its rows carry, and a commit that fails leaves nothing behind
(neither its rows nor an open transaction that would refuse every later write)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

from pepper.errors import StoreBusyError, WriteRefusedError
from pepper.model.record import TaskRecord
from pepper.model.task import Task, TaskState
from pepper.store.protocol import TaskSave, WriteSet
from pepper.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Any) -> Any:
    store = SQLiteStore(str(tmp_path / "commit.db"))
    yield store
    store.close()


def _change_seqs(store: SQLiteStore) -> dict[str, int]:
    return {row["task_id"]: row["change_seq"] for row in store.conn.execute("SELECT task_id, change_seq FROM tasks")}


def test_a_commits_rows_carry_its_change_number_and_the_next_commit_takes_a_higher_one(store):
    first = store.commit(WriteSet(submissions=[[Task("a", "t"), Task("b", "t")]]), "w1")
    claim = TaskRecord(Task("a", "t"), TaskState.IN_PROGRESS, attempts=1, owner="w1")
    second = store.commit(WriteSet(saves=[TaskSave.of(claim, 1)]), "w1")
    assert second.change_seq == first.change_seq + 1
    assert _change_seqs(store) == {"a": second.change_seq, "b": first.change_seq}
    # taking the number writes nothing: no temporary table holds it
    assert store.conn.execute("SELECT name FROM sqlite_temp_master").fetchall() == []


def test_a_change_number_is_not_reused_after_a_commit_that_rolled_back(store):
    first = store.commit(WriteSet(submissions=[[Task("a", "t")]]), "w1")
    with pytest.raises(WriteRefusedError), store.write_transaction() as conn:
        store.begin_change(conn)
        conn.execute("INSERT INTO tasks (task_id) VALUES (NULL)")  # refused: NOT NULL
    second = store.commit(WriteSet(submissions=[[Task("b", "t")]]), "w1")
    assert second.change_seq == first.change_seq + 1
    assert _change_seqs(store) == {"a": first.change_seq, "b": second.change_seq}


class _FailingCommit:
    """The store's connection, whose next ``COMMIT`` fails the way a full disk makes it fail."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.failures = 1

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql == "COMMIT" and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_commit_that_fails_is_rolled_back_and_the_next_write_goes_through(store):
    real = store.conn
    failing = _FailingCommit(real)
    store._conn = failing
    with pytest.raises(StoreBusyError, match="disk is full"):
        store.commit(WriteSet(submissions=[[Task("lost", "t")]]), "w1")
    assert failing.failures == 0
    assert not real.in_transaction
    assert store.get_tasks(["lost"]) == {}  # nothing of the failed commit was kept
    store.commit(WriteSet(submissions=[[Task("kept", "t")]]), "w1")  # the connection is not wedged
    assert set(store.get_tasks(["lost", "kept"])) == {"kept"}
    store._conn = real


def test_a_value_sqlite_cannot_hold_is_refused_and_nothing_of_the_commit_is_written(store):
    with pytest.raises(WriteRefusedError):
        store.commit(WriteSet(submissions=[[Task("ok", "t"), Task("big", "t", priority=2**70)]]), "w1")
    assert not store.conn.in_transaction
    assert store.get_tasks(["ok", "big"]) == {}
    store.commit(WriteSet(submissions=[[Task("ok", "t")]]), "w1")
    assert set(store.get_tasks(["ok"])) == {"ok"}


def test_an_error_of_the_callers_own_rolls_back_and_reaches_it_unchanged(store):
    boom = ValueError("not the database's")
    with pytest.raises(ValueError) as raised, store.write_transaction() as conn:
        store.begin_change(conn)
        conn.execute("INSERT INTO tasks (task_id, task_type, priority, dependencies, inputs, requirements, "
                     "max_retries, metadata, created_at, state, change_seq) "
                     "VALUES ('half', 't', 0, '[]', '{}', '{}', 0, '{}', 0, 'pending', 1)")  # fmt: skip
        raise boom
    assert raised.value is boom
    assert not store.conn.in_transaction
    assert store.get_tasks(["half"]) == {}
    # the lock was let go: another thread writes at once
    done: list[Any] = []
    writer = threading.Thread(target=lambda: done.append(store.commit(WriteSet(submissions=[[Task("b", "t")]]), "w")))
    writer.start()
    writer.join(timeout=30)
    assert done and set(store.get_tasks(["b"])) == {"b"}


def test_a_write_lock_held_elsewhere_is_a_busy_store_and_leaves_this_one_free(store, tmp_path):
    other = sqlite3.connect(str(tmp_path / "commit.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    store.conn.execute("PRAGMA busy_timeout = 0")
    try:
        with pytest.raises(StoreBusyError, match="locked"):
            store.commit(WriteSet(submissions=[[Task("waits", "t")]]), "w1")
        assert not store.conn.in_transaction
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.commit(WriteSet(submissions=[[Task("waits", "t")]]), "w1")  # neither the lock nor the connection is held
    assert set(store.get_tasks(["waits"])) == {"waits"}


def test_a_closed_store_refuses_a_transaction_and_is_not_left_locked(store):
    store.close()
    with pytest.raises(WriteRefusedError, match="closed"), store.write_transaction():
        pass  # never reached
    assert store.lock.acquire(blocking=False)
    store.lock.release()


def test_empty_columns_and_flags_are_stored_as_sqlite_stored_them_before(store):
    store.commit(WriteSet(submissions=[[Task("a", "t")]]), "w1")
    cancelled = TaskRecord(Task("a", "t"), TaskState.CANCELLED, cancel_requested=True, reason="asked")
    store.commit(WriteSet(saves=[TaskSave.of(cancelled, 1)]), "w1")
    row = store.conn.execute(
        "SELECT typeof(cancel_requested), cancel_requested, typeof(agent_id), typeof(timeout) FROM tasks"
    ).fetchone()
    assert tuple(row) == ("integer", 1, "null", "null")
    stored = store.get_tasks(["a"])["a"]
    assert stored.cancel_requested is True and stored.agent_id is None and stored.task.timeout is None


def test_an_adapter_the_application_registered_is_kept(tmp_path):
    key = (bool, sqlite3.PrepareProtocol)
    before = sqlite3.adapters.pop(key, None)
    mine = lambda flag: "yes" if flag else "no"  # noqa: E731
    sqlite3.register_adapter(bool, mine)
    try:
        SQLiteStore(str(tmp_path / "other.db")).close()
        assert sqlite3.adapters[key] is mine
    finally:
        sqlite3.adapters.pop(key, None)
        if before is not None:
            sqlite3.adapters[key] = before


def _rows(store: SQLiteStore) -> list[tuple[Any, ...]]:
    rows = store.conn.execute("SELECT * FROM tasks ORDER BY task_id").fetchall()
    return [tuple(v for k, v in zip(row.keys(), row, strict=True) if k not in ("seq", "change_seq")) for row in rows]


def test_a_large_submission_is_stored_as_one_task_at_a_time_would_be(store, tmp_path):
    tasks = [Task(f"t{i:03}", "t", priority=i % 3, dependencies=(f"t{i - 1:03}",) if i % 2 else ()) for i in range(123)]
    store.commit(WriteSet(submissions=[tasks[40:47]]), "w1")  # seven already stored, in the middle of a block
    result = store.commit(WriteSet(submissions=[tasks]), "w1")
    assert set(result.existing) == {t.task_id for t in tasks[40:47]} and not result.rejected
    single = SQLiteStore(str(tmp_path / "single.db"))
    try:
        for task in tasks[40:47] + tasks[:40] + tasks[47:]:
            single.commit(WriteSet(submissions=[[task]]), "w1")
        assert _rows(store) == _rows(single)
    finally:
        single.close()
    assert len(store.get_tasks([t.task_id for t in tasks])) == 123


def test_a_large_submission_with_one_bad_row_stores_none_of_it(store):
    tasks = [Task(f"t{i}", "t") for i in range(120)]
    tasks[77] = Task("t77", "t", priority=2**70)  # SQLite cannot hold it
    with pytest.raises(WriteRefusedError):
        store.commit(WriteSet(submissions=[tasks]), "w1")
    assert not store.conn.in_transaction
    assert store.get_tasks([t.task_id for t in tasks]) == {}
