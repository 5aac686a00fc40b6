"""A ``pepper worker`` stopped with Ctrl-C or SIGTERM while another worker shares the database: the task it
was running finishes there, is committed once, and is not run again by the other worker."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator

TIMEOUT = 60.0

# The agent writes a line per execution, then holds the task until the test creates the file "release".
AGENTS_MODULE = textwrap.dedent("""
    import asyncio
    import os
    import time
    from pathlib import Path

    def hold(task):
        folder = Path(task.inputs["folder"])
        with open(folder / "executions.txt", "a") as out:
            out.write(f"{os.getpid()}\\n")
        while not (folder / "release").exists():
            time.sleep(0.01)
        return {"pid": os.getpid()}

    async def hold_async(task):  # the same, but an attempt the worker can interrupt
        folder = Path(task.inputs["folder"])
        with open(folder / "executions.txt", "a") as out:
            out.write(f"{os.getpid()}\\n")
        while not (folder / "release").exists():
            await asyncio.sleep(0.01)
        return {"pid": os.getpid()}
""")
AGENTS_YAML = "- agent_id: holder\n  task_types: [hold]\n  function: held_agents:{function}\n"
# Workers notice each other quickly.
CONFIG = 'poll_interval = "20ms"\nheartbeat_interval = "50ms"\nshutdown_timeout = "{drain}"\n'


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def has_agents(db: Path) -> bool:
    """True once a worker registered its agents (the database may still be being created)."""
    try:
        return db.exists() and bool(query(db, "SELECT 1 FROM agents"))
    except sqlite3.OperationalError:
        return False


def until(condition: Callable[[], bool], what: str, *alive: subprocess.Popen[str]) -> None:
    """Poll ``condition``; the deadline is a safety net, not a wait for something to happen."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        for process in alive:
            assert process.poll() is None, f"a worker exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def heartbeats(db: Path, worker_pid: int, count: int) -> Callable[[], bool]:
    """A condition true once the worker of ``worker_pid`` has recorded ``count`` more heartbeats from now
    (each followed by its sweep for lost work)."""
    sql = "SELECT heartbeat_at FROM workers WHERE pid = ? AND stopped_at IS NULL"
    seen = [row[0] for row in query(db, sql, worker_pid)]

    def beaten() -> bool:
        now = [row[0] for row in query(db, sql, worker_pid)]
        if now and (not seen or now[-1] != seen[-1]):
            seen.append(now[-1])
        return len(seen) > count

    return beaten


@contextmanager
def worker(folder: Path, name: str) -> Iterator[subprocess.Popen[str]]:
    """``pepper worker`` on the shared database, its output in ``<name>.out``; killed if still running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    argv = [sys.executable, "-m", "pepper", "worker", "--agents", str(folder / "agents.yaml"), "--db",
            str(folder / "shared.db")]  # fmt: skip
    with open(folder / f"{name}.out", "w") as out:
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)


def prepare(folder: Path, function: str, drain: str) -> None:
    """The agents module and file, and a ``pepper.toml`` with ``drain`` as the shutdown timeout."""
    (folder / "held_agents.py").write_text(AGENTS_MODULE)
    (folder / "agents.yaml").write_text(AGENTS_YAML.format(function=function))
    (folder / "pepper.toml").write_text(CONFIG.format(drain=drain))


def executions(folder: Path) -> list[str]:
    """The pid of the worker of each execution of the task, in order."""
    path = folder / "executions.txt"
    return path.read_text().split() if path.exists() else []


def submit_held(folder: Path) -> None:
    with pepper.Runtime(db=str(folder / "shared.db"), create=False) as submitter:
        TaskOrchestrator(submitter).submit_tasks([{"id": "held", "type": "hold", "inputs": {"folder": str(folder)}}])


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_worker_finishes_its_task_and_no_other_worker_runs_it_again(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    prepare(tmp_path, "hold", drain="300s")  # the drain outlasts any wait of the test
    db = tmp_path / "shared.db"

    def ran() -> list[str]:
        return executions(tmp_path)

    with worker(tmp_path, "first") as first:
        # Given a worker running a task that holds until released
        until(lambda: has_agents(db), "the first worker", first)
        submit_held(tmp_path)
        until(lambda: len(ran()) == 1, "the task to start", first)
        assert ran() == [str(first.pid)]

        # and a second worker on the same database, able to take the same task
        with worker(tmp_path, "second") as second:
            until(heartbeats(db, second.pid, 2), "the second worker", first, second)

            # When the first worker is asked to stop while its task runs
            first.send_signal(stop_signal)
            until(lambda: "stopping" in (tmp_path / "first.out").read_text(), "the first worker to drain", first)
            # the second worker keeps sweeping for lost work meanwhile
            until(heartbeats(db, second.pid, 3), "the second worker's sweeps", first, second)
            assert query(db, "SELECT state FROM tasks WHERE task_id = 'held'") == [("in_progress",)]

            # and the task is released
            (tmp_path / "release").touch()
            assert first.wait(TIMEOUT) == 0, (tmp_path / "first.out").read_text()
            until(heartbeats(db, second.pid, 3), "the second worker's sweeps after the stop", second)
            second.send_signal(signal.SIGTERM)
            assert second.wait(TIMEOUT) == 0, (tmp_path / "second.out").read_text()

    # Then the task completed once, on the first worker, and was not run again
    assert ran() == [str(first.pid)]
    (state, attempts, result, error), = query(db, "SELECT state, attempts, result, error FROM tasks")  # fmt: skip
    assert (state, attempts, error) == ("completed", 1, None)
    assert str(first.pid) in result
    assert query(db, "SELECT outcome, error FROM attempts") == []  # no interrupted attempt either
    # and the first worker said so, then deregistered: it is no longer live, its agent is gone
    output = (tmp_path / "first.out").read_text()
    assert "1 completed" in output and "WorkerLost" not in output
    assert query(db, "SELECT COUNT(*) FROM workers WHERE pid = ? AND stopped_at IS NULL", first.pid) == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM agents") == [(0,)]


@pytest.mark.slow
def test_a_worker_whose_drain_times_out_requeues_its_attempt_itself_before_it_leaves(tmp_path: Path) -> None:
    prepare(tmp_path, "hold_async", drain="200ms")
    db = tmp_path / "shared.db"
    with worker(tmp_path, "first") as first:
        # Given a worker running a task that holds until released, and a second worker beside it
        until(lambda: has_agents(db), "the first worker", first)
        submit_held(tmp_path)
        until(lambda: len(executions(tmp_path)) == 1, "the task to start", first)
        with worker(tmp_path, "second") as second:
            until(heartbeats(db, second.pid, 2), "the second worker", first, second)

            # When the first worker is stopped and its drain ends before the task does
            first.send_signal(signal.SIGINT)
            assert first.wait(TIMEOUT) == 0, (tmp_path / "first.out").read_text()

            # Then the first worker requeued the attempt as interrupted (it did not leave it to be found lost)
            (outcome, error, worker_id), = query(db, "SELECT outcome, error, worker_id FROM attempts")  # fmt: skip
            assert outcome == "interrupted" and "Interrupted" in error and "WorkerLost" not in error
            assert f":{first.pid}:" in worker_id
            # and the second worker runs it, once
            until(lambda: len(executions(tmp_path)) == 2, "the second worker to run the task", second)
            (tmp_path / "release").touch()
            until(lambda: query(db, "SELECT state FROM tasks") == [("completed",)], "the task to complete", second)
            second.send_signal(signal.SIGTERM)
            assert second.wait(TIMEOUT) == 0, (tmp_path / "second.out").read_text()

    assert executions(tmp_path) == [str(first.pid), str(second.pid)]
    assert query(db, "SELECT attempts, error FROM tasks") == [(2, None)]
    assert query(db, "SELECT COUNT(*) FROM attempts") == [(1,)]
