"""``pepper why``, ``pepper feedback`` and the load and score columns of ``pepper agents``, run as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 60

AGENTS_YAML = """\
agents:
  - agent_id: plain
    task_types: [review]
    function: dist_agents:review
  - agent_id: expert
    task_types: [review]
    skills: [markdown]
    capacity: 2
    function: dist_agents:review
"""

AGENTS_MODULE = '''\
"""Agents of the distribution acceptance tests."""


def review(task):
    return {"reviewed": task.task_id, "words": task.inputs.get("words", 0)}
'''


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

    def __call__(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, *args), cwd=self.folder, env=_env(), capture_output=True, text=True, timeout=TIMEOUT
        )

    def ok(self, command: str, *args: str) -> str:
        done = self(command, *args)
        assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def json(self, command: str, *args: str) -> Any:
        return json.loads(self.ok(command, *args, "--json"))

    def bad(self, command: str, *args: str) -> str:
        """Run a command that must be refused as bad input; its stderr."""
        done = self(command, *args)
        assert done.returncode == 2, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stderr

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
    """Two python agents for ``review`` tasks; only ``expert`` has the ``markdown`` skill."""
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "dist_agents.py").write_text(AGENTS_MODULE)
    path = folder / "agents.yaml"
    path.write_text(AGENTS_YAML)
    return path


@pytest.fixture
def running_worker(cli: CLI, agents_file: Path) -> Iterator[subprocess.Popen[str]]:
    """A ``pepper worker`` in the background, once its agents show in ``pepper agents``; stopped with SIGTERM."""
    worker = cli.popen("worker", "--agents", str(agents_file))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not Path(cli.db).exists() or len(cli.json("agents")) < 2:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker never registered its agents"
            time.sleep(0.1)
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=TIMEOUT)
    assert worker.returncode == 0, f"{out}\n{err}"


def test_help_says_what_why_and_feedback_do(cli: CLI) -> None:
    top = subprocess.run(
        [sys.executable, "-m", "pepper", "--help"], capture_output=True, text=True, env=_env(), timeout=TIMEOUT
    )
    assert "  why  " in top.stdout and "  feedback  " in top.stdout

    why_help = cli.ok("why", "--help")
    assert "what keeps a task from running" in why_help
    assert "which online agents" in why_help and "--json" in why_help

    feedback_help = cli.ok("feedback", "--help")
    assert "Rate how a finished task went" in feedback_help
    for option in ("--rating", "--comment", "--metric", "--json"):
        assert option in feedback_help
    assert "1 (poor) to 5 (excellent)" in feedback_help

    agents_help = cli.ok("agents", "--help")
    assert "LOAD" in agents_help and "SCORE" in agents_help


def test_why_a_task_waits_for_a_missing_dependency_or_for_an_agent(cli: CLI) -> None:
    cli.ok("submit", "publish", "--id", "child", "--depends-on", "x")
    cli.ok("submit", "review", "--id", "lonely", "--skill", "markdown")

    blocked = cli.ok("why", "child")
    assert "blocked" in blocked
    assert "Why it is blocked" in blocked
    assert "• dependency 'x' has not been submitted yet" in blocked
    assert "depends on  x" in blocked

    pending = cli.ok("why", "lonely")
    assert "pending" in pending and "Why it is not running" in pending
    assert "no registered agent accepts task type 'review'" in pending
    assert "needs     skill markdown" in pending
    assert "No agents are online" in pending and f"pepper worker --agents agents.yaml --db {cli.db}" in pending

    data = cli.json("why", "child")
    assert set(data) >= {"task_id", "state", "waiting_on", "eligible", "rejected"}
    assert (data["task_id"], data["state"], data["eligible"], data["rejected"]) == ("child", "blocked", [], {})
    assert data["waiting_on"] == [
        {
            "kind": "dependency_missing",
            "message": "dependency 'x' has not been submitted yet",
            "subject": "x",
            "details": {},
        }
    ]
    lonely = cli.json("why", "lonely")
    assert lonely["state"] == "pending"
    assert lonely["requirements"] == {"skills": ["markdown"]}
    assert [w["kind"] for w in lonely["waiting_on"]] == ["no_agent"]
    assert "no registered agent accepts task type 'review'" in lonely["waiting_on"][0]["message"]


def test_why_unknown_task_or_missing_database_is_bad_input(cli: CLI) -> None:
    assert "no pepper database at" in cli.bad("why", "anything")
    assert "no pepper database at" in cli.bad("feedback", "anything", "--rating", "4")
    assert "no pepper database at" in cli.bad("feedback", "anything")
    assert not Path(cli.db).exists()  # reading, or rating, never creates a database

    cli.ok("submit", "review", "--id", "known")
    assert "error: no task with id 'nope'" in cli.bad("why", "nope")
    assert "error: no task with id 'nope'" in cli.bad("why", "nope", "--json")
    assert "error: no task with id 'nope'" in cli.bad("feedback", "nope")


def test_agents_scores_load_and_why_with_a_running_worker(
    cli: CLI, running_worker: subprocess.Popen[str], tmp_path: Path
) -> None:
    done = cli("submit", "review", "--id", "md-1", "--skill", "markdown", "--wait", "--wait-timeout", "30")
    assert done.returncode == 0, done.stderr
    assert cli.json("status", "md-1")["agent_id"] == "expert"  # the only agent with the skill

    table = cli.ok("agents")
    header = table.splitlines()[0].split()
    for column in ("AGENT", "SKILLS", "LOAD", "QUEUED", "SCORE"):
        assert column in header
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert set(rows) == {"plain", "expert"}
    assert "markdown" in rows["expert"] and "0/2" in rows["expert"] and "0/1" in rows["plain"]

    listed = {agent["agent_id"]: agent for agent in cli.json("agents")}
    assert set(listed) == {"plain", "expert"}
    for agent in listed.values():
        assert {"agent_id", "kind", "task_types", "skills", "capacity", "running", "worker_id"} <= set(agent)
        assert 0.0 <= agent["score"] <= 1.0
        assert agent["queued"] >= 0
        shown = rows[agent["agent_id"]].split()[-2]  # SCORE, two decimals, just before WORKER
        assert len(shown.split(".")[1]) == 2 and abs(float(shown) - agent["score"]) < 0.02
    assert listed["expert"]["skills"] == ["markdown"] and listed["expert"]["capacity"] == 2

    ran = cli.ok("why", "md-1")
    assert "completed" in ran and "It completed on agent expert" in ran
    assert "Why it is" not in ran  # nothing is keeping it back
    finished = cli.json("why", "md-1")
    assert (finished["state"], finished["agent_id"], finished["waiting_on"]) == ("completed", "expert", [])

    # A task no online agent can take: each agent says why.
    cli.ok("submit", "review", "--id", "rusty", "--skill", "rust")
    nobody = cli.ok("why", "rusty")
    assert "No online agent can take it" in nobody
    assert "plain   lacks skill rust" in nobody and "expert  lacks skill rust" in nobody
    rejected = cli.json("why", "rusty")
    assert rejected["eligible"] == []
    assert rejected["rejected"] == {"plain": ["lacks skill rust"], "expert": ["lacks skill rust"]}

    # A blocked task: the agents that could take it once its dependency completes, best first.
    cli.ok("submit", "review", "--id", "later", "--depends-on", "ghost")
    later = cli.json("why", "later")
    assert later["state"] == "blocked" and later["rejected"] == {}
    assert {p["agent_id"] for p in later["eligible"]} == {"plain", "expert"}
    for profile in later["eligible"]:
        assert {"performance_score", "running", "capacity", "projected_finish"} <= set(profile)
    finishes = [p["projected_finish"] for p in later["eligible"]]
    assert finishes == sorted(finishes)
    text = cli.ok("why", "later")
    assert "Agents that could take it once its dependencies complete, best first" in text
    assert "WOULD FINISH" in text and "plain" in text and "expert" in text


def test_feedback_rates_a_finished_task_and_lists_the_ratings(cli: CLI, agents_file: Path) -> None:
    cli.ok("submit", "review", "--id", "done", "--skill", "markdown", "--input", "words=120")
    worker = cli("worker", "--agents", str(agents_file), "--until-idle", "--idle-grace", "0.3")
    assert worker.returncode == 0, worker.stderr
    cli.ok("submit", "review", "--id", "waiting", "--depends-on", "ghost")

    assert "No feedback on done yet" in cli.ok("feedback", "done")
    assert cli.json("feedback", "done") == []

    rated = cli.ok("feedback", "done", "--rating", "4", "--comment", "clear, a bit long", "--metric", "accuracy=0.9")
    assert "rated done ★★★★☆ (4/5) — agent expert learns from it" in rated
    second = cli.json("feedback", "done", "--rating", "2", "--metric", "note=too terse", "--metric", "tags=[1, 2]")
    assert (second["task_id"], second["agent_id"], second["rating"]) == ("done", "expert", 2)
    assert second["metrics"] == {"note": "too terse", "tags": [1, 2]}
    assert second["feedback_id"] is not None and second["created_at"] > 0

    listing = cli.ok("feedback", "done")
    assert "★★★★☆ 4/5" in listing and "★★☆☆☆ 2/5" in listing
    assert "clear, a bit long" in listing and "accuracy=0.9" in listing
    assert "2 ratings on done, 3.0/5 on average" in listing
    given = cli.json("feedback", "done")
    assert [(f["rating"], f["comment"], f["metrics"]) for f in given] == [
        (4, "clear, a bit long", {"accuracy": 0.9}),
        (2, None, {"note": "too terse", "tags": [1, 2]}),
    ]

    assert "rating must be a whole number from 1 to 5, got 7" in cli.bad("feedback", "done", "--rating", "7")
    assert "from 1 to 5" in cli.bad("feedback", "done", "--rating", "0")
    assert "not a valid integer" in cli.bad("feedback", "done", "--rating", "four")
    refused = cli.bad("feedback", "waiting", "--rating", "3")
    assert "error: " in refused and "has not finished" in refused
    assert "--rating" in cli.bad("feedback", "done", "--comment", "without a rating")
    assert "expected KEY=VALUE" in cli.bad("feedback", "done", "--rating", "3", "--metric", "no-equals-sign")
    assert len(cli.json("feedback", "done")) == 2  # refused ratings stored nothing

    assert "It can be rated once it has finished" in cli.ok("feedback", "waiting")


def test_why_explains_a_failed_task_and_still_exits_0(cli: CLI, tmp_path: Path) -> None:
    agents = tmp_path / "broken.yaml"
    agents.write_text(
        textwrap.dedent("""\
            - agent_id: broken
              task_types: [explode]
              command: "echo 'something went wrong' >&2; exit 3"
            """)
    )
    cli.ok("submit", "explode", "--id", "boom")
    assert cli("worker", "--agents", str(agents), "--until-idle", "--idle-grace", "0.3").returncode == 0
    assert cli("status", "boom").returncode == 1  # status judges...
    failed = cli.ok("why", "boom")  # ...why explains
    assert "It failed on agent broken" in failed
    assert "CommandFailed: command exited with status 3" in failed
    assert cli.json("why", "boom")["state"] == "failed"
