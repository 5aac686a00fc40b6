"""The CLI with ``--server``: ``pepper serve`` in one process, the commands in others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.conftest import PATIENCE
from tests.http.test_serve import Serving

AGENTS = """\
- agent_id: shouter
  task_types: [shout]
  function: loud:shout
- agent_id: doubler
  task_types: [double]
  function: loud:double
"""
LOUD = "def shout(task):\n    return str(task.inputs.get('word', 'hi')).upper()\n\n" \
       "def double(task):\n    return 2 * len(str(task.inputs))\n"  # fmt: skip
WORKFLOW = """\
name: remote-pipeline
steps:
  - id: loud
    type: shout
    inputs: {word: hello}
  - id: twice
    type: double
    needs: loud
"""
INLINE = """\
name: inline
agents:
  - agent_id: sh
    task_types: [x]
    command: "echo hi"
steps:
  - id: a
    type: x
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    folder = tmp_path_factory.mktemp("serve")
    (folder / "agents.yaml").write_text(AGENTS)
    (folder / "loud.py").write_text(LOUD)
    serving = Serving("--db", "p.db", "--port", "0", "--agents", "agents.yaml", cwd=folder)
    try:
        url = serving.expect(r"serving (http://127\.0\.0\.1:\d+)/api/v1").group(1)
        token = serving.expect(r"^(pepper_\S+)$").group(1)
        yield url, token, folder
    finally:
        if serving.process.poll() is None:
            serving.stop()


def pepper_remote(url: str, token: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PEPPER_SERVER": url, "PEPPER_TOKEN": token, "COLUMNS": "200"}
    env.pop("PEPPER_DB", None)
    return subprocess.run([sys.executable, "-m", "pepper", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=PATIENCE * 4)  # fmt: skip


def test_pepper_run_with_a_server_runs_there_and_shows_live_progress(server: tuple[str, str, Path],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    url, token, _ = server
    (tmp_path / "flow.yaml").write_text(WORKFLOW)
    done = pepper_remote(url, "", tmp_path, "run", "--server", url, "flow.yaml")
    assert done.returncode == 2 and "token" in done.stderr  # no token: refused (401), said plainly
    done = pepper_remote(url, token, tmp_path, "run", "--server", url, "flow.yaml")
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "started" in output
    assert "loud" in output and "twice" in output and "completed" in output
    assert not (tmp_path / ".pepper").exists()  # no database here: everything happened on the server
    listed = pepper_remote(url, token, tmp_path, "runs", "--json")
    runs = json.loads(listed.stdout)
    assert [r["workflow"] for r in runs][:1] == ["remote-pipeline"]
    shown = pepper_remote(url, token, tmp_path, "show", runs[0]["run_id"])
    assert shown.returncode == 0, shown.stderr
    assert "loud" in shown.stdout and "twice" in shown.stdout and "completed" in shown.stdout
    shown = pepper_remote(url, token, tmp_path, "show", runs[0]["run_id"], "--json")
    assert json.loads(shown.stdout)["status"] == "completed"


def test_the_task_commands_speak_to_the_server(server: tuple[str, str, Path], tmp_path: Path) -> None:
    url, token, _ = server
    submitted = pepper_remote(url, token, tmp_path, "submit", "shout", "--id", "cli-1", "--input", "word=hey",
                              "--wait", "--json")  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["result"] == "HEY"
    status = pepper_remote(url, token, tmp_path, "status", "cli-1", "--json")
    assert json.loads(status.stdout)["state"] == "completed"
    tasks = pepper_remote(url, token, tmp_path, "tasks", "--json")
    assert "cli-1" in [t["task_id"] for t in json.loads(tasks.stdout)]
    missing = pepper_remote(url, token, tmp_path, "status", "no-such-task")
    assert missing.returncode == 2 and "no-such-task" in missing.stderr
    health = pepper_remote(url, token, tmp_path, "health", "--json")
    assert json.loads(health.stdout)["status"] in ("healthy", "degraded")
    assert pepper_remote(url, token, tmp_path, "dlq", "--json").stdout.strip() == "[]"
    why = pepper_remote(url, token, tmp_path, "why", "cli-1")
    assert why.returncode == 0 and "cli-1" in why.stdout


def test_a_workflow_defining_agents_and_server_with_db_are_refused(server: tuple[str, str, Path],
                                                                   tmp_path: Path) -> None:  # fmt: skip
    url, token, _ = server
    (tmp_path / "inline.yaml").write_text(INLINE)
    inline = pepper_remote(url, token, tmp_path, "run", "inline.yaml")
    assert inline.returncode == 2 and "defines agents" in inline.stderr and "pepper worker" in inline.stderr
    both = pepper_remote(url, token, tmp_path, "tasks", "--db", "x.db")
    assert both.returncode == 2 and "--server or --db" in both.stderr


def test_commands_suggested_after_a_remote_run_name_the_server_they_were_given(server: tuple[str, str, Path],
                                                                             tmp_path: Path) -> None:  # fmt: skip
    url, token, _ = server
    (tmp_path / "flow.yaml").write_text(WORKFLOW)
    env = {k: v for k, v in os.environ.items() if k not in ("PEPPER_SERVER", "PEPPER_DB")}
    env.update(PEPPER_TOKEN=token, COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "pepper", "run", "flow.yaml", "--server", url], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=PATIENCE * 4)  # fmt: skip
    assert done.returncode == 0, done.stderr
    hint = next(line for line in done.stdout.splitlines() if "shows this run again" in line)
    command = hint.split("`")[1].split()
    assert command[:2] == ["pepper", "show"] and command[3:] == ["--server", url], hint
    again = subprocess.run([sys.executable, "-m", "pepper", *command[1:]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=PATIENCE * 4)  # fmt: skip
    assert again.returncode == 0 and "twice" in again.stdout, again.stderr  # the hint works as printed
    assert not (tmp_path / ".pepper").exists()
    from_env = pepper_remote(url, token, tmp_path, "run", "flow.yaml")  # $PEPPER_SERVER applies again by itself
    assert from_env.returncode == 0, from_env.stderr
    assert "--server" not in from_env.stdout and "shows this run again" in from_env.stdout


def _typed(url: str, token: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pepper ARGS --server URL``: the server typed on the command line, the token only in $PEPPER_TOKEN."""
    env = {k: v for k, v in os.environ.items() if k not in ("PEPPER_SERVER", "PEPPER_DB")}
    env.update(PEPPER_TOKEN=token, COLUMNS="300")
    return subprocess.run([sys.executable, "-m", "pepper", *args, "--server", url], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=PATIENCE * 4)  # fmt: skip


def _suggested(output: str, start: str) -> list[str]:
    """The words of the first suggested command (between backquotes) that starts with ``start``."""
    for part in output.split("`")[1::2]:
        if part.startswith(start):
            return part.split()
    raise AssertionError(f"no `{start}...` suggested in:\n{output}")


def test_every_command_suggested_to_a_user_of_a_server_names_it_and_works_as_printed(
    server: tuple[str, str, Path], tmp_path: Path
) -> None:
    url, token, _ = server
    done = _typed(url, token, tmp_path, "submit", "shout", "--id", "hinted-1", "--wait")
    assert done.returncode == 0, done.stderr
    why = _typed(url, token, tmp_path, "why", "hinted-1")
    assert why.returncode == 0, why.stderr
    rate = _suggested(why.stdout, "pepper feedback")
    assert rate[-2:] == ["--server", url], rate
    status = _suggested(why.stdout, "pepper status")
    assert status[-2:] == ["--server", url], status
    env = {k: v for k, v in os.environ.items() if k not in ("PEPPER_SERVER", "PEPPER_DB")}
    env.update(PEPPER_TOKEN=token)
    rated = subprocess.run([sys.executable, "-m", "pepper", *[("4" if w == "1-5" else w) for w in rate[1:]]],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=PATIENCE * 4)  # fmt: skip
    assert rated.returncode == 0 and "rated hinted-1" in rated.stdout, rated.stderr  # the hint works as printed
    # the commands the hints name take --server: the dead-letter queue's and the error history
    assert _typed(url, token, tmp_path, "errors", "hinted-1").returncode == 0
    replay = _typed(url, token, tmp_path, "dlq", "replay", "hinted-1")
    assert replay.returncode == 1 and "neither parked nor failed" in replay.stdout, replay.stderr
    drop = _typed(url, token, tmp_path, "dlq", "drop", "hinted-1")
    assert drop.returncode == 1 and "not parked" in drop.stdout, drop.stderr
    listing = _typed(url, token, tmp_path, "feedback", "hinted-1")  # what a server cannot answer is said plainly
    assert listing.returncode == 2 and "--rating N" in listing.stderr and "server's machine" in listing.stderr
    every = _typed(url, token, tmp_path, "errors")
    assert every.returncode == 2 and "give a TASK" in every.stderr
    for shown in (why, rated, replay, drop):
        assert token not in shown.stdout + shown.stderr  # a token is never part of a hint
    assert not (tmp_path / ".pepper").exists()  # nothing went to a local database
