"""A fleet of ``pepper worker`` processes sharing one database (a SQLite file or a PostgreSQL URL), for the
scenarios that stop, kill and starve workers.

Each agent writes one line per execution to a log shared by the workers (``O_APPEND``, one ``write``):
``<task id> <attempt> <pid> <agent>``. The agents:

- ``plain`` (type ``t``): checks its dependencies' results, returns its task id;
- ``flaky`` (type ``f``): raises on its first attempt, returns its task id after;
- ``stuck`` (type ``s``): on its first attempt waits far longer than any task's timeout, returns after;
- ``held`` (type ``h``): holds until the file ``release`` exists in the fleet's folder, returns its task id.

A fleet with ``faults`` has its workers' commits fail while the file ``refuse`` exists (nothing written, as on
a full disk), and some of them report a failure after writing while the file ``lose`` exists (as when the
connection breaks as the database commits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pepper
from tests.support import read_rows

DEADLINE = 120.0  # a safety net against a hang, never a wait for something to happen

AGENTS_MODULE = textwrap.dedent("""
    import asyncio
    import os
    import time
    from pathlib import Path

    LOG = os.environ["FLEET_LOG"]
    FOLDER = Path(LOG).parent

    if os.environ.get("FLEET_FAULTS"):  # the database fails this worker's commits while a file says so
        import random
        from pepper.errors import StoreBusyError
        from pepper.store.sql_store import SqlStore

        _commit = SqlStore.commit

        def _failing_commit(self, writes, writer, now=0.0):
            if (FOLDER / "refuse").exists():  # as a full disk: nothing of the commit is written
                raise StoreBusyError("database or disk is full")
            result = _commit(self, writes, writer, now)
            if (FOLDER / "lose").exists() and random.random() < 0.3:  # written, but the answer never came
                raise StoreBusyError("server closed the connection unexpectedly")
            return result

        SqlStore.commit = _failing_commit

    def _ran(task, agent):
        out = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(out, f"{task.task_id} {task.attempt} {os.getpid()} {agent}\\n".encode())
        finally:
            os.close(out)

    def plain(task):
        for dep, result in task.dependency_results.items():
            assert result == dep, (task.task_id, dep, result)
        _ran(task, "plain")
        return task.task_id

    def flaky(task):
        _ran(task, "flaky")
        if task.attempt == 1:
            raise RuntimeError(f"{task.task_id} fails its first attempt")
        return task.task_id

    async def stuck(task):
        _ran(task, "stuck")
        if task.attempt == 1:
            await asyncio.sleep(3600)
        return task.task_id

    def held(task):
        _ran(task, "held")
        while not (FOLDER / "release").exists():
            time.sleep(0.01)
        return task.task_id
""")

AGENTS_YAML = textwrap.dedent("""
    - agent_id: plain
      task_types: [t]
      capacity: 4
      function: fleet_agents:plain
    - agent_id: flaky
      task_types: [f]
      capacity: 2
      function: fleet_agents:flaky
    - agent_id: stuck
      task_types: [s]
      capacity: 4
      function: fleet_agents:stuck
    - agent_id: held
      task_types: [h]
      capacity: 4
      function: fleet_agents:held
""")

CONFIG = textwrap.dedent("""
    poll_interval = "20ms"
    heartbeat_interval = "100ms"
    visibility_timeout = "2s"
    retry_delay = "20ms"
    retry_max_delay = "100ms"
    shutdown_timeout = "60s"
""")


class Fleet:
    """``pepper worker`` processes on ``db``, started and stopped one by one, with the log of executions."""

    def __init__(self, folder: Path, db: str, hosts: bool, faults: bool = False) -> None:
        self.folder, self.db, self.hosts, self.faults = folder, db, hosts, faults
        self.log = folder / "ran.log"
        (folder / "fleet_agents.py").write_text(AGENTS_MODULE)
        (folder / "agents.yaml").write_text(AGENTS_YAML)
        (folder / "pepper.toml").write_text(CONFIG)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()
        self.stopped: set[int] = set()

    def start(self) -> subprocess.Popen[bytes]:
        """One more worker (on a host of its own on PostgreSQL, as if on another machine)."""
        n = len(self.procs)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPER_")}
        env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]), FLEET_LOG=str(self.log))
        if self.hosts:
            env["PEPPER_HOST_ID"] = f"host-{n}"
        if self.faults:
            env["FLEET_FAULTS"] = "1"
        argv = [sys.executable, "-m", "pepper", "worker", "-q", "--agents", str(self.folder / "agents.yaml"),
                "--db", self.db]  # fmt: skip
        with open(self.folder / f"worker-{n}.out", "wb") as out:
            proc = subprocess.Popen(argv, cwd=self.folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.folder / f"worker-{self.procs.index(proc)}.out").read_text(errors="replace")[-4000:]

    def runtime(self, name: str = "client") -> pepper.Runtime:
        """A process of the test's own on the database (submits, cancels, reads); it runs no agents."""
        return pepper.Runtime(db=self.db, home=str(self.folder / f"home-{name}"), poll_interval="20ms")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return read_rows(self.db, sql)

    def states(self) -> dict[str, int]:
        return {state: int(n) for state, n in self.rows("SELECT state, COUNT(*) FROM tasks GROUP BY state")}

    def executions(self) -> list[tuple[str, int, int, str]]:
        """(task id, attempt, pid, agent) of every execution so far, in order."""
        if not self.log.exists():
            return []
        lines = [line.split() for line in self.log.read_text().splitlines() if line]
        return [(task_id, int(attempt), int(pid), agent) for task_id, attempt, pid, agent in lines]

    def until(self, condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
        """Poll ``condition`` while the workers not killed on purpose keep running."""
        end = time.monotonic() + deadline
        while True:
            value = condition()
            if value:
                return value
            for proc in self.procs:
                if proc.pid not in self.killed | self.stopped and proc.poll() is not None:
                    raise AssertionError(f"a worker exited while waiting for {what}: {self.output(proc)}")
            assert time.monotonic() < end, f"still not true after {deadline:g}s: {what}: {self.diagnosis()}"
            time.sleep(0.02)

    def registered(self, workers: int) -> bool:
        """True once ``workers`` live workers have their agents in the database."""
        sql = (
            "SELECT COUNT(DISTINCT a.worker_id) FROM agents a JOIN workers w USING (worker_id) "
            "WHERE w.stopped_at IS NULL"
        )
        try:
            return int(self.rows(sql)[0][0]) >= workers
        except pepper.PepperError:  # no database yet
            return False

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        self.killed.add(proc.pid)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, and the worker exits cleanly."""
        self.stopped.add(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a stopped worker never exited: {self.diagnosis()}") from None
        assert code == 0, self.output(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None and proc.pid not in self.killed:
                self.stop(proc)

    def close(self) -> None:
        """Kill whatever still runs (after a failure)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)

    def once_per_attempt(self) -> Counter[tuple[str, int]]:
        """Executions per (task, attempt); every attempt number of a task is run at most once."""
        runs = Counter((task_id, attempt) for task_id, attempt, _, _ in self.executions())
        twice = {key: n for key, n in runs.items() if n > 1}
        assert not twice, f"attempts run more than once: {sorted(twice)[:10]}"
        return runs

    def diagnosis(self) -> str:
        try:
            return repr({
                "states": self.states(),
                "running": self.rows("SELECT task_id, owner, attempts FROM tasks WHERE state = 'in_progress' LIMIT 10"),
                "workers": self.rows("SELECT worker_id, pid, heartbeat_at, stopped_at FROM workers"),
                "exits": [proc.poll() for proc in self.procs],
            })  # fmt: skip
        except pepper.PepperError as exc:
            return f"(the database could not be read: {exc})"


def fleet_on(request: pytest.FixtureRequest, folder: Path, *, faults: bool = False) -> Iterator[Fleet]:
    """For a fixture with ``params=["sqlite", "postgres"]``: a fleet on a SQLite file in ``folder``, or on
    PostgreSQL with a host of its own for each worker (only its silence tells there that a worker is gone)."""
    if request.param == "postgres":
        group = Fleet(folder, request.getfixturevalue("postgres_url"), hosts=True, faults=faults)
    else:
        group = Fleet(folder, str(folder / "shared.db"), hosts=False, faults=faults)
    try:
        yield group
    finally:
        group.close()


def freeze_between_writes(proc: subprocess.Popen[bytes], db: str) -> None:
    """SIGSTOP a worker on ``db`` at a moment it holds no write lock (frozen inside a write transaction, it would
    block the other writers: SQLite has one writer at a time, and PostgreSQL's commits take a lock in turn)."""
    if "://" in db:
        _freeze_between_postgres_writes(proc, db)
        return
    import sqlite3

    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        conn = sqlite3.connect(db, timeout=0.2)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # stopped mid-write: let it finish, try again
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        finally:
            conn.close()
    raise AssertionError("the worker never paused between writes")


def _freeze_between_postgres_writes(proc: subprocess.Popen[bytes], url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        for _ in range(200):
            proc.send_signal(signal.SIGSTOP)
            open_transactions = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            ).fetchone()
            if open_transactions is not None and open_transactions[0] == 0:
                return
            proc.send_signal(signal.SIGCONT)  # stopped inside a transaction: let it finish, try again
            time.sleep(0.01)
    raise AssertionError("the worker never paused between writes")
