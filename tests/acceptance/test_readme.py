"""The README's API tour runs as written and prints what its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_api_tour_runs_and_prints_what_it_promises(tmp_path):
    code = re.search(r"## A tour of the API\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["dependency 'docs' has not been submitted yet", "{'approved': True}"]
    assert (tmp_path / ".pepper" / "pepper.db").exists()


def test_the_agent_choice_example_runs_after_the_tour(tmp_path):
    text = README.read_text()
    tour = re.search(r"## A tour of the API\n\n```python\n(.*?)```", text, re.S).group(1)
    choosing = re.search(r"## Choosing agents\n.*?```python\n(.*?)```", text, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", tour + choosing], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[2].startswith("documentation_agent 0.") and "ScoreParts(" in lines[2]
    assert "'intro': 'documentation_agent'" in lines[3] and "'faq': 'documentation_agent'" in lines[3]


def test_the_workflow_example_runs_after_the_tour(tmp_path):
    text = README.read_text()
    tour = re.search(r"## A tour of the API\n\n```python\n(.*?)```", text, re.S).group(1)
    workflow = re.search(r"## Workflows\n.*?```python\n(.*?)```", text, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", tour + workflow], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[2]
        == "completed [('docs', 'completed'), ('review', 'completed'), ('publish', 'completed')]"
    )


def test_the_workflow_file_example_is_the_same_workflow(tmp_path):
    from pepper.core.workflow_file import parse_workflow_file

    text = README.read_text()
    yaml_text = re.search(r"## Workflows\n.*?```yaml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "agents.yaml").write_text("- agent_id: a\n  task_types: [documentation, review]\n  command: 'true'\n")
    (tmp_path / "publish.yaml").write_text(yaml_text)
    spec = parse_workflow_file(tmp_path / "publish.yaml").spec
    assert [(s.step_id, s.task_type, s.dependencies) for s in spec.steps] == [
        ("docs", "documentation", ()), ("review", "review", ("docs",)), ("publish", "documentation", ("review",))
    ]  # fmt: skip
    assert spec.steps[2].condition == "steps.review.result.approved"


def test_the_monitoring_example_runs_after_the_tour(tmp_path):
    text = README.read_text()
    tour = re.search(r"## A tour of the API\n\n```python\n(.*?)```", text, re.S).group(1)
    watching = re.search(r"## Watching it run\n\n```python\n(.*?)```", text, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", tour + watching], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    health, perf = done.stdout.splitlines()[2:4]
    assert health == "healthy ()"
    throughput, error_rate, p95 = perf.split()
    assert float(throughput) > 0 and float(error_rate) == 0.0 and float(p95) >= 0


def test_the_planning_example_prints_what_its_comment_says(tmp_path):
    code = re.search(r"## Plan before running\n.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    promised = re.search(r"print\(plan\.makespan.*?# (.*)", code).group(1)
    assert done.stdout.strip() == promised.strip()
    assert (tmp_path / "plan.png").stat().st_size > 1000
