"""``pepper errors`` and ``pepper dlq``, run as a user would, on a database where a task was parked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator

ROOT = Path(__file__).resolve().parents[2]

PARK = textwrap.dedent("""
    import sys, time
    import pepper
    from pepper.core import ErrorHandler, TaskOrchestrator

    runtime = pepper.Runtime(db=sys.argv[1], home=sys.argv[2], poll_interval="20ms")

    @pepper.agent("flaky", task_types=["build"], runtime=runtime, recovery="retry(1, delay=10ms) -> dead_letter")
    def build(task):
        raise ConnectionError("the registry is down")

    TaskOrchestrator(runtime).submit_tasks([
        {"id": "build-7", "type": "build"},
        {"id": "deploy", "type": "build", "dependencies": ["build-7"]},
    ])
    deadline = time.monotonic() + 20
    while not ErrorHandler(runtime).dead_letters() and time.monotonic() < deadline:
        time.sleep(0.02)
    runtime.close()
""")


def pepper_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pepper", *args, "--db", str(db)], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip


@pytest.fixture
def parked(tmp_path: Path) -> Path:
    db = tmp_path / "p.db"
    script = tmp_path / "park.py"
    script.write_text(PARK)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), str(db), str(tmp_path / "home")], env=env, timeout=60,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return db


def test_errors_show_each_failure_and_what_the_policy_decided(parked: Path) -> None:
    shown = pepper_cli(parked, "errors", "build-7")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "ATTEMPT", "AGENT", "ERROR", "DECIDED"]
    assert "ConnectionError: the registry is down" in lines[1] and "retry: retry 1 of 1" in lines[1]
    assert "dead letter: parked in the dead-letter queue" in lines[2]
    assert "2 errors of task build-7" in shown.stdout
    data = json.loads(pepper_cli(parked, "errors", "build-7", "--json").stdout)
    assert [(e["attempt"], e["action"], e["type"]) for e in data] == [
        (1, "retry", "ConnectionError"), (2, "dead_letter", "ConnectionError")
    ]  # fmt: skip
    latest = pepper_cli(parked, "errors", "build-7", "--limit", "1").stdout.splitlines()
    assert len([line for line in latest if "ConnectionError" in line]) == 1 and "dead letter" in latest[1]
    assert "2 errors of task build-7 (the latest 1 shown: `--limit N` shows more)" in latest[-1]
    assert "TASK" in pepper_cli(parked, "errors", "--agent", "flaky").stdout.splitlines()[0]
    assert "no task with id 'nope'" in pepper_cli(parked, "errors", "nope").stderr


def test_dlq_lists_replays_and_drops_parked_tasks(parked: Path) -> None:
    listed = pepper_cli(parked, "dlq")
    assert listed.returncode == 0 and "build-7" in listed.stdout and "1 parked task" in listed.stdout
    assert [t["task_id"] for t in json.loads(pepper_cli(parked, "dlq", "--json").stdout)] == ["build-7"]
    status = pepper_cli(parked, "status", "build-7")
    assert "parked in the dead-letter queue after 2 failed attempts" in status.stdout

    assert pepper_cli(parked, "dlq", "drop", "deploy").returncode == 1  # not parked
    replayed = pepper_cli(parked, "dlq", "replay", "build-7")
    assert replayed.returncode == 0 and "replaying build-7" in replayed.stdout
    assert "The dead-letter queue is empty" in pepper_cli(parked, "dlq").stdout
    assert json.loads(pepper_cli(parked, "status", "build-7", "--json").stdout)["parked_at"] is None
    nothing = pepper_cli(parked, "dlq", "replay", "--all")
    assert nothing.returncode == 1 and "nothing to replay" in nothing.stdout
    assert pepper_cli(parked, "dlq", "replay").returncode == 2  # neither TASK nor --all


def test_dropping_fails_the_task_and_cancels_its_dependents(parked: Path) -> None:
    dropped = pepper_cli(parked, "dlq", "drop", "build-7", "--reason", "obsolete")
    assert dropped.returncode == 0 and "dropped build-7" in dropped.stdout
    assert json.loads(pepper_cli(parked, "status", "build-7", "--json").stdout)["state"] == "failed"
    assert json.loads(pepper_cli(parked, "status", "deploy", "--json").stdout)["state"] == "cancelled"


def test_why_says_a_dependency_waits_in_the_dead_letter_queue(parked: Path) -> None:
    shown = pepper_cli(parked, "why", "deploy")
    assert shown.returncode == 0, shown.stderr
    assert "waiting for dependency 'build-7' (parked in the dead-letter queue: `pepper dlq`)" in shown.stdout


def test_a_parked_task_has_its_own_state_and_replay_checks_the_agent_first(parked: Path) -> None:
    listed = json.loads(pepper_cli(parked, "tasks", "--state", "parked", "--json").stdout)
    assert [t["task_id"] for t in listed] == ["build-7"] and listed[0]["state"] == "parked"
    assert json.loads(pepper_cli(parked, "status", "build-7", "--json").stdout)["state"] == "parked"

    # an agent no live worker has: refused, and nothing changes
    refused = pepper_cli(parked, "dlq", "replay", "build-7", "--agent", "nobody")
    assert refused.returncode == 2 and "no agent with id 'nobody'" in refused.stderr
    gone = pepper_cli(parked, "dlq", "replay", "build-7", "--agent", "flaky")  # it ran the task; its worker ended
    assert gone.returncode == 2 and "Traceback" not in gone.stderr, gone.stderr
    assert "no agent with id 'flaky' (registered: none are registered)." in gone.stderr
    assert "start a `pepper worker` with it first, or replay without an agent" in gone.stderr
    assert json.loads(pepper_cli(parked, "status", "build-7", "--json").stdout)["state"] == "parked"
    replayed = pepper_cli(parked, "dlq", "replay", "build-7")
    assert replayed.returncode == 0 and "replaying build-7" in replayed.stdout
    assert json.loads(pepper_cli(parked, "status", "build-7", "--json").stdout)["state"] == "pending"


def test_dlq_shows_the_oldest_parked_tasks_up_to_its_limit_and_counts_them_all(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    with pepper.Runtime(db=str(db), home=str(tmp_path / "home")) as runtime:

        @pepper.agent("breaker", task_types=["b"], capacity=4, runtime=runtime)
        def breaker(task: pepper.TaskRun) -> None:
            raise RuntimeError("broken on purpose")

        ids = [f"p{i}" for i in range(5)]
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([{"id": i, "type": "b", "policy": "dead_letter"} for i in ids])
        orchestrator.wait(ids, timeout=30)
        oldest = [s.task_id for s in ErrorHandler(runtime).dead_letters()][:2]
    listed = pepper_cli(db, "dlq", "--limit", "2")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:3]] == oldest
    assert "5 parked tasks (the oldest 2 shown: `--limit N` shows more)" in listed.stdout
    assert [t["task_id"] for t in json.loads(pepper_cli(db, "dlq", "--limit", "2", "--json").stdout)] == oldest
    assert "5 parked tasks." in pepper_cli(db, "dlq").stdout  # all of them within the default limit
