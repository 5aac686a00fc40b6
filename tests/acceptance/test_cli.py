"""The ``pepper`` command line, driven as a user would: real processes on a temporary database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import pepper

FIXTURES = Path(__file__).parent / "cli_fixtures"
TIMEOUT = 60


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPER_") and k != "COLUMNS"}
    env["PYTHONUTF8"] = "1"
    return env


class CLI:
    """Runs ``python -m pepper COMMAND --db <tmp db> ...`` in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = str(folder / "pepper.db")

    def argv(self, command: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "pepper", command, "--db", self.db, *args]

    def __call__(self, command: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, *args), cwd=self.folder, env=_env(), capture_output=True, text=True, timeout=timeout
        )

    def ok(self, command: str, *args: str) -> str:
        done = self(command, *args)
        assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        return done.stdout

    def json(self, command: str, *args: str) -> Any:
        done = self(command, *args, "--json")
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)

    def popen(self, command: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args),
            cwd=self.folder,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture
def agents_file(tmp_path: Path) -> Path:
    """The fixture agents (a command agent, a function agent, a failing command agent) in their own folder."""
    folder = tmp_path / "agents"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "agents.yaml"


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pepper", "--version"], capture_output=True, text=True, env=_env(), timeout=TIMEOUT
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"pepper {pepper.__version__}"


def test_help_describes_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pepper", "--help"], capture_output=True, text=True, env=_env(), timeout=TIMEOUT
    )
    assert done.returncode == 0
    for command in ("submit", "status", "tasks", "cancel", "worker", "agents"):
        assert f"  {command}  " in done.stdout
    assert "pepper submit" in done.stdout  # an example


def test_a_mistyped_command_is_refused_with_the_closest_one() -> None:
    typo, unknown = (subprocess.run([sys.executable, "-m", "pepper", name, "review"], capture_output=True, text=True,
                                    env=_env(), timeout=TIMEOUT) for name in ("submt", "frobnicate"))  # fmt: skip
    assert typo.returncode == unknown.returncode == 2
    assert "No such command 'submt'. Did you mean 'submit'? `pepper --help` lists the commands." in typo.stderr
    assert "No such command 'frobnicate'." in unknown.stderr and "Did you mean" not in unknown.stderr


def test_database_from_pepper_db_or_before_the_command(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    run = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": TIMEOUT}
    submitted = subprocess.run(
        [sys.executable, "-m", "pepper", "submit", "t", "--id", "from-env"], env={**_env(), "PEPPER_DB": db}, **run
    )
    assert submitted.returncode == 0, submitted.stderr
    listed = subprocess.run([sys.executable, "-m", "pepper", "--db", db, "tasks", "--json"], env=_env(), **run)
    assert [t["task_id"] for t in json.loads(listed.stdout)] == ["from-env"]
    assert not (tmp_path / ".pepper").exists()


def test_submit_status_tasks_cancel(cli: CLI) -> None:
    assert cli.ok("submit", "review", "--id", "child", "--depends-on", "ghost").strip() == "child"
    solo = cli.ok("submit", "review", "--priority", "high").strip()
    assert solo.startswith("task-")

    blocked = cli("status", "child")
    assert blocked.returncode == 0
    assert "blocked" in blocked.stdout
    assert "Why it is waiting" in blocked.stdout
    assert "dependency 'ghost' has not been submitted yet" in blocked.stdout

    pending = cli.ok("status", solo)
    assert "pending" in pending
    assert "high" in pending
    assert "no registered agent accepts task type 'review'" in pending

    table = cli.ok("tasks")
    assert "child" in table and solo in table
    assert table.index(solo) < table.index("child")  # newest first
    assert "2 tasks in the database: 1 blocked, 1 pending" in table

    listed = cli.json("tasks")
    assert [t["task_id"] for t in listed] == [solo, "child"]
    assert {"task_id", "task_type", "state", "priority", "attempts", "waiting_on", "result", "error"} <= set(listed[0])
    assert listed[0]["priority_name"] == "high"
    assert [t["task_id"] for t in cli.json("tasks", "--state", "blocked")] == ["child"]

    cancelled = cli("cancel", solo, "--reason", "not needed")
    assert cancelled.returncode == 0
    assert f"cancelled {solo}" in cancelled.stdout
    after = cli("status", solo)
    assert after.returncode == 1
    assert "cancelled" in after.stdout and "not needed" in after.stdout
    again = cli("cancel", solo)
    assert again.returncode == 0
    assert f"{solo} already finished (cancelled)" in again.stdout
    assert cli.json("cancel", solo) == {"task_id": solo, "cancelled": False, "state": "cancelled"}


def test_bad_priority_names_the_valid_ones(cli: CLI) -> None:
    done = cli("submit", "review", "--priority", "urgent")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    for name in ("critical", "high", "medium", "normal", "low"):
        assert name in done.stderr
    assert "Traceback" not in done.stderr
    assert not Path(cli.db).exists()  # bad input created nothing


def test_reading_a_database_that_does_not_exist_is_an_error_not_a_new_file(cli: CLI) -> None:
    for command in ("tasks", "agents", "status"):
        done = cli(command, *(["x"] if command == "status" else []))
        assert done.returncode == 2 and "no pepper database at" in done.stderr
    assert not Path(cli.db).exists()


def test_a_file_that_is_not_a_pepper_database_is_refused_and_left_alone(cli: CLI) -> None:
    Path(cli.db).write_text("name: not a database\n")
    for command in ("tasks", "health", "alerts"):
        done = cli(command)
        assert done.returncode == 2 and "is not a pepper database" in done.stderr and "Traceback" not in done.stderr
    other = cli.folder / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text)")
    done = subprocess.run([sys.executable, "-m", "pepper", "alerts", "--db", str(other)], cwd=cli.folder, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert done.returncode == 2 and "is a SQLite database, but not a pepper one (its tables: notes)" in done.stderr
    with sqlite3.connect(other) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]  # nothing written
    folder = subprocess.run([sys.executable, "-m", "pepper", "tasks", "--db", str(cli.folder)], cwd=cli.folder,
                            env=_env(), capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert folder.returncode == 2 and "is a folder; give a database file" in folder.stderr


def test_unknown_task_is_bad_input(cli: CLI) -> None:
    cli.ok("submit", "review", "--id", "known")
    for command in ("status", "cancel"):
        done = cli(command, "nope")
        assert done.returncode == 2
        assert "error: no task with id 'nope'" in done.stderr
        assert "Traceback" not in done.stderr


def test_bad_state_and_bad_inputs_exit_2(cli: CLI) -> None:
    state = cli("tasks", "--state", "bogus")
    assert state.returncode == 2
    assert "blocked, pending, in_progress, parked, completed, failed, cancelled" in state.stderr
    assert cli("submit", "review", "--input", "no-equals-sign").returncode == 2
    assert cli("submit", "review", "--inputs", "[1, 2]").returncode == 2
    assert cli("submit", "review", "--inputs", "{not json").returncode == 2
    assert cli("submit", "review", "--depends-on", "a", "--id", "a").returncode == 2  # a cycle
    assert cli.json("tasks") == []


def test_submit_json_describes_the_task(cli: CLI) -> None:
    task = cli.json("submit", "review", "--id", "r1", "--priority", "7", "--retries", "2", "--skill", "markdown")
    assert task["task_id"] == "r1"
    assert task["priority"] == 7
    assert task["max_retries"] == 2
    assert task["state"] == "pending"
    assert task["waiting_on"][0]["kind"] == "no_agent"


def test_worker_until_idle_waits_for_a_delayed_task_of_its_agents(cli: CLI, agents_file: Path) -> None:
    # Stored before the worker starts, due well after its idle grace: it waits for the task rather than stop
    with pepper.Runtime(db=cli.db) as runtime:
        orchestrator = pepper.core.TaskOrchestrator(runtime)
        orchestrator.submit_task("later", "add", inputs={"a": 1, "b": 1}, delay="6s")
        orchestrator.submit_task("not-mine", "translate", delay="1s")  # no agent of this worker runs it
    worker = cli.popen("worker", "--agents", str(agents_file), "--until-idle", "--idle-grace", "1")
    try:
        out, err = worker.communicate(timeout=TIMEOUT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert "✓ later (add) on adder" in out and "1 completed" in out
    assert cli.json("status", "later")["result"] == {"sum": 2}
    assert cli.json("status", "not-mine")["state"] == "pending"


def test_agents_on_an_idle_database_explains_how_to_start_a_worker(cli: CLI) -> None:
    cli.ok("submit", "review", "--id", "waiting")
    out = cli.ok("agents")
    assert "pepper worker --agents" in out
    assert cli.json("agents") == []


def test_worker_runs_submitted_tasks_until_idle(cli: CLI, agents_file: Path) -> None:
    cli.ok("submit", "add", "--id", "first", "--input", "a=1", "--input", "b=2")
    cli.ok("submit", "add", "--id", "second", "--depends-on", "first", "--input", "a=10")
    inputs = '{"n": 1, "list": [1, 2], "keep": "me"}'
    echo_args = ("--input", "n=3", "--input", "flag=true", "--input", "name=hello", "--input", "raw=[1, 2")
    cli.ok("submit", "echo", "--id", "echo", "--inputs", inputs, *echo_args)
    cli.ok("submit", "explode", "--id", "boom")
    cli.ok("submit", "add", "--id", "after-boom", "--depends-on", "boom")

    worker = cli("worker", "--agents", str(agents_file), "--until-idle", "--idle-grace", "0.5")
    assert worker.returncode == 0, worker.stderr
    assert "✓ first (add) on adder in" in worker.stdout
    assert "✗ boom (explode) on broken" in worker.stdout
    assert "3 completed, 1 failed" in worker.stdout
    assert worker.stdout.index("waiting for tasks") < worker.stdout.index("first (add) started")

    assert cli.json("status", "first")["result"] == {"sum": 3}
    second = cli.json("status", "second")
    assert (second["state"], second["result"], second["agent_id"]) == ("completed", {"sum": 13}, "adder")
    echoed = cli.json("status", "echo")
    assert echoed["state"] == "completed"
    assert echoed["result"]["inputs"] == {
        "n": 3,
        "list": [1, 2],
        "keep": "me",
        "flag": True,
        "name": "hello",
        "raw": "[1, 2",
    }

    failed = cli("status", "boom")
    assert failed.returncode == 1
    assert "failed" in failed.stdout
    assert "CommandFailed: command exited with status 3: something went wrong" in failed.stdout  # its last word
    assert cli.json("status", "boom")["error"]["type"] == "CommandFailed"
    assert cli.json("status", "after-boom")["state"] == "cancelled"

    counts = cli.ok("tasks")
    assert "5 tasks in the database: 3 completed, 1 failed, 1 cancelled" in counts

    cli.ok("submit", "nobody-takes-it", "--id", "later")
    logged, silent, unstarted = cli("logs", "boom"), cli("logs", "first"), cli("logs", "later")
    assert (logged.returncode, logged.stdout, logged.stderr) == (0, "something went wrong\n", "")
    assert (silent.returncode, silent.stdout) == (0, "")  # stdout is the log alone; the note goes to stderr
    assert silent.stderr == "attempt 1 of first wrote nothing (no stderr, log records or task.log lines)\n"
    assert unstarted.returncode == 0 and unstarted.stdout == ""
    assert unstarted.stderr.startswith("later has not started yet, so it wrote nothing;")
    never = cli("logs", "after-boom")  # cancelled before it ran
    assert (never.returncode, never.stdout, never.stderr) == (0, "", "after-boom ended without running, so it wrote "
                                                                     "nothing\n")  # fmt: skip


def test_submit_wait_and_agents_with_a_running_worker(cli: CLI, agents_file: Path) -> None:
    worker = cli.popen("worker", "--agents", str(agents_file))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not Path(cli.db).exists() or not cli.json("agents"):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker never registered its agents"
            time.sleep(0.1)
        table = cli.ok("agents")
        for agent_id in ("echo", "adder", "broken"):
            assert agent_id in table

        done = cli("submit", "add", "--input", "a=2", "--input", "b=5", "--wait", "--wait-timeout", "30")
        assert done.returncode == 0, done.stderr
        assert "completed" in done.stdout and '"sum": 7' in done.stdout

        failed = cli("submit", "explode", "--wait", "--json")
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["state"] == "failed"
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=TIMEOUT)
    assert worker.returncode == 0, err
    assert "1 completed, 1 failed" in out


def test_malformed_agent_yaml_names_file_and_line(cli: CLI, tmp_path: Path) -> None:
    done = cli("worker", "--agents", str(FIXTURES / "malformed.yaml"))
    assert done.returncode == 2
    assert "malformed.yaml:6: unknown field 'task_type'" in done.stderr
    assert "Traceback" not in done.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text("agents:\n  - agent_id: x\n    task_types: [a\n    command: cat\n")
    done = cli("worker", "--agents", str(broken))
    assert done.returncode == 2
    assert "broken.yaml:4: invalid YAML" in done.stderr


def test_resources_and_leases_show_the_pool_and_who_holds_what(cli: CLI) -> None:
    with pepper.Runtime(db=cli.db, resources={"cpu": 4, "memory": "8Gi"}) as runtime:
        pepper.core.ResourceAllocator(runtime).allocate("documentation_agent", {"cpu": 1}, duration="2h")
    out = cli.ok("resources")
    assert "Resource pool" in out and "4 cores" in out and "3 cores" in out  # capacity and free
    assert f"1 live lease; `pepper leases --db {cli.db}` lists them." in out  # the database it was given
    assert "documentation_agent" in out and "cpu 1 core" in out
    data = cli.json("resources")
    assert data["pool"]["free"]["cpu"] == 3.0
    assert data["agents"][0]["allocated"] == {"cpu": 1.0}
    leases = cli.json("leases", "--agent", "documentation_agent")
    assert len(leases) == 1 and leases[0]["kind"] == "budget" and leases[0]["expires_at"] is not None
    assert "when released" not in cli.ok("leases") and "in 1h 59m" in cli.ok("leases")
