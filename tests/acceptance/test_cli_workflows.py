"""``pepper run``, ``runs``, ``show``, ``cancel-run`` and ``resume``, run as a user would: the real command in a
subprocess (in a pseudo-terminal where the live display matters), on small workflow files whose agents are
Python functions in a module beside them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 60

AGENTS_MODULE = '''\
"""Agents of the workflow acceptance tests: each call is logged in ran.log."""

import time
from pathlib import Path

HERE = Path(__file__).parent


def work(task):
    with open(HERE / "ran.log", "a") as log:
        log.write(task.step_id + "\\n")
    if task.inputs.get("fail"):
        raise ValueError(f"{task.step_id} broke: {task.inputs['fail']}\\nsecond line of the message")
    if task.inputs.get("hold"):  # wait while the file `hold` exists (the tests remove it)
        deadline = time.monotonic() + 60
        while (HERE / "hold").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    result = {"step": task.step_id, "x": task.inputs.get("x"), "after": sorted(task.dependency_results)}
    if "target" in task.inputs:
        result["target"] = task.inputs["target"]
    return result
'''

AGENTS = """\
agents:
  - agent_id: worker
    task_types: [build, test]
    capacity: 4
    function: wf_agents:work
  - agent_id: reviewer
    task_types: [review]
    function: wf_agents:work
"""

DIAMOND = (
    AGENTS
    + """\
name: diamond
inputs: {x: 1}
steps:
  - id: fetch
    type: build
  - id: compile
    type: build
    needs: fetch
    inputs: {target: "release-${{ inputs.x }}"}
  - id: lint
    type: review
    needs: fetch
  - id: package
    type: build
    needs: [compile, lint]
"""
)

FAILING = (
    AGENTS
    + """\
name: failing
steps:
  - id: fetch
    type: build
  - id: compile
    type: build
    needs: fetch
    inputs: {fail: no compiler}
  - id: docs
    type: review
    needs: fetch
  - id: package
    type: build
    needs: [compile, docs]
  - id: publish
    type: build
    needs: package
"""
)

#: A run that waits at ``second`` while the file ``hold`` exists.
HELD = (
    AGENTS
    + """\
name: held
steps:
  - id: first
    type: build
  - id: second
    type: build
    needs: first
    inputs: {hold: true}
  - id: third
    type: test
    needs: second
"""
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPPER_") and k != "COLUMNS"}
    env["PYTHONUTF8"] = "1"
    env.update(extra)
    return env


class CLI:
    """Runs ``python -m pepper COMMAND --db <tmp db> ...`` in a temporary folder holding the workflow files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = str(folder / "pepper.db")

    def argv(self, command: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "pepper", command, "--db", self.db, *args]

    def __call__(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, *args), cwd=self.folder, env=_env(), capture_output=True, text=True, timeout=TIMEOUT
        )

    def expect(self, code: int, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = self(command, *args)
        assert done.returncode == code, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done

    def json(self, command: str, *args: str, code: int = 0) -> Any:
        return json.loads(self.expect(code, command, *args, "--json").stdout)

    def popen(self, command: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args), cwd=self.folder, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def runs(self) -> list[dict[str, Any]]:
        return self.json("runs") if Path(self.db).exists() else []

    def ran(self) -> list[str]:
        log = self.folder / "ran.log"
        return log.read_text().split() if log.exists() else []


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    (tmp_path / "wf_agents.py").write_text(AGENTS_MODULE)
    for name, text in (("diamond", DIAMOND), ("failing", FAILING), ("held", HELD)):
        (tmp_path / f"{name}.yaml").write_text(text)
    return CLI(tmp_path)


def _until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def _holding(cli: CLI) -> str | None:
    """The id of the newest run once its step `second` is running, else None."""
    runs = cli.runs()
    if not runs:
        return None
    steps = {s["step_id"]: s["status"] for s in cli.json("show", runs[0]["run_id"])["steps"]}
    return runs[0]["run_id"] if steps["second"] == "in_progress" else None


# --- pepper run ----------------------------------------------------------------------------------


def test_a_diamond_workflow_completes_with_a_summary_a_gantt_chart_and_a_graph(cli: CLI) -> None:
    done = cli.expect(0, "run", "diamond.yaml", "--gantt", "out/run.png", "--dot", "run.dot")

    out = done.stdout
    verdict = re.search(r"run (diamond-\w+) completed in <?[\d.]+s: 4 steps, 4 completed\n", out)
    assert verdict, out
    run_id = verdict.group(1)
    table = out[out.index("STEP ") : verdict.start()].splitlines()
    assert table[0].split() == ["STEP", "STATUS", "AGENT", "TRIES", "TIME", "PLANNED", "OUTCOME"]
    rows = {line.split()[0]: line for line in table[1:] if line.strip()}
    assert list(rows) == ["fetch", "compile", "lint", "package"]
    assert [rows[s].split()[1:4] for s in rows] == [
        ["completed", "worker", "1"], ["completed", "worker", "1"], ["completed", "reviewer", "1"],
        ["completed", "worker", "1"],
    ]  # fmt: skip
    assert rows["package"].rstrip().endswith('{"step": "package", "x": 1, "after": ["compile", "lint"]}')
    assert f"pepper show {run_id} --db {cli.db}" in out  # the hint, with the database to repeat
    assert "out/run.png" in out and "run.dot" in out
    assert sorted(cli.ran()) == ["compile", "fetch", "lint", "package"]

    from matplotlib.image import imread

    height, width, _ = imread(cli.folder / "out" / "run.png").shape
    assert width > 600 and height > 150
    dot = (cli.folder / "run.dot").read_text()
    assert dot.startswith('digraph "diamond" {') and '"compile" -> "package";' in dot and "[completed]" in dot

    data = cli.json("run", "diamond.yaml")
    assert data["status"] == "completed" and data["workflow"] == "diamond" and data["run_id"] != run_id
    steps = {s["step_id"]: s for s in data["steps"]}
    assert {s: (v["status"], v["agent_id"]) for s, v in steps.items()} == {
        "fetch": ("completed", "worker"), "compile": ("completed", "worker"), "lint": ("completed", "reviewer"),
        "package": ("completed", "worker"),
    }  # fmt: skip
    assert steps["package"]["result"] == {"step": "package", "x": 1, "after": ["compile", "lint"]}

    graph = cli.expect(0, "run", "diamond.yaml", "--dot", "-")
    assert graph.stdout.startswith('digraph "diamond" {') and graph.stdout.rstrip().endswith("}")
    assert "STEP" not in graph.stdout and "run diamond-" not in graph.stdout  # only the graph on stdout


def test_a_failing_step_fails_the_run_and_cancels_what_depends_on_it(cli: CLI) -> None:
    done = cli.expect(1, "run", "failing.yaml")

    out = done.stdout
    assert re.search(r"run failing-\w+ failed after <?[\d.]+s: 5 steps, 2 completed, 1 failed, 2 cancelled\n", out), out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in (["compile"], ["package"])}
    assert "failed" in rows["compile"] and "ValueError: compile broke: no compiler" in rows["compile"]
    assert "second line of the message" not in out  # the first line of the error only
    assert "cancelled" in rows["package"] and "dependency 'compile' failed" in rows["package"]
    assert re.search(r"✗ compile failed on worker after <?[\d.]+s: ValueError: compile broke", out)  # as it failed
    assert "--traceback" in out

    data = cli.json("run", "failing.yaml", code=1)
    status = {s["step_id"]: s["status"] for s in data["steps"]}
    assert status == {"fetch": "completed", "compile": "failed", "docs": "completed", "package": "cancelled",
                      "publish": "cancelled"}  # fmt: skip
    assert data["status"] == "failed"

    quiet = cli.expect(1, "run", "failing.yaml", "--quiet")
    assert "STEP" not in quiet.stdout and "compile: ValueError: compile broke: no compiler" in quiet.stdout


def test_input_overrides_reach_the_steps(cli: CLI) -> None:
    default = {s["step_id"]: s["result"] for s in cli.json("run", "diamond.yaml")["steps"]}
    assert default["compile"]["target"] == "release-1" and default["lint"]["x"] == 1  # the file's inputs

    given = cli.json("run", "diamond.yaml", "--input", "x=42")
    assert given["inputs"] == {"x": 42}
    results = {s["step_id"]: s["result"] for s in given["steps"]}
    assert results["compile"]["target"] == "release-42" and results["lint"]["x"] == 42


#: A workflow file that must be refused: its text, a piece of the line the error points at, and the error.
BAD_FILES = {
    "syntax": ("name: broken\nsteps:\n  - id: a\n    type: build\n    needs: [b\n", None, "invalid YAML"),
    "unknown-needs": (AGENTS + "name: n\nsteps:\n  - id: a\n    type: build\n    needs: nope\n", "needs: nope",
                      "depends on 'nope', which is not a step"),
    "cycle": (AGENTS + "name: c\nsteps:\n  - id: a\n    type: build\n    needs: b\n  - id: b\n    type: build\n"
              "    needs: a\n", "needs: b", "dependency cycle: a -> b -> a"),
    "unknown-agent": (AGENTS + "name: u\nsteps:\n  - id: a\n    type: build\n    agent: builder\n", "agent: builder",
                      "step 'a' is pinned to agent 'builder', which is not among the agents"),
    "no-agent-for-type": (AGENTS + "name: t\nsteps:\n  - id: a\n    type: build\n  - id: ship\n    type: deploy\n",
                          "type: deploy", "step 'ship' has type 'deploy', which none of the agents takes"),
    "missing-input": (AGENTS + "name: m\nsteps:\n  - id: a\n    type: build\n    inputs: {dir: '${{ inputs.site }}'}\n",
                      "inputs: {dir", "step 'a': 'inputs.site': inputs has no key 'site' (keys: none); give the run "
                      "that input with --input KEY=VALUE"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_workflow_file_is_refused_with_its_line_and_starts_no_run(cli: CLI, case: str) -> None:
    text, fragment, message = BAD_FILES[case]
    (cli.folder / f"{case}.yaml").write_text(text)
    lines = text.splitlines()
    line = len(lines) + 1 if fragment is None else next(n for n, s in enumerate(lines, 1) if fragment in s)

    stderr = cli.expect(2, "run", f"{case}.yaml").stderr

    assert stderr.startswith(f"error: {case}.yaml:{line}: "), stderr
    assert message in stderr
    if case in ("unknown-agent", "no-agent-for-type"):
        assert "worker (build, test), reviewer (review)" in stderr and "no `pepper worker` is online" in stderr
    assert cli.runs() == [] and cli.ran() == []


def test_runs_and_show_list_and_explain_past_runs(cli: CLI) -> None:
    ok = cli.json("run", "diamond.yaml")["run_id"]
    bad = cli.json("run", "failing.yaml", code=1)["run_id"]

    listing = cli.expect(0, "runs").stdout
    lines = listing.splitlines()
    assert lines[0].split() == ["RUN", "WORKFLOW", "STATUS", "ENDED", "STARTED", "DURATION"]
    assert lines[1].split()[:4] == [bad, "failing", "failed", "5/5"]  # newest first
    assert lines[2].split()[:4] == [ok, "diamond", "completed", "4/4"]
    runs = cli.json("runs")
    assert [(r["run_id"], r["status"], r["steps"], r["steps_ended"]) for r in runs] == [
        (bad, "failed", 5, 5), (ok, "completed", 4, 4)
    ]  # fmt: skip
    assert [r["run_id"] for r in cli.json("runs", "--state", "completed")] == [ok]

    shown = cli.expect(0, "show", ok).stdout
    assert shown.startswith(f"Run {ok}  completed\n")
    assert re.search(r"\n  workflow +diamond\n", shown) and str(cli.folder / "diamond.yaml") in shown
    assert re.search(r"\n  steps +4: 4 completed", shown)
    assert "no step's duration was known, 1s each assumed" in shown  # its first run: a guess, and said so
    assert re.search(r"\nlint +completed +reviewer +1 ", shown)
    failed = cli.expect(1, "show", bad).stdout  # like `pepper status`: 1 for a failed run
    assert re.search(r"reason +step 'compile' failed", failed)
    assert f"pepper status {bad}/compile --traceback" in failed

    data = cli.json("show", ok)
    assert data["run_id"] == ok and data["status"] == "completed" and data["source"].endswith("diamond.yaml")
    assert [s["status"] for s in data["steps"]] == ["completed"] * 4

    assert "no workflow run with id 'nope'" in cli.expect(2, "show", "nope").stderr


def test_reading_commands_never_create_a_database(cli: CLI) -> None:
    assert "no pepper database at" in cli.expect(2, "runs").stderr
    assert "no pepper database at" in cli.expect(2, "show", "x").stderr
    assert not Path(cli.db).exists()


# --- cancelling, interrupting, resuming --------------------------------------------------------------


def test_cancel_run_stops_a_run_driven_by_another_process(cli: CLI) -> None:
    (cli.folder / "hold").touch()
    running = cli.popen("run", "held.yaml")
    try:
        run_id = _until(lambda: _holding(cli), "step 'second' runs")
        assert "driven by    process" in cli.expect(0, "show", run_id).stdout

        done = cli.expect(0, "cancel-run", run_id, "--reason", "changed my mind")
        assert f"cancelled run {run_id}: 1 completed, 2 cancelled" in done.stdout

        out, err = running.communicate(timeout=TIMEOUT)
    finally:
        (cli.folder / "hold").unlink(missing_ok=True)
        running.kill()
    assert running.returncode == 1, out + err
    assert re.search(rf"run {run_id} cancelled after <?[\d.]+s: 3 steps, 1 completed, 2 cancelled", out)
    data = cli.json("show", run_id, code=1)
    assert data["status"] == "cancelled" and data["reason"] == "changed my mind"
    assert "already ended (cancelled); nothing to cancel" in cli.expect(0, "cancel-run", run_id).stdout


def test_resume_finishes_a_run_whose_process_was_killed_without_rerunning_completed_steps(cli: CLI) -> None:
    (cli.folder / "hold").touch()
    killed = cli.popen("run", "held.yaml")
    try:
        run_id = _until(lambda: _holding(cli), "step 'second' runs")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=TIMEOUT)
    (cli.folder / "hold").unlink()
    assert cli.json("show", run_id)["status"] == "running"

    other = cli.folder / "elsewhere"
    other.mkdir()  # the run remembers where its workflow file is
    done = subprocess.run(cli.argv("resume", run_id), cwd=other, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming run {run_id} of workflow held (1 of 3 steps had ended)" in done.stdout
    assert re.search(rf"run {run_id} completed in <?[\d.]+s: 3 steps, 3 completed", done.stdout)
    ran = cli.ran()
    assert ran.count("first") == 1 and ran.count("second") == 2 and ran.count("third") == 1
    steps = {s["step_id"]: s for s in cli.json("show", run_id)["steps"]}
    assert steps["second"]["attempts"] == 2 and steps["third"]["status"] == "completed"

    again = cli.expect(0, "resume", run_id)
    assert f"run {run_id} already ended (completed); nothing to resume" in again.stdout


def test_resume_without_agents_says_how_to_give_them(cli: CLI) -> None:
    (cli.folder / "hold").touch()
    killed = cli.popen("run", "held.yaml")
    try:
        run_id = _until(lambda: _holding(cli), "step 'second' runs")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=TIMEOUT)
        (cli.folder / "hold").unlink()
    (cli.folder / "held.yaml").rename(cli.folder / "moved.yaml")

    refused = cli.expect(2, "resume", run_id).stderr
    assert "its workflow file" in refused and "is not there any more" in refused and "--agents PATH" in refused

    done = cli.expect(0, "resume", run_id, "--agents", "moved.yaml", "--json")
    assert json.loads(done.stdout)["status"] == "completed"


def test_timeout_cancels_the_run(cli: CLI) -> None:
    (cli.folder / "hold").touch()
    try:
        done = cli.expect(1, "run", "held.yaml", "--timeout", "1s")
    finally:
        (cli.folder / "hold").unlink()
    assert "the run did not finish within 1s; cancelling it" in done.stdout
    assert re.search(r"run held-\w+ cancelled after <?[\d.]+s: 3 steps, 1 completed, 2 cancelled", done.stdout)
    assert "the run did not finish within its timeout of 1s" in done.stdout


# --- in a terminal ----------------------------------------------------------------------------------


class Terminal:
    """``pepper run`` in a pseudo-terminal 100 columns wide; everything it wrote, as bytes."""

    def __init__(self, cli: CLI, *args: str) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.process = subprocess.Popen(
            cli.argv("run", *args), cwd=cli.folder, env=_env(TERM="xterm-256color", COLUMNS="100"), stdin=slave,
            stdout=slave, stderr=slave, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.output = b""

    def read_until(self, text: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"never saw {text!r} in {self.output!r}"
            if not self._read(0.05):
                assert text in self.output, f"ended without {text!r}: {self.output!r}"

    @property
    def text(self) -> str:
        """What it wrote, without colours and cursor moves."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.output.decode())

    def finish(self) -> int:
        deadline = time.monotonic() + TIMEOUT
        while self._read(0.05) or self.process.poll() is None:
            assert time.monotonic() < deadline, "pepper run did not end"
        os.close(self.master)
        return self.process.wait()

    def _read(self, wait: float) -> bool:
        """Read what is there; False once the terminal is closed."""
        if select.select([self.master], [], [], wait)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the other side closed
                return False
            self.output += chunk
            return bool(chunk)
        return self.process.poll() is None


def test_progress_shows_live_in_a_terminal_before_the_summary(cli: CLI) -> None:
    (cli.folder / "hold").touch()
    terminal = Terminal(cli, "held.yaml")
    try:
        terminal.read_until(b"RUNNING NOW")  # the table of running steps, with `second` in it
        terminal.read_until(b"1/3 steps")
        (cli.folder / "hold").unlink()
        code = terminal.finish()
    finally:
        terminal.process.kill()
    out = terminal.text
    assert code == 0, out
    summary = out.index("STEP ")
    assert out.index("ETA") < summary and out.index("elapsed") < summary and "━" in out[:summary]
    assert "\x1b[" in terminal.output.decode()  # coloured: it knows it is a terminal
    assert re.search(r"run held-\w+ completed in <?[\d.]+s: 3 steps, 3 completed", out[summary:]), out


def test_ctrl_c_cancels_the_run_shows_the_summary_and_exits_130(cli: CLI) -> None:
    (cli.folder / "hold").touch()
    terminal = Terminal(cli, "held.yaml")
    try:
        terminal.read_until(b"RUNNING NOW")
        terminal.process.send_signal(signal.SIGINT)
        code = terminal.finish()
    finally:
        terminal.process.kill()
        (cli.folder / "hold").unlink()
    out = terminal.text
    assert code == 130, out
    assert "cancelling the run" in out and "interrupted from the terminal" in out
    assert re.search(r"run held-\w+ cancelled after <?[\d.]+s: 3 steps, 1 completed, 2 cancelled", out), out
    run_id = cli.runs()[0]["run_id"]
    assert cli.json("show", run_id, code=1)["status"] == "cancelled"
