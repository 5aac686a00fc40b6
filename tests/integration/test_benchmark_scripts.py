"""The benchmark scripts start as a user runs them (``python benchmarks/NAME.py``, from any folder) and print only
what they are for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent.parent / "benchmarks"
TIMEOUT = 120


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip


@pytest.mark.parametrize("name", ["dashboard.py", "http.py", "baseline.py", "million.py"])
def test_a_benchmark_script_shows_its_help(name: str, tmp_path: Path) -> None:
    done = _script(name, "--help", cwd=tmp_path)  # dashboard.py: benchmarks/http.py must not hide the stdlib's
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {name}") and "Traceback" not in done.stderr


def test_baseline_runs_alone_and_million_keeps_its_figures_line_for_its_own_comparison(tmp_path: Path) -> None:
    baseline = _script("baseline.py", "--tasks", "200", cwd=tmp_path)
    assert baseline.returncode == 0 and "200 tasks in" in baseline.stdout, baseline.stderr

    alone = _script("million.py", "--tasks", "200", cwd=tmp_path)
    assert alone.returncode == 0 and "200 tasks submitted" in alone.stdout, alone.stderr
    assert "figures:" not in alone.stdout
    asked = _script("million.py", "--tasks", "200", "--figures", cwd=tmp_path)
    assert asked.returncode == 0 and asked.stdout.splitlines()[-1].startswith("figures: "), asked.stderr
