"""A database that is locked, read-only or full: typed pepper errors saying what to do, never SQLite's own, and a
health probe that sees it without changing anything."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import HealthMonitor, TaskOrchestrator
from pepper.errors import DatabaseReadOnlyError, PepperError, StoreBusyError
from pepper.store.sqlite import SQLiteStore
from tests.acceptance.test_cli import TIMEOUT, _env
from tests.support import eventually


def _pepper(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pepper", *args], cwd=folder, env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip


@pytest.fixture
def stored(tmp_path: Path) -> str:
    """A database with one pending task ``a``."""
    db = str(tmp_path / "pepper.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home")) as runtime:
        TaskOrchestrator(runtime).submit_task(task_id="a", task_type="t")
    return db


@pytest.fixture
def locked(stored: str) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock until the test ends."""
    holder = sqlite3.connect(stored, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def test_a_locked_database_opens_and_reads_and_a_write_raises_store_busy_naming_the_lock(stored, locked, tmp_path):
    runtime = pepper.Runtime(db=stored, home=str(tmp_path / "home"), busy_timeout=0.1)  # opening writes nothing
    try:
        orchestrator = TaskOrchestrator(runtime)
        assert orchestrator.get_task_status("a").state.value == "pending"
        with pytest.raises(StoreBusyError, match="locked by another process") as caught:
            orchestrator.submit_task(task_id="b", task_type="t")
        assert "busy_timeout" in str(caught.value)
    finally:
        runtime.close()
    locked.execute("ROLLBACK")
    locked.execute("BEGIN")  # let go, so the check below can read
    assert [r[0] for r in locked.execute("SELECT task_id FROM tasks")] == ["a"]  # the refused submit stored nothing


def test_the_cli_says_the_database_is_locked_in_one_line_and_exits_2(stored, locked, tmp_path):
    (tmp_path / "pepper.toml").write_text('busy_timeout = "100ms"\n')
    done = _pepper(tmp_path, "--db", stored, "submit", "t", "--id", "b")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: the pepper database") and "locked by another process" in lines[0]


def test_every_store_call_types_sqlite_errors(tmp_path):
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    try:
        store.conn.execute("PRAGMA query_only = ON")  # SQLite refuses every write, as for a read-only file
        with pytest.raises(DatabaseReadOnlyError, match="cannot be written") as caught:
            store.workers.register("w1", "host", 1, 0.0)
        assert isinstance(caught.value, StoreBusyError)  # the same write may pass once it is put right
        with pytest.raises(DatabaseReadOnlyError):
            store.leases.ensure_pool({"cpu": 2.0}, replace=True)
        with pytest.raises(PepperError):
            store.fetch("SELECT * FROM no_such_table")
    finally:
        store.close()


def test_opening_a_store_whose_pool_is_stored_writes_nothing(tmp_path):
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    try:
        assert store.leases.ensure_pool({"cpu": 2.0}, replace=False) == {"cpu": 2.0}
        store.conn.execute("PRAGMA query_only = ON")
        assert store.leases.ensure_pool({"cpu": 4.0}, replace=False) == {"cpu": 2.0}  # kept, not written
        assert store.leases.ensure_pool({"cpu": 2.0}, replace=True) == {"cpu": 2.0}  # the same: not written
        with pytest.raises(DatabaseReadOnlyError):
            store.leases.ensure_pool({"cpu": 3.0}, replace=True)  # a change must be written, and cannot be
        store.conn.execute("PRAGMA query_only = OFF")
        assert store.leases.pool() == {"cpu": 2.0}
    finally:
        store.close()


def test_the_health_probe_sees_a_database_that_takes_no_writes_and_changes_nothing(tmp_path):
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"))
    try:
        store = runtime.store
        assert store.probe_write() is None
        before = store.fetch("SELECT version, applied_at FROM schema_version ORDER BY version")
        store.conn.execute("PRAGMA query_only = ON")  # type: ignore[attr-defined]
        report = HealthMonitor(runtime=runtime).check_health(["store"])
        assert report.status == "unhealthy"
        reasons = " ".join(report.components["store"].reasons)
        assert "cannot be written" in reasons and "readonly" in reasons
        store.conn.execute("PRAGMA query_only = OFF")  # type: ignore[attr-defined]
        assert store.probe_write() is None
        assert store.fetch("SELECT version, applied_at FROM schema_version ORDER BY version") == before
        assert not store.conn.in_transaction  # type: ignore[attr-defined]
    finally:
        runtime.close()


def test_closing_never_raises_for_a_checkpoint_that_fails(tmp_path, caplog):
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    real = store.conn

    class _NoCheckpoint:
        def execute(self, sql: str, params: object = ()) -> object:
            if "wal_checkpoint" in sql:
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, params)  # type: ignore[arg-type]

        def close(self) -> None:
            real.close()

    store._conn = _NoCheckpoint()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="pepper.store.sqlite"):
        store.close()
    assert store.closed
    assert any("no space is left" in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)  # one line, no traceback


def _without_override() -> list[str]:
    """The command prefix that runs a program obeying file permissions (root gives up the power to ignore them)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made read-only to pepper")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


def test_a_read_only_database_file_is_unhealthy_and_each_command_says_so_in_one_line(stored, tmp_path):
    Path(stored).chmod(0o444)
    prefix = _without_override()
    probe = subprocess.run([*prefix, sys.executable, "-c", f"import os, sys; sys.exit(os.access({stored!r}, os.W_OK))"],
                           timeout=TIMEOUT)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip("the database file stays writable to this user (a capability that bypasses file permissions)")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-m", "pepper", "--db", stored, *args], cwd=tmp_path,
                              env=_env(), capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip

    health = run("health", "--json")
    assert health.returncode == 2, health.stderr
    store = json.loads(health.stdout)["components"]["store"]
    assert store["status"] == "unhealthy" and "read-only" in " ".join(store["reasons"])
    assert run("status", "a").returncode == 0  # reading needs no write
    for command in (("submit", "t", "--id", "b"), ("cancel", "a")):
        done = run(*command)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "cannot be written" in done.stderr and "writable" in done.stderr
    Path(stored).chmod(0o644)
    with pepper.Runtime(db=stored, home=str(tmp_path / "home")) as runtime:  # nothing was changed
        assert TaskOrchestrator(runtime).get_task_status("a").state.value == "pending"
        assert runtime.store.get_tasks(["b"]) == {}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 3 MB file system of its own (root only)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _fill(folder: Path) -> None:
    with (folder / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


def test_a_full_disk_says_no_space_is_left_and_closing_does_not_raise(small_disk, tmp_path):
    db = str(small_disk / "pepper.db")
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"))
    calls = []
    pepper.agent("ag", task_types=["t"], runtime=runtime)(lambda task: calls.append(task.task_id) or 1)
    orchestrator = TaskOrchestrator(runtime)
    try:
        orchestrator.submit_task(task_id="a", task_type="t")
        assert orchestrator.get_result("a", timeout=TIMEOUT) == 1
        _fill(small_disk)
        report = HealthMonitor(runtime=runtime).check_health(["store"])
        assert report.status == "unhealthy"
        assert "no space is left" in " ".join(report.components["store"].reasons)
    finally:
        runtime.close(timeout=5)  # the worker cannot record its stop: logged, not raised
    assert calls == ["a"]
    done = _pepper(tmp_path, "--db", db, "submit", "t", "--id", "b")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "no space is left" in done.stderr
    (small_disk / "filler").unlink()
    with pepper.Runtime(db=db, home=str(tmp_path / "home")) as runtime:
        assert set(runtime.store.get_tasks(["a", "b"])) == {"a"}


def test_while_the_database_is_locked_the_chores_of_a_worker_log_one_line_per_retry(tmp_path, caplog):
    db = str(tmp_path / "pepper.db")
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), busy_timeout=0.05, poll_interval="20ms",
                             sample_interval="50ms", heartbeat_interval="100ms")  # fmt: skip
    calls = []
    pepper.agent("ag", task_types=["t"], runtime=runtime)(lambda task: calls.append(task.task_id) or 1)
    orchestrator = TaskOrchestrator(runtime)
    try:
        orchestrator.submit_task(task_id="a", task_type="t")
        assert orchestrator.get_result("a", timeout=TIMEOUT) == 1
        holder = sqlite3.connect(db, isolation_level=None)
        with caplog.at_level(logging.WARNING, logger="pepper"):
            holder.execute("BEGIN EXCLUSIVE")
            try:
                eventually(lambda: {"samples", "heartbeat"} <= _retried(caplog.records), "both chores retried")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
        engine = [r for r in caplog.records if r.name.startswith(("pepper.engine", "pepper.monitoring"))]
        assert engine and all(r.exc_info is None for r in engine)  # one line each, no traceback
        assert all("locked by another process" in r.getMessage() for r in engine if "try again" in r.getMessage())
        orchestrator.submit_task(task_id="b", task_type="t")  # and the worker goes on once the lock is gone
        assert orchestrator.get_result("b", timeout=TIMEOUT) == 1
    finally:
        runtime.close()
    assert calls == ["a", "b"]


def _retried(records: list[logging.LogRecord]) -> set[str]:
    """Which chores logged that they will try again: storing samples, the upkeep (heartbeat, polls)."""
    found = set()
    for record in records:
        message = record.getMessage()
        if "could not store the samples" in message:
            found.add("samples")
        if "upkeep could not reach the database" in message:
            found.add("heartbeat")
    return found


_FOLDER_PROBE = """
import os, sys
import pepper
from pepper.core import HealthMonitor
db = sys.argv[1]
with pepper.Runtime(db=db, home=sys.argv[2]) as runtime:
    assert runtime.store.probe_write() is None
    for name in (db + "-wal", db + "-shm", os.path.dirname(db)):
        os.chmod(name, 0o555 if os.path.isdir(name) else 0o444)
    report = HealthMonitor(runtime=runtime).check_health(["store"])
    print(report.status, *report.components["store"].reasons)
    os.chmod(os.path.dirname(db), 0o755)
"""


def test_a_read_only_folder_is_unhealthy_and_a_database_that_cannot_open_in_it_says_why(stored, tmp_path):
    prefix = _without_override()
    folder = Path(stored).parent
    folder.chmod(0o555)
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", f"import os, sys; sys.exit(os.access({str(folder)!r}, "
                                "os.W_OK))"], timeout=TIMEOUT)  # fmt: skip
        if probe.returncode != 0:
            pytest.skip("the folder stays writable to this user (a capability that bypasses file permissions)")
        for command in (("status", "a"), ("submit", "t", "--id", "b"), ("health",)):
            done = subprocess.run([*prefix, sys.executable, "-m", "pepper", "--db", stored, *command], cwd=tmp_path,
                                  env=_env(), capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
            assert done.returncode == 2, done.stderr
            assert "Traceback" not in done.stderr and "cannot be written" in done.stderr, done.stderr
    finally:
        folder.chmod(0o755)
    child = subprocess.run([*prefix, sys.executable, "-c", _FOLDER_PROBE, stored, str(tmp_path / "home")],
                           env=_env(), capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    folder.chmod(0o755)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("unhealthy") and "folder" in child.stdout and "read-only" in child.stdout


def test_the_cli_tells_a_database_error_that_escaped_in_one_line():
    from pepper.cli.main import _store_failure

    assert _store_failure(sqlite3.OperationalError("database is locked"))
    assert not _store_failure(ValueError("not the database's"))
