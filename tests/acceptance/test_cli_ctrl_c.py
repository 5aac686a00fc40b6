"""Ctrl-C on commands that wait, as a user presses it: each says what it stopped and exits with 130 (as
``pepper --help`` says), never click's bare "Aborted!"."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.acceptance.test_cli_workflows import CLI, TIMEOUT, _until
from tests.acceptance.test_cli_workflows import cli as cli

WORKER_AGENTS = "- agent_id: worker\n  task_types: [build]\n  function: holder:hold\n"

HOLDER = """\
import time
from pathlib import Path


def hold(task):
    deadline = time.monotonic() + 60
    while (Path(__file__).parent / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "done"
"""


def _interrupted(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()


def test_ctrl_c_stops_following_a_log_with_130(cli: CLI) -> None:
    cli.expect(0, "submit", "nobody", "--id", "t1")
    following = cli.popen("logs", "t1", "--follow")
    assert following.stderr is not None
    assert "t1 has not started yet; waiting for it (Ctrl-C stops waiting)" in following.stderr.readline()

    out, err = _interrupted(following)

    assert following.returncode == 130, out + err
    assert "stopped following; t1 goes on" in err and "Aborted" not in out + err and "Traceback" not in err
    assert cli.json("status", "t1")["state"] == "pending"


def test_ctrl_c_on_submit_wait_says_the_task_is_running(cli: CLI) -> None:
    (cli.folder / "agents.yaml").write_text(WORKER_AGENTS)
    (cli.folder / "holder.py").write_text(HOLDER)
    (cli.folder / "hold").touch()
    worker = cli.popen("worker", "--agents", "agents.yaml")
    waiting = cli.popen("submit", "build", "--id", "L1", "--wait")
    try:
        assert waiting.stderr is not None
        assert "submitted L1; waiting for it to finish" in waiting.stderr.readline()
        _until(lambda: cli.json("status", "L1")["state"] == "in_progress", "L1 runs")

        out, err = _interrupted(waiting)
    finally:
        (cli.folder / "hold").unlink()
        _interrupted(worker)
        waiting.kill()

    assert waiting.returncode == 130, out + err
    assert "stopped waiting; L1 is running" in err and "still queued" not in err
    assert json.loads(cli.expect(0, "status", "L1", "--json").stdout)["state"] == "completed"


def test_ctrl_c_in_a_command_that_does_not_wait_exits_130_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pressed while `pepper tasks` draws its table (the interrupt raised where Python raises it for a Ctrl-C)."""
    import pepper.cli.tasks as tasks_command
    from pepper.cli.main import cli as pepper_cli

    def pressed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks_command, "tasks_table", pressed)
    db = str(tmp_path / "pepper.db")
    assert CliRunner().invoke(pepper_cli, ["submit", "build", "--id", "t1", "--db", db]).exit_code == 0
    done = CliRunner().invoke(pepper_cli, ["tasks", "--db", db])
    assert done.exit_code == 130, done.output
    assert "Aborted" not in done.output and "Traceback" not in done.output
