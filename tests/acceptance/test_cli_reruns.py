"""``pepper rerun`` and ``pepper schedules`` and ``pepper submit --delay`` end to end, as a user types them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.acceptance.test_cli_workflows import AGENTS, AGENTS_MODULE, CLI, DIAMOND, FAILING


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    (tmp_path / "wf_agents.py").write_text(AGENTS_MODULE)
    (tmp_path / "diamond.yaml").write_text(DIAMOND)
    (tmp_path / "failing.yaml").write_text(FAILING)
    return CLI(tmp_path)


def test_rerun_runs_the_failed_steps_again_in_the_same_run_and_keeps_the_history(cli: CLI) -> None:
    first = cli.json("run", "failing.yaml", code=1)
    run_id = first["run_id"]
    assert sorted(cli.ran()) == ["compile", "docs", "fetch"]
    (cli.folder / "ran.log").unlink()

    again = cli.json("rerun", run_id, code=1)  # compile still breaks: the run fails again
    assert again["run_id"] == run_id
    assert sorted(cli.ran()) == ["compile"]  # package and publish were cancelled again; fetch and docs kept
    steps = {s["step_id"]: s for s in again["steps"]}
    assert steps["fetch"]["status"] == "completed" and steps["fetch"]["attempts"] == 1
    assert steps["compile"]["status"] == "failed" and steps["compile"]["attempts"] == 2
    assert [r["run_id"] for r in cli.runs()] == [run_id]

    shown = cli.expect(1, "show", run_id).stdout
    earlier = [line.split() for line in shown.splitlines() if line.strip().startswith("#1")]
    assert earlier and earlier[0][:3] == ["#1", "failed", "worker"]  # the first attempt stays in the history

    (cli.folder / "ran.log").unlink()
    cli.expect(1, "rerun", run_id, "--from", "docs")
    assert sorted(cli.ran()) == ["docs"]  # publish waits on package, which stays cancelled


def test_rerun_refuses_bad_requests_and_changes_nothing(cli: CLI) -> None:
    run_id = cli.json("run", "diamond.yaml")["run_id"]
    (cli.folder / "ran.log").unlink()
    cli.expect(0, "submit", "build", "--id", "bystander")  # queued for the workflow's agents: a refusal starts none
    missing = cli.expect(2, "rerun", "no-such-run")
    assert "no workflow run with id 'no-such-run'" in missing.stderr
    nothing = cli.expect(2, "rerun", run_id)  # every step completed
    assert "no failed or cancelled step" in nothing.stderr
    unknown = cli.expect(2, "rerun", run_id, "--from", "nowhere")
    assert "has no step 'nowhere'" in unknown.stderr
    for timeout, said in (("0", "must be more than 0, got '0'"), ("-5s", "cannot be negative, got '-5s'")):
        bad = cli.expect(2, "rerun", run_id, "--from", "lint", "--timeout", timeout)
        assert "--timeout" in bad.stderr and said in bad.stderr
    assert cli.json("runs")[0]["status"] == "completed"
    steps = {s["step_id"]: s for s in cli.json("show", run_id)["steps"]}
    assert steps["lint"]["attempts"] == 1 and steps["package"]["attempts"] == 1
    assert cli.ran() == [] and cli.json("status", "bystander")["state"] == "pending"


FANNED = (
    AGENTS
    + """\
name: fanned
steps:
  - id: fetch
    type: build
  - id: pages
    type: build
    needs: fetch
    for_each: [a, b]
    inputs: {fail: "${{ item }}"}
"""
)


def test_rerun_of_a_fan_out_is_refused_naming_the_step_and_changes_nothing(cli: CLI) -> None:
    (cli.folder / "fanned.yaml").write_text(FANNED)
    run_id = cli.json("run", "fanned.yaml", code=1)["run_id"]
    (cli.folder / "ran.log").unlink()
    for args in ((), ("--failed",), ("--from", "pages"), ("--from", "fetch")):
        refused = cli.expect(2, "rerun", run_id, *args)
        assert "step 'pages' is a fan-out (for_each), and only task steps can run again" in refused.stderr
    assert not (cli.folder / "ran.log").exists()  # nothing ran
    steps = {s["step_id"]: s for s in cli.json("show", run_id, code=1)["steps"]}
    assert steps["pages"]["status"] == "failed" and steps["fetch"]["attempts"] == 1
    assert cli.json("runs")[0]["status"] == "failed"


def test_schedules_are_added_listed_paused_and_deleted(cli: CLI) -> None:
    done = cli.expect(0, "schedules", "add", "diamond.yaml", "--name", "nightly", "--cron", "0 2 * * *",
                      "--timezone", "Europe/Paris")  # fmt: skip
    assert "Schedule 'nightly': cron 0 2 * * * (Europe/Paris); next run " in done.stdout
    listed = cli.expect(0, "schedules").stdout
    assert "nightly" in listed and "02:00:00 CE" in listed
    cli.expect(0, "schedules", "pause", "nightly")
    assert cli.json("schedules")[0]["paused"] is True
    cli.expect(0, "schedules", "resume", "nightly")
    bad = cli.expect(2, "schedules", "add", "diamond.yaml", "--every", "10m", "--cron", "0 2 * * *")
    assert "not both" in bad.stderr
    unnamed = cli.expect(2, "schedules", "add", "diamond.yaml", "--every", "10m", "--name", "")
    assert "a schedule's name must be 1-100 letters" in unnamed.stderr and "got ''" in unnamed.stderr
    never = cli.expect(2, "schedules", "add", "diamond.yaml", "--name", "never", "--cron", "0 0 30 2 *")
    assert "cron expression '0 0 30 2 *' never fires" in never.stderr and "Traceback" not in never.stderr
    assert [s["name"] for s in cli.json("schedules")] == ["nightly"]  # an empty name is refused, not replaced
    cli.expect(0, "schedules", "delete", "nightly")
    assert cli.json("schedules") == []
    gone = cli("schedules", "delete", "nightly")
    assert gone.returncode != 0 and "no schedule named 'nightly'" in gone.stderr


def test_submit_with_a_delay_says_until_when(cli: CLI) -> None:
    status = cli.json("submit", "build", "--id", "later", "--delay", "10m")
    assert [w["kind"] for w in status["waiting_on"]] == ["delay"]
    assert status["not_before"] > status["created_at"] + 599
    for command in ("why", "status"):  # as the README shows it: delayed until <UTC time> (in 9m59s)
        said = cli.expect(0, command, "later").stdout
        assert re.search(r"delayed until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+m\d\ds\)", said), said
    bad = cli.expect(2, "submit", "build", "--delay", "5m", "--not-before", "2030-01-01T00:00:00Z")
    assert "not both" in bad.stderr


def test_submit_not_before_takes_seconds_since_the_epoch(cli: CLI) -> None:
    for task_id, at in (("whole", "1900000000"), ("fraction", "1900000000.5")):
        status = cli.json("submit", "build", "--id", task_id, "--not-before", at)
        assert status["not_before"] == float(at) and [w["kind"] for w in status["waiting_on"]] == ["delay"]
    zoneless = cli.expect(2, "submit", "build", "--id", "day", "--not-before", "20300101")  # a date, not seconds
    assert "has no time zone" in zoneless.stderr
    assert "is not a time" in cli.expect(2, "submit", "build", "--id", "x", "--not-before", "-5").stderr


def test_schedules_add_refuses_a_workflow_missing_an_input_as_run_does(cli: CLI) -> None:
    (cli.folder / "needs.yaml").write_text(
        AGENTS + "name: needs\nsteps:\n  - id: a\n    type: build\n    inputs: {module: '${{ inputs.module }}'}\n"
    )
    run = cli.expect(2, "run", "needs.yaml")
    refused = cli.expect(2, "schedules", "add", "needs.yaml", "--every", "1h")
    assert "needs.yaml:" in refused.stderr and "step 'a'" in refused.stderr and "inputs.module" in refused.stderr
    assert "--input KEY=VALUE" in refused.stderr and refused.stderr.splitlines()[0] in run.stderr
    assert cli.json("schedules") == []
    cli.expect(0, "schedules", "add", "needs.yaml", "--every", "1h", "--input", "module=docs")
    assert [s["name"] for s in cli.json("schedules")] == ["needs"]
