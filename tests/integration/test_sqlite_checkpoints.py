"""SQLite's write-ahead log is folded back into the database file by a thread of its own while an engine runs,
not within the engine's commits; the thread ends with the store."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.store.checkpoints import BACKSTOP_PAGES, Checkpointer
from pepper.store.sqlite import SQLiteStore
from tests.support import eventually


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pepper-checkpoints"]


def _writer(path: Path) -> sqlite3.Connection:
    """A connection that never checkpoints itself: what it writes stays in the log until someone else folds it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def test_an_engine_leaves_checkpoints_to_the_thread_and_nothing_is_left_in_the_log(tmp_path: Path) -> None:
    ran: list[str] = []
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home")) as runtime:
        pepper.agent("echo", task_types=["echo"], capacity=8, runtime=runtime)(lambda task: ran.append(task.task_id))
        runtime.start()
        store = runtime.store
        assert isinstance(store, SQLiteStore) and store.checkpoints is not None and store.checkpoints.running
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        ids = [f"t-{i}" for i in range(200)]
        TaskOrchestrator(runtime).submit_tasks([{"id": tid, "type": "echo"} for tid in ids])
        assert {s.state for s in TaskOrchestrator(runtime).wait(ids, timeout=60)} == {pepper.TaskState.COMPLETED}
        checkpoints = store.checkpoints

        def folded() -> bool:  # every page of the log is in the file (unless a read held an older page just then)
            done = checkpoints.checkpoint()
            return done is not None and done.logged > 0 and done.copied == done.logged

        eventually(folded, "a checkpoint that leaves nothing in the log")
        assert sorted(ran) == sorted(ids)
    assert store.checkpoints is None and not _checkpoint_threads()  # the thread ended with the store
    with sqlite3.connect(tmp_path / "p.db") as conn:  # what was folded back reads from the file alone
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE state = 'completed'").fetchone()[0] == 200


def test_the_thread_folds_what_others_wrote_without_being_asked(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    writer = _writer(path)
    writer.execute("CREATE TABLE notes (body TEXT)")
    writer.executemany("INSERT INTO notes VALUES (?)", [("x" * 1000,) for _ in range(1000)])
    before = os.path.getsize(path)  # the rows are in the log only
    checkpoints = Checkpointer(str(path), interval=0.01)
    checkpoints.start()
    try:
        # The file grows while a pass copies the rows; the pass is counted once it returns.
        eventually(lambda: os.path.getsize(path) > before + 500_000 and checkpoints.passes > 0,
                   "the thread to copy the rows into the file")  # fmt: skip
        assert checkpoints.failures == 0
    finally:
        checkpoints.stop()
        writer.close()
    assert not checkpoints.running and not _checkpoint_threads()
    assert checkpoints.checkpoint() is None  # stopped: it does nothing


def test_a_checkpoint_that_fails_is_logged_once_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "not-a-database"
    path.write_bytes(b"this is not a SQLite file, " * 200)
    checkpoints = Checkpointer(str(path), interval=3600)  # only the checkpoints asked for below
    checkpoints.start()
    try:
        with caplog.at_level(logging.WARNING, logger="pepper.store.checkpoints"):
            assert [checkpoints.checkpoint() for _ in range(3)] == [None, None, None]
        assert checkpoints.failures == 3 and checkpoints.passes == 0
        warnings = [r.getMessage() for r in caplog.records if r.name == "pepper.store.checkpoints"]
        assert len(warnings) == 1 and "not-a-database" in warnings[0]
    finally:
        checkpoints.stop()
    assert path.read_bytes() == b"this is not a SQLite file, " * 200  # nothing written to it


def test_an_interval_that_is_not_positive_is_refused() -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="interval must be"):
            Checkpointer("x.db", interval=bad)


def test_a_store_in_memory_or_never_asked_runs_no_thread_and_asking_twice_starts_one(tmp_path: Path) -> None:
    memory = SQLiteStore(":memory:")
    memory.checkpoint_in_background()
    assert memory.checkpoints is None and not _checkpoint_threads()
    memory.close()
    store = SQLiteStore(str(tmp_path / "p.db"))
    assert store.checkpoints is None  # a store alone (a command's) keeps SQLite's own checkpoints
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    store.checkpoint_in_background()
    store.checkpoint_in_background()
    assert len(_checkpoint_threads()) == 1
    store.close()
    assert not _checkpoint_threads()


def test_reclaiming_space_truncates_the_log_while_the_thread_runs(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "p.db"))
    store.checkpoint_in_background()
    try:
        assert store.checkpoints is not None
        store.checkpoints.interval = 0.001  # as often as it can, to meet the VACUUM
        with store.lock:
            store.conn.execute("CREATE TABLE scratch (body TEXT)")
            store.conn.executemany("INSERT INTO scratch VALUES (?)", [("y" * 1000,) for _ in range(2000)])
            store.conn.execute("DROP TABLE scratch")
        store.reclaim_space()
        assert os.path.getsize(str(tmp_path / "p.db") + "-wal") == 0  # truncated, not left to a later checkpoint
    finally:
        store.close()


def test_a_checkpoint_thread_that_cannot_start_leaves_the_commits_checkpointing_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def cannot_open(self: Checkpointer) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(Checkpointer, "start", cannot_open)
    store = SQLiteStore(str(tmp_path / "p.db"))
    try:
        with caplog.at_level(logging.WARNING, logger="pepper.store.sqlite"):
            store.checkpoint_in_background()
        assert store.checkpoints is None and not _checkpoint_threads()
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert any("stay within the commits" in r.getMessage() for r in caplog.records)
    finally:
        store.close()
