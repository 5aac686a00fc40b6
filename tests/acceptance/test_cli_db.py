"""``pepper db info`` and ``pepper db copy``, run as a user would, on SQLite files and a PostgreSQL server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator
from tests.acceptance.test_cli import TIMEOUT, _env
from tests.postgres_cluster import PASSWORD


def pepper_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pepper", *args], cwd=folder, env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip


def ok(folder: Path, *args: str) -> str:
    done = pepper_cli(folder, *args)
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def as_json(folder: Path, *args: str) -> Any:
    return json.loads(ok(folder, *args, "--json"))


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """A SQLite database with two completed tasks, one pending and one blocked behind it."""
    db = str(tmp_path / "pepper.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), poll_interval="20ms") as runtime:
        pepper.agent("echo", task_types=["echo"], runtime=runtime)(lambda task: task.inputs)
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("one", "echo", inputs={"n": 1})
        orchestrator.submit_task("two", "echo", dependencies=["one"])
        orchestrator.wait(["one", "two"], timeout=30)
    with pepper.Runtime(db=db, home=str(tmp_path / "home")) as offline:
        TaskOrchestrator(offline).submit_task("three", "later")
        TaskOrchestrator(offline).submit_task("four", "later", dependencies=["three"])
    return db


def test_db_info_says_which_store_its_schema_size_and_what_it_holds(tmp_path: Path, filled: str):
    text = ok(tmp_path, "db", "info", "--db", filled)
    assert "SQLite" in text and filled in text
    assert "the newest this pepper knows" in text
    assert "write-ahead log" in text
    assert "4: 1 blocked, 1 pending, 2 completed" in text

    info = as_json(tmp_path, "--db", filled, "db", "info")  # --db before the command works too
    assert info["kind"] == "SQLite" and info["location"] == filled
    assert info["schema_version"] == info["latest_schema"] > 0
    assert info["size_mb"] > 0 and info["wal_mb"] is not None
    assert info["tasks"] == {"total": 4, "blocked": 1, "pending": 1, "completed": 2}
    assert (info["runs"], info["workers_alive"], info["agents"]) == (0, 0, 0)


def test_db_info_never_creates_a_database(tmp_path: Path):
    done = pepper_cli(tmp_path, "db", "info", "--db", str(tmp_path / "typo.db"))
    assert done.returncode == 2 and "no pepper database" in done.stderr
    assert not (tmp_path / "typo.db").exists()


def test_a_copy_to_postgresql_is_described_without_its_password(tmp_path: Path, filled: str, postgres_url: str):
    # When a SQLite database is copied into PostgreSQL
    done = pepper_cli(tmp_path, "db", "copy", filled, postgres_url)
    assert done.returncode == 0, done.stderr
    # Then the summary gives rows per table, and the password shows nowhere
    assert "tasks" in done.stdout and "copied" in done.stdout and "PostgreSQL" in done.stdout
    info = as_json(tmp_path, "db", "info", "--db", postgres_url)
    described = ok(tmp_path, "db", "info", "--db", postgres_url)
    for output in (done.stdout, done.stderr, json.dumps(info), described):
        assert PASSWORD not in output
    assert info["kind"] == "PostgreSQL" and "***" in info["location"]
    assert info["tasks"] == {"total": 4, "blocked": 1, "pending": 1, "completed": 2}
    assert info["size_mb"] > 0 and info["wal_mb"] is None

    # And a second copy into it is refused (it holds tasks), unless --force
    again = pepper_cli(tmp_path, "db", "copy", filled, postgres_url)
    assert again.returncode == 2 and "already holds 4 tasks" in again.stderr and "--force" in again.stderr
    assert PASSWORD not in again.stderr
    forced = as_json(tmp_path, "db", "copy", filled, postgres_url, "--force")
    assert forced["tables"]["tasks"] == 4 and PASSWORD not in json.dumps(forced)

    # And back into a new SQLite file, the same tasks
    back = str(tmp_path / "back.db")
    copied = as_json(tmp_path, "db", "copy", postgres_url, back)
    assert copied["tables"] == forced["tables"]
    assert as_json(tmp_path, "tasks", "--db", back) == as_json(tmp_path, "tasks", "--db", filled)


def test_the_commands_on_the_copy_show_the_same_and_a_worker_finishes_its_work(
    tmp_path: Path, filled: str, postgres_url: str
):
    ok(tmp_path, "db", "copy", filled, postgres_url)
    for command in (["tasks"], ["status", "two"], ["status", "four"]):
        assert as_json(tmp_path, *command, "--db", postgres_url) == as_json(tmp_path, *command, "--db", filled)
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  - agent_id: later\n    task_types: [later]\n    command: cat\n")
    ok(tmp_path, "worker", "--agents", str(agents), "--until-idle", "--idle-grace", "0.2", "--db", postgres_url)
    states = {t["task_id"]: t["state"] for t in as_json(tmp_path, "tasks", "--db", postgres_url)}
    assert states == dict.fromkeys(["one", "two", "three", "four"], "completed")


def test_a_copy_is_refused_onto_itself_and_from_nowhere(tmp_path: Path, filled: str):
    same = pepper_cli(tmp_path, "db", "copy", filled, "./pepper.db")
    assert same.returncode == 2 and "one database" in same.stderr
    missing = pepper_cli(tmp_path, "db", "copy", str(tmp_path / "typo.db"), str(tmp_path / "new.db"))
    assert missing.returncode == 2 and "no pepper database" in missing.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "new.db").exists()


def test_a_copy_onto_a_database_with_schedules_and_tokens_is_refused_and_keeps_them(tmp_path: Path, filled: str):
    # Given a destination with no task or run, but a schedule and an admin token
    dst = str(tmp_path / "dst.db")
    (tmp_path / "flow.yaml").write_text("name: rep\nsteps:\n  - id: a\n    type: work\n")
    ok(tmp_path, "schedules", "add", "flow.yaml", "--name", "hourly-report", "--every", "1h", "--db", dst)
    ok(tmp_path, "token", "create", "--name", "ops-admin", "--scope", "admin", "--db", dst)

    # When it is copied onto without --force, then it is refused naming what it holds, and keeps it
    refused = pepper_cli(tmp_path, "db", "copy", filled, dst)
    assert refused.returncode == 2, refused.stderr
    assert "already holds 1 token and 1 schedule, which the copy would delete" in refused.stderr
    assert "--force" in refused.stderr
    assert [s["name"] for s in as_json(tmp_path, "schedules", "--db", dst)] == ["hourly-report"]
    assert "ops-admin" in ok(tmp_path, "token", "list", "--db", dst)
    assert as_json(tmp_path, "tasks", "--db", dst) == []

    # And with --force it is replaced by the source's content
    ok(tmp_path, "db", "copy", filled, dst, "--force")
    assert as_json(tmp_path, "schedules", "--db", dst) == []
    assert len(as_json(tmp_path, "tasks", "--db", dst)) == 4


def test_a_libpq_connection_string_is_refused_and_never_becomes_a_file(tmp_path: Path):
    conninfo = "host=127.0.0.1 port=5432 user=pepper password=s3cret dbname=pepper"
    for args in (["submit", "work", "--id", "d1"], ["db", "info"], ["status", "nope"]):
        done = pepper_cli(tmp_path, *args, "--db", conninfo)
        assert done.returncode == 2, done.stderr
        assert "give it as a URL instead: postgresql://pepper:***@127.0.0.1:5432/pepper" in done.stderr
        assert "s3cret" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


def test_prune_counts_read_as_words(tmp_path: Path, filled: str):
    said = ok(tmp_path, "prune", "--older-than", "0", "--db", filled)
    assert said.strip() == "removed: 2 tasks, 0 runs, 0 attempts, 0 errors, 0 logs, 0 approvals, 0 alerts"
    ok(tmp_path, "cancel", "four", "--db", filled)  # nothing depends on it; it waited for three, which stays
    said = ok(tmp_path, "prune", "--older-than", "0", "--dry-run", "--db", filled)
    assert said.strip() == "would remove: 1 task, 0 runs, 0 attempts, 0 errors, 0 logs, 0 approvals, 0 alerts"
