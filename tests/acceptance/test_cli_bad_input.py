"""Bad input on the command line: one `error:` line and exit 2 at once, never a traceback, a silent
wait, or a database made where no worker will look."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pepper
from pepper.model.settings import Settings
from pepper.store.location import open_store
from tests.support import damage_tasks_table

TIMEOUT = 60


def pepper_cli(folder: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    """``python -m pepper ARGS`` in ``folder``; bytes arguments reach it as the OS gives them (not UTF-8)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPER_")}
    env["PYTHONUTF8"] = "1"
    argv: list[str | bytes] = [sys.executable, "-m", "pepper", *args]
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def refused(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The one line of the refusal, after checking the exit code and that there is no traceback."""
    assert done.returncode == 2, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: "), done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr
    return done.stderr


@pytest.fixture
def agents_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - agent_id: echo\n    task_types: [echo]\n    command: cat\n")
    return path


def test_a_damaged_database_is_named_with_what_to_do_and_exit_2(tmp_path: Path, agents_yaml: Path) -> None:
    db = tmp_path / "damaged.db"
    with pepper.Runtime(db=str(db), home=str(tmp_path / "home")) as runtime:
        pepper.TaskOrchestrator(runtime).submit_tasks(
            [{"id": f"t{i}", "type": "echo", "inputs": {"pad": "x" * 500}} for i in range(200)]
        )
    assert db.stat().st_size > 32768 and not Path(f"{db}-wal").exists()
    damage_tasks_table(db)
    for command in (("tasks",), ("submit", "echo"), ("status", "t1"),
                    ("worker", "--agents", str(agents_yaml), "--until-idle")):  # fmt: skip
        line = refused(pepper_cli(tmp_path, *command, "--db", str(db)), f"database {str(db)!r} is damaged", ".recover")
        assert line.count("\n") == 1, line


def test_a_database_in_a_missing_folder_is_refused_and_nothing_is_made(tmp_path: Path, agents_yaml: Path) -> None:
    db = str(tmp_path / "no" / "such" / "x.db")
    refused(pepper_cli(tmp_path, "submit", "echo", "--db", db), "does not exist", "mkdir -p")
    refused(pepper_cli(tmp_path, "worker", "--agents", str(agents_yaml), "--until-idle", "--db", db), "does not exist")
    assert not (tmp_path / "no").exists()
    ok = pepper_cli(tmp_path, "submit", "echo", "--id", "t1")  # the default database: pepper makes its own folder
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / ".pepper" / "pepper.db").is_file()


def test_an_empty_file_given_to_a_command_that_only_reads_is_refused_and_left_empty(tmp_path: Path) -> None:
    empty = tmp_path / "notes.txt"
    empty.touch()
    for command in (("tasks",), ("status", "t1"), ("dlq",), ("runs",)):
        refused(pepper_cli(tmp_path, *command, "--db", str(empty)), f"no pepper database at {str(empty)!r}", "empty")
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_values_sqlite_cannot_store_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    db = str(tmp_path / "pepper.db")
    assert pepper_cli(tmp_path, "submit", "echo", "--id", "good", "--db", db).returncode == 0
    refused(pepper_cli(tmp_path, "submit", "echo", "--id", "t1", "--input", b"path=report-\xff.txt", "--db", db),
            "inputs['path'] is not valid Unicode")  # fmt: skip
    refused(pepper_cli(tmp_path, "submit", "echo", "--inputs", '{"path": "report-\\udcff.txt"}', "--db", db),
            "not valid Unicode")  # fmt: skip
    refused(pepper_cli(tmp_path, "submit", "echo", "--id", b"t-\xff", "--db", db), "task_id")
    refused(pepper_cli(tmp_path, "submit", "echo", "--retries", str(10**30), "--db", db), "max_retries")
    refused(pepper_cli(tmp_path, "submit", "echo", "--priority", str(10**30), "--db", db), "priority")
    refused(pepper_cli(tmp_path, "submit", "echo", "--timeout", str(10**30), "--db", db), "timeout")
    listed = pepper_cli(tmp_path, "tasks", "--json", "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert [task["task_id"] for task in json.loads(listed.stdout)] == ["good"]


def test_an_agents_file_with_a_key_written_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("agents:\n  - agent_id: echo\n    task_types: [echo]\n    command: cat\n    task_types: [x]\n")
    refused(pepper_cli(tmp_path, "worker", "--agents", str(path), "--until-idle", "--db", str(tmp_path / "p.db")),
            "dup.yaml:5: 'task_types' is written twice")  # fmt: skip


def test_run_refuses_a_step_needing_a_skill_no_agent_has(tmp_path: Path) -> None:
    workflow = tmp_path / "print.yaml"
    workflow.write_text(textwrap.dedent("""\
        name: print
        agents:
          - agent_id: writer
            task_types: [docs]
            skills: [markdown]
            command: cat
        steps:
          - id: render
            type: docs
            skills: [latex]
        """))  # fmt: skip
    done = pepper_cli(tmp_path, "run", str(workflow), "--db", str(tmp_path / "p.db"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{workflow}:10: step 'render' needs skills latex" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [("postgres://pepper:s3cret@[::1:5432/pepper", 'matching "]"'),
     ("postgresql://pepper:s3cret@db.internal/pepper?colour=blue", 'invalid URI query parameter: "colour"')],
)  # fmt: skip
def test_a_postgresql_url_the_driver_cannot_read_is_refused_without_its_password(
    tmp_path: Path, url: str, said: str
) -> None:
    pytest.importorskip("psycopg")
    for command in (("tasks", "--db", url), ("db", "copy", str(tmp_path / "p.db"), url)):
        line = refused(pepper_cli(tmp_path, *command), "cannot read the PostgreSQL URL", said, "pepper:***@")
        assert "s3cret" not in line and line.count("\n") == 1, line
    with pytest.raises(pepper.errors.ConfigError, match="cannot read the PostgreSQL URL") as caught:
        pepper.Runtime(db=url, home=str(tmp_path / "home"))
    assert "s3cret" not in str(caught.value)
    assert not (tmp_path / "home").exists()
    with pytest.raises(pepper.errors.ConfigError, match="cannot read the PostgreSQL URL") as caught:
        open_store(url)  # opened directly, without settings to check it first
    assert "s3cret" not in str(caught.value) and "pepper:***@" in str(caught.value)


def test_settings_shown_leave_the_database_url_and_its_password_out() -> None:
    settings = Settings.build({"db": "postgresql://pepper:s3cret@db.internal/pepper"})
    assert "s3cret" not in repr(settings) and "db.internal" not in repr(settings)
    assert settings.db == "postgresql://pepper:s3cret@db.internal/pepper"


def test_an_empty_server_typed_on_the_command_line_is_refused_but_an_empty_variable_means_none(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    assert pepper_cli(tmp_path, "submit", "echo", "--id", "t1", "--db", db).returncode == 0
    typed = pepper_cli(tmp_path, "tasks", "--server", "")
    assert typed.returncode == 2 and "Traceback" not in typed.stderr
    assert "Invalid value for '--server': give the server's URL, e.g. http://127.0.0.1:8080" in typed.stderr
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PEPPER_")}, "PEPPER_SERVER": ""}
    unset = subprocess.run([sys.executable, "-m", "pepper", "tasks", "--json", "--db", db], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert unset.returncode == 0 and [t["task_id"] for t in json.loads(unset.stdout)] == ["t1"]


def test_a_worker_whose_agent_asks_more_than_the_pool_says_nothing_of_running(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text(
        "- agent_id: greedy\n  task_types: [t]\n  command: cat\n  resources: {cpu: 100000}\n"
    )
    done = pepper_cli(tmp_path, "worker", "--agents", "agents.yaml", "--until-idle", "--db", "pepper.db")
    refused(done, "agent 'greedy' asks for a budget the whole pool cannot give", "cpu short by")
    assert done.stdout == ""  # no "worker ... on", no agents, no "waiting for tasks" before the refusal


@pytest.mark.parametrize(
    ("command", "limit", "shown"),
    [("tasks", "0", "0"), ("runs", "-3", "-3"), ("errors", "1000001", "1000001"), ("alerts", "many", "'many'")],
)
def test_every_limit_option_is_refused_with_the_words_of_the_api(tmp_path: Path, command: str, limit: str,
                                                                 shown: str) -> None:  # fmt: skip
    done = pepper_cli(tmp_path, command, "--limit", limit, "--db", "pepper.db")
    assert refused(done) == f"error: limit must be a whole number from 1 to 1000000, got {shown}\n"
    assert not (tmp_path / "pepper.db").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("command", "value"),
    [
        (("submit", "echo", "--wait-timeout"), "nan"),
        (("submit", "echo", "--wait", "--wait-timeout"), "inf"),
        (("cancel", "t1", "--wait-timeout"), "-1"),
        (("worker", "--until-idle", "--idle-grace"), "1e309"),
        (("worker", "--until-idle", "--idle-grace"), "soon"),
    ],
)
def test_every_seconds_option_refuses_what_is_not_a_finite_number_before_anything_is_done(
    tmp_path: Path, command: tuple[str, ...], value: str
) -> None:
    done = pepper_cli(tmp_path, *command, value, "--db", "pepper.db")
    assert refused(done) == f"error: {command[-1]} must be a number of seconds, 0 or more, got {value!r}\n"
    assert not (tmp_path / "pepper.db").exists()  # refused before anything was opened, let alone stored


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (("tasks",), "--state"),
        (("health",), "--component"),
        (("worker",), "--agents"),
        (("errors",), "--agent"),
        (("submit", "echo"), "--agent"),
    ],
)
def test_an_option_given_empty_is_refused_not_taken_for_everything(
    tmp_path: Path, command: tuple[str, ...], option: str
) -> None:
    done = pepper_cli(tmp_path, *command, option, "", "--db", "pepper.db")
    assert refused(done, f"error: {option} was given empty")
    assert not (tmp_path / "pepper.db").exists()  # refused before anything was opened
