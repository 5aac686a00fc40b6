"""``pepper plan`` and the predicted timeline ``pepper show`` compares a run with, run as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "plan_agents.py").write_text("import time\n\ndef work(task):\n    time.sleep(0.05)\n    return 1\n")
    (tmp_path / "wf.yaml").write_text(
        textwrap.dedent("""\
        name: diamond
        agents:
          - agent_id: quick
            task_types: [t]
            capacity: 2
            function: plan_agents:work
          - agent_id: slow
            task_types: [t]
            function: plan_agents:work
        steps:
          - id: a
            type: t
          - id: b
            type: t
            needs: a
          - id: c
            type: t
            needs: a
          - id: d
            type: t
            needs: [b, c]
        """)
    )
    return tmp_path


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "pepper", *args, "--db", str(folder / "p.db")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_plan_prints_the_makespan_bound_critical_path_and_bottleneck(folder: Path) -> None:
    done = cli(folder, "plan", "wf.yaml", "--duration", "t=2s", "--speed", "quick=2", "--gantt", "plan.png")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "makespan       3.00s (1.00x)" in out and re.search(r"critical path  a → [bc] → d", out)
    assert "bottleneck     quick" in out and (folder / "plan.png").stat().st_size > 1000
    assert not (folder / "p.db").exists()  # planning reads a database, never creates one
    data = json.loads(cli(folder, "plan", "wf.yaml", "--json", "--policy", "critical_path").stdout)
    assert data["policy"] == "critical_path" and len(data["schedule"]) == 4
    assert "no duration given or learned for type t: 1s assumed" in data["notes"]


def test_bad_plan_input_is_refused_with_exit_2(folder: Path) -> None:
    assert cli(folder, "plan", "missing.yaml").returncode == 2
    speed = cli(folder, "plan", "wf.yaml", "--speed", "ghost=2")
    assert speed.returncode == 2 and "no agent 'ghost'" in speed.stderr
    assert cli(folder, "plan", "wf.yaml", "--policy", "fastest").returncode == 2
    for option, value, said in (
        ("--duration", "ghost=5", "'ghost' is neither a step nor a task type of wf.yaml"),
        ("--duration", "t=soon", "t=soon 'soon' is not a duration"),
        ("--gantt", "wf.yaml", "a Gantt chart is a PNG image"),
        ("--duration", "t=1e300", "t=1e+300: a duration must be at most 366 days"),
        ("--duration", "a=367d", "a=367d: a duration must be at most 366 days"),
        ("--speed", "quick=1e-300", "speed must be a number from 0.001 to 1000 (1: the usual pace), got 1e-300"),
        ("--speed", "quick=1e300", "speed must be a number from 0.001 to 1000"),
    ):
        refused = cli(folder, "plan", "wf.yaml", option, value)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    assert "steps:" in (folder / "wf.yaml").read_text()  # never overwritten
    unwritable = cli(folder, "plan", "wf.yaml", "--gantt", "/proc/plan.png")
    assert unwritable.returncode == 2 and "could not write the Gantt chart /proc/plan.png" in unwritable.stderr
    assert "makespan" in unwritable.stdout  # the plan itself is still shown


def test_a_workflow_that_could_never_finish_is_planned_for_what_can_run_and_exits_2(folder: Path) -> None:
    text = (folder / "wf.yaml").read_text()
    (folder / "stuck.yaml").write_text(text.replace("id: c\n    type: t", "id: c\n    type: gpu"))
    shown = cli(folder, "plan", "stuck.yaml")
    assert shown.returncode == 2
    assert "Plan of diamond  4 steps" in shown.stdout
    assert "2 steps can never run, so `pepper run` would refuse this workflow: c, d" in " ".join(shown.stdout.split())
    data = json.loads(cli(folder, "plan", "stuck.yaml", "--json").stdout)
    assert data["unplaced"] == ["c", "d"] and data["lower_bound"] <= data["makespan"]


def test_other_agents_replace_the_workflow_files_and_must_fit_the_pool(folder: Path) -> None:
    text = (folder / "wf.yaml").read_text()
    (folder / "elsewhere.yaml").write_text("name: elsewhere\nagents: gone.yaml\n" + text[text.index("steps:") :])
    (folder / "gpu.yaml").write_text("agents:\n  - agent_id: gpu-box\n    task_types: t\n"
                                     "    function: plan_agents:work\n    resources: {gpu: 1}\n")  # fmt: skip
    (folder / "cpu.yaml").write_text("agents:\n  - agent_id: cpu-box\n    task_types: t\n"
                                     "    function: plan_agents:work\n")  # fmt: skip
    planned = cli(folder, "plan", "elsewhere.yaml", "--agents", "cpu.yaml", "--duration", "t=1")
    assert planned.returncode == 0, planned.stderr  # a lone task type is a list of one; gone.yaml is not read
    assert "makespan       4.00s" in planned.stdout  # one agent of capacity 1: the four steps in a row
    refused = cli(folder, "plan", "elsewhere.yaml", "--agents", "gpu.yaml")
    assert refused.returncode == 2
    assert "agent 'gpu-box' asks for a budget the whole pool cannot give: gpu short by 1" in refused.stderr


def test_a_run_shows_its_predicted_timeline_beside_what_happened(folder: Path) -> None:
    first = cli(folder, "run", "wf.yaml", "--json")
    guessed = json.loads(first.stdout)["plan"]  # nothing known yet: every step assumed to take 1s, and said so
    assert first.returncode == 0 and sorted(guessed["assumed"]) == ["a", "b", "c", "d"]
    shown = cli(folder, "show", json.loads(first.stdout)["run_id"])
    assert "no step's duration was known, 1s each assumed" in shown.stdout and "1.00s?" in shown.stdout
    second = cli(folder, "run", "wf.yaml", "--json")
    run = json.loads(second.stdout)
    assert run["plan"]["makespan"] > 0 and set(run["plan"]["steps"]) == {"a", "b", "c", "d"}
    assert run["plan"]["assumed"] == []  # learned from the first run
    shown = cli(folder, "show", run["run_id"])
    assert shown.returncode == 0 and "PLANNED" in shown.stdout and "predicted" in shown.stdout


def test_a_ray_agents_budget_is_rays_to_place_so_its_steps_may_need_more_than_this_machine(folder: Path) -> None:
    text = (folder / "wf.yaml").read_text()
    steps = text[text.index("steps:") :]
    steps = steps.replace("id: b\n    type: t", "id: b\n    type: t\n    resources: {gpu: 2}")
    steps = steps.replace("id: c\n    type: t", "id: c\n    type: t\n    resources: {gpu: 8}")
    (folder / "ray.yaml").write_text("name: on-ray\nagents:\n  - agent_id: gpu-box\n    task_types: t\n"
                                     "    function: plan_agents:work\n    executor: ray\n    resources: {gpu: 4}\n"
                                     + steps)  # fmt: skip
    data = json.loads(cli(folder, "plan", "ray.yaml", "--json", "--duration", "t=1").stdout)
    assert {s["task_id"]: s["agent_id"] for s in data["schedule"]} == {"a": "gpu-box", "b": "gpu-box"}
    assert data["unplaced"] == ["c", "d"]  # c needs more than the budget gpu-box declares to Ray (and d needs c)
    shown = cli(folder, "plan", "ray.yaml")
    assert shown.returncode == 2 and "2 steps can never run" in " ".join(shown.stdout.split())
    (folder / "local.yaml").write_text((folder / "ray.yaml").read_text().replace("    executor: ray\n", ""))
    refused = cli(folder, "plan", "local.yaml")
    assert refused.returncode == 2  # run here, the same budget is this machine's pool's, which has no gpu
    assert "agent 'gpu-box' asks for a budget the whole pool cannot give: gpu short by 4" in refused.stderr
