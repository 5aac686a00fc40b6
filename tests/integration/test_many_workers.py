"""Several worker processes share one database: every task runs exactly once, unless its worker dies.

2,000 tasks in small diamonds (a root, two branches, a join) and tasks that lease a cpu from the pool;
three workers take them concurrently, on a SQLite file and on PostgreSQL (there each with a host id of its
own, as if on three machines). Executions are counted in the agents (one line per execution in a log
shared by the workers), not only in the rows.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from tests.support import read_rows as read

GROUPS = 400  # x 5 tasks: hundreds of claims per worker, thousands of contended ones in all

WORKER = textwrap.dedent("""
    import os, sys, time
    import pepper

    db, home, log, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    runtime = pepper.Runtime(db=db, home=home, resources={"cpu": 4}, poll_interval="20ms",
                             heartbeat_interval="100ms", visibility_timeout="2s", shutdown_timeout="5s")
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def work(task):
        for dep, result in task.dependency_results.items():
            assert result == dep, (task.task_id, dep, result)  # dependencies completed before this started
        os.write(out, f"{task.task_id} {os.getpid()} {task.attempt}\\n".encode())
        return task.task_id

    pepper.agent("plain", task_types=["t"], capacity=6, runtime=runtime)(work)
    pepper.agent("leasing", task_types=["r"], capacity=3, runtime=runtime)(work)
    runtime.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # stop once every task is stored as completed
        counts = runtime.store.count_by_state()
        if counts.get("completed", 0) == expected:
            break
        time.sleep(0.1)
    runtime.close()
""")


def specs() -> list[dict]:
    out = []
    for g in range(GROUPS):
        root, left, right, join = (f"g{g}/{name}" for name in ("root", "left", "right", "join"))
        out += [
            {"id": root, "type": "t"},
            {"id": left, "type": "t", "dependencies": [root]},
            {"id": right, "type": "r", "dependencies": [root], "requirements": {"resources": {"cpu": 1}}},
            {"id": join, "type": "t", "dependencies": [left, right]},
            {"id": f"g{g}/solo", "type": "r", "requirements": {"resources": {"cpu": 1}}},
        ]
    return out


def states(db: str) -> dict[str, int]:
    return {state: int(n) for state, n in read(db, "SELECT state, COUNT(*) FROM tasks GROUP BY state")}


class Workers:
    def __init__(self, tmp_path: Path, total: int, db: str, hosts: bool) -> None:
        self.tmp, self.total, self.db, self.hosts = tmp_path, total, db, hosts
        self.log = tmp_path / "ran.log"
        self.script = tmp_path / "worker.py"
        self.script.write_text(WORKER)
        self.env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()

    def start(self) -> subprocess.Popen[bytes]:
        home = self.tmp / f"home-{len(self.procs)}"
        args = [sys.executable, str(self.script), self.db, str(home), str(self.log), str(self.total)]
        env = {**self.env, "PEPPER_HOST_ID": f"host-{len(self.procs)}"} if self.hosts else self.env
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def executions(self) -> list[tuple[str, int]]:
        if not self.log.exists():
            return []
        return [(line.split()[0], int(line.split()[1])) for line in self.log.read_text().splitlines() if line]

    def wait_registered(self, agents: int, deadline: float) -> None:
        """Until ``agents`` agents of live workers are in the database (every worker is ready to take work)."""
        sql = "SELECT COUNT(*) FROM agents a JOIN workers w USING (worker_id) WHERE w.stopped_at IS NULL"
        while True:
            try:
                found = int(read(self.db, sql)[0][0])
            except pepper.PepperError:  # no database yet
                found = 0
            if found >= agents:
                return
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)

    def submit(self) -> None:
        with pepper.Runtime(db=self.db, home=str(self.tmp / "home"), resources={"cpu": 4}) as rt:
            TaskOrchestrator(rt).submit_tasks(specs())

    def wait_for(self, executed: int, deadline: float) -> None:
        while len(self.executions()) < executed:
            assert time.monotonic() < deadline, f"the workers stopped making progress: {self.diagnosis()}"
            time.sleep(0.02)

    def diagnosis(self) -> str:
        """What the database says, for a failure message."""
        return repr({
            "states": states(self.db),
            "live leases": read(self.db, "SELECT lease_id, worker_id FROM leases WHERE released_at IS NULL"),
            "workers": read(self.db, "SELECT worker_id, pid, heartbeat_at, stopped_at FROM workers"),
            "running": read(self.db, "SELECT task_id, owner, attempts FROM tasks WHERE state = 'in_progress' LIMIT 10"),
            "exits": [proc.poll() for proc in self.procs],
        })  # fmt: skip

    def finish(self, deadline: float) -> None:
        for proc in self.procs:
            if proc.pid in self.killed:
                continue
            try:
                proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"a worker never finished: {self.diagnosis()}") from None
            assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture(params=["sqlite", "postgres"])
def workers(request, tmp_path):
    if request.param == "postgres":
        db, hosts = request.getfixturevalue("postgres_url"), True
    else:
        db, hosts = str(tmp_path / "shared.db"), False
    group = Workers(tmp_path, len(specs()), db, hosts)
    yield group
    group.stop_all()


@pytest.mark.slow
def test_three_workers_run_each_of_two_thousand_tasks_exactly_once(workers):
    deadline = time.monotonic() + 240  # before pytest's own timeout, with a diagnosis
    for _ in range(3):
        workers.start()
    workers.wait_registered(6, deadline)
    workers.submit()  # while all three wait for work
    workers.finish(deadline)
    assert states(workers.db) == {"completed": workers.total}
    runs = Counter(task_id for task_id, _ in workers.executions())
    assert len(runs) == workers.total and set(runs.values()) == {1}, runs.most_common(5)
    by_worker = Counter(pid for _, pid in workers.executions())
    assert len(by_worker) == 3  # every worker kept taking and committing work


@pytest.mark.slow
def test_workers_killed_and_restarted_lose_nothing_and_only_the_dead_workers_tasks_run_again(workers):
    deadline = time.monotonic() + 240
    for _ in range(3):
        workers.start()
    workers.wait_registered(6, deadline)
    workers.submit()
    seed = random.randrange(2**32)
    shares = random.Random(seed)
    moments = sorted(shares.uniform(0.05, 0.75) for _ in range(3))
    print(f"kill -9 after these shares of the tasks ran: {moments} (seed {seed})")
    for round_, share in enumerate(moments):  # kill -9 one worker while it holds work, start a fresh one
        workers.wait_for(int(share * workers.total), deadline)
        victim = workers.procs[round_]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        workers.killed.add(victim.pid)
        workers.start()
    workers.finish(deadline)
    assert states(workers.db) == {"completed": workers.total}
    runs: dict[str, list[int]] = {}
    for task_id, pid in workers.executions():
        runs.setdefault(task_id, []).append(pid)
    assert len(runs) == workers.total
    for task_id, pids in runs.items():
        survivors = [pid for pid in pids if pid not in workers.killed]
        # a task runs again only because a worker that ran it died; never twice in live workers
        assert len(survivors) <= 1, (task_id, pids)
        assert len(pids) == 1 or len(pids) - len(survivors) >= 1, (task_id, pids)
