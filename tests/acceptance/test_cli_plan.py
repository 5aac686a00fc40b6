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


def test_a_run_shows_its_predicted_timeline_beside_what_happened(folder: Path) -> None:
    assert cli(folder, "run", "wf.yaml", "--quiet").returncode == 0
    second = cli(folder, "run", "wf.yaml", "--json")
    run = json.loads(second.stdout)
    assert run["plan"]["makespan"] > 0 and set(run["plan"]["steps"]) == {"a", "b", "c", "d"}
    shown = cli(folder, "show", run["run_id"])
    assert shown.returncode == 0 and "PLANNED" in shown.stdout and "predicted" in shown.stdout
