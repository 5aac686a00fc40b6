"""An agent whose start-up fails, run as a user would: ``pepper run`` and ``pepper resume`` refuse a run that would
then wait forever for it (one line, exit 2, no traceback); ``pepper worker`` stops and says so."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.acceptance.test_cli_workflows import CLI, TIMEOUT, _holding, _until
from tests.acceptance.test_cli_workflows import cli as cli

BROKEN_MODULE = """\
import pepper


class Broken(pepper.BaseAgent):
    async def initialize(self):
        raise RuntimeError("cannot connect to model server")

    async def execute(self, task):
        with open("ran.log", "a") as log:
            log.write(task.step_id + "\\n")
        return 1
"""

BROKEN_AGENTS = """\
- agent_id: broken
  task_types: [build, test]
  class: broken_agents:Broken
"""


@pytest.fixture
def broken(cli: CLI) -> CLI:
    (cli.folder / "broken_agents.py").write_text(BROKEN_MODULE)
    (cli.folder / "broken.yaml").write_text(BROKEN_AGENTS)
    steps = "steps:\n  - id: build\n    type: build\n  - id: test\n    type: test\n    needs: build\n"
    (cli.folder / "only.yaml").write_text(f"name: only\nagents: broken.yaml\n{steps}")
    both = "agents:\n  - agent_id: fine\n    task_types: [build, test]\n    function: wf_agents:work\n"
    both += "".join(f"  {line}\n" for line in BROKEN_AGENTS.splitlines())
    (cli.folder / "both.yaml").write_text(f"name: both\n{both}{steps}")
    return cli


def _one_error_line(stderr: str) -> str:
    """The one line about the agent (a resume may also tell of the killed process it takes over from)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "has exited; its running tasks" not in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_run_whose_only_agent_cannot_start_is_refused_and_never_started(broken: CLI) -> None:
    done = broken.expect(2, "run", "only.yaml")
    line = _one_error_line(done.stderr)
    assert "agent 'broken' could not start (RuntimeError: cannot connect to model server)" in line
    assert "no other agent takes steps 'build', 'test'" in line and "the run was not started" in line
    assert broken.runs() == [] and broken.ran() == []


def test_a_run_goes_on_with_the_other_agents_when_one_cannot_start(broken: CLI) -> None:
    done = broken.expect(0, "run", "both.yaml", "-q")
    line = _one_error_line(done.stderr)
    assert "agent 'broken' could not start" in line and "left out, the run goes on with the other agents" in line
    assert broken.ran() == ["build", "test"]


def test_resume_with_an_agent_that_cannot_start_is_refused(broken: CLI) -> None:
    (broken.folder / "hold").touch()
    killed = broken.popen("run", "held.yaml")
    try:
        run_id = _until(lambda: _holding(broken), "step 'second' runs")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=TIMEOUT)
        (broken.folder / "hold").unlink()

    done = broken.expect(2, "resume", run_id, "--agents", "broken.yaml")
    line = _one_error_line(done.stderr)
    assert "agent 'broken' could not start" in line and "the run was not resumed" in line
    assert broken.json("show", run_id)["status"] == "running"  # left as it was: a resume with good agents ends it
    assert broken.ran() == ["first", "second"]


def test_a_worker_whose_agent_cannot_start_stops_and_says_it_stopped(broken: CLI) -> None:
    done = broken.expect(2, "worker", "--agents", "broken.yaml", "--until-idle")
    line = _one_error_line(done.stderr)
    assert "agent 'broken' could not start (RuntimeError: cannot connect to model server)" in line
    assert "the worker stopped" in line and "the other agents run" not in line
    assert not Path(broken.folder / "ran.log").exists()
