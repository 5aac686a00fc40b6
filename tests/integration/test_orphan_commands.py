"""A worker killed outright leaves its commands running; the worker of the same host that takes its tasks over
stops them (found by their ``PEPPER_WORKER_ID`` mark) before it gives back the leases and runs the tasks again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.orphans import WORKER_ENV, stop_commands_of
from tests.support import eventually

#: The command: its first attempt starts a grandchild, writes both pids and blocks; the second says which of
#: them are still running as it starts.
JOB = textwrap.dedent("""
    import json, os, signal, subprocess, sys
    import psutil

    here = os.path.dirname(os.path.abspath(__file__))
    attempt = os.environ["PEPPER_ATTEMPT"]
    with open(os.path.join(here, "starts.log"), "a") as log:
        log.write(attempt + "\\n")
    pids = os.path.join(here, "first.pids")
    if attempt == "1":
        grandchild = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
        with open(pids + ".tmp", "w") as out:
            json.dump([os.getpid(), grandchild.pid], out)
        os.rename(pids + ".tmp", pids)
        signal.pause()

    def running(pid):
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    with open(pids) as found:
        print(json.dumps({"first_still_running": [pid for pid in json.load(found) if running(pid)]}))
""")


def _task(db: Path) -> tuple[str, int, str | None] | None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT state, attempts, result FROM tasks WHERE task_id = 'g0'").fetchone()
    finally:
        conn.close()


@pytest.mark.slow
def test_the_worker_taking_over_stops_the_dead_workers_command_before_running_its_task_again(tmp_path):
    # Given a pool of one gpu, a command agent needing it, and one gpu task
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "pepper.toml").write_text("[pepper]\nresources = {gpu = 1}\n")
    command = f'"$PEPPER_PYTHON" {tmp_path / "job.py"}'
    (tmp_path / "agents.yaml").write_text(
        f"- agent_id: C\n  task_types: [gpu]\n  capacity: 2\n  command: {json.dumps(command)}\n"
    )
    db = tmp_path / "shared.db"
    with pepper.Runtime(db=str(db), home=str(tmp_path / "home"), resources={"gpu": 1}) as submitter:
        TaskOrchestrator(submitter).submit_task("g0", "gpu", requirements={"resources": {"gpu": 1}})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop(WORKER_ENV, None)

    def worker() -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "pepper", "worker", "--agents", "agents.yaml", "--db", str(db)]
        return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    # ... a worker running it, the command blocked with a grandchild of its own
    first = worker()
    pids_file = tmp_path / "first.pids"
    first_pids = eventually(lambda: pids_file.exists() and json.loads(pids_file.read_text()), "the first attempt",
                            timeout=120)  # fmt: skip
    # When that worker is killed outright, its command left running
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert all(psutil.pid_exists(pid) for pid in first_pids)
    # ... and a second worker on the same host and store takes the task over
    second = worker()
    try:
        _, attempts, result = eventually(lambda: (row := _task(db)) and row[0] == "completed" and row,
                                         "the task to complete", timeout=120)  # fmt: skip
    finally:
        second.send_signal(signal.SIGINT)
        out = second.communicate(timeout=60)[0].decode()
        for pid in first_pids:  # none is left without the take-over's stop; a failing run leaves none either
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
    # Then the first attempt's processes were gone before the second attempt started (one gpu, never two)
    assert json.loads(result) == {"first_still_running": []}, out
    assert attempts == 2
    assert (tmp_path / "starts.log").read_text().split() == ["1", "2"]  # the task ran once more, not twice
    assert "left running by the commands of worker" in out


def _sleeper(env: dict[str, str], *, new_group: bool) -> subprocess.Popen[bytes]:
    code = "import signal; signal.pause()"
    return subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=new_group)


def test_only_processes_marked_with_the_dead_workers_id_are_stopped_with_their_groups():
    # Given a marked command leading its group, with an unmarked child in it, and processes not of that worker
    leader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import subprocess, sys, signal
            child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], env={})
            print(child.pid, flush=True)
            signal.pause()
        """)],
        env={**os.environ, WORKER_ENV: "host:1:dead"},
        start_new_session=True,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    unmarked_child = int(leader.stdout.readline())
    other_worker = _sleeper({**os.environ, WORKER_ENV: "host:2:alive"}, new_group=True)
    unmarked = _sleeper({k: v for k, v in os.environ.items() if k != WORKER_ENV}, new_group=True)
    try:
        # When the dead worker's commands are stopped
        found = stop_commands_of("host:1:dead")
        # Then its marked process was found, and it and the rest of its group are gone
        assert found == 1
        assert leader.wait(30) == -signal.SIGKILL
        assert not psutil.pid_exists(unmarked_child) or psutil.Process(unmarked_child).status() == "zombie"
        # ... while the others run on
        assert other_worker.poll() is None and unmarked.poll() is None
        assert stop_commands_of("host:9:none") == 0
    finally:
        for proc in (leader, other_worker, unmarked):
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
        if psutil.pid_exists(unmarked_child):
            os.kill(unmarked_child, signal.SIGKILL)
