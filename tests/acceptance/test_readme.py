"""The README's Python examples run as written, each on its own, and print what their comments say; the links of
the README and of docs/ lead somewhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def block(heading: str) -> str:
    """The first Python block under ``## heading``."""
    return re.search(rf"## {re.escape(heading)}\n.*?```python\n(.*?)```", README.read_text(), re.S).group(1)


def run(code: str, folder: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter in ``folder`` (so with a fresh default database); its output lines."""
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


#: The headings whose first Python block a test of its own below runs, checking what it prints.
CHECKED = ("A tour of the API", "Choosing agents", "Workflows", "When tasks fail", "Watching it run",
           "Plan before running", "Fan-out and fan-in", "Delayed tasks", "Schedules", "Re-runs")  # fmt: skip
#: The other blocks: each is run here, once, as every block is run once in this file.
OTHERS = [code for code in BLOCKS if code not in {block(heading) for heading in CHECKED}]


@pytest.mark.parametrize("code", OTHERS, ids=[f"block{BLOCKS.index(code) + 1}" for code in OTHERS])
def test_every_python_block_of_the_readme_runs_on_its_own(code, tmp_path):
    run(code, tmp_path)


def test_the_readme_has_its_python_examples():
    assert len(BLOCKS) >= 7
    assert len(OTHERS) + len(CHECKED) == len(BLOCKS)  # each block is run by exactly one test


def test_the_api_tour_prints_what_it_promises(tmp_path):
    lines = run(block("A tour of the API"), tmp_path)
    assert lines == ["dependency 'docs' has not been submitted yet", "{'approved': True}"]
    assert (tmp_path / ".pepper" / "pepper.db").exists()


def test_the_agent_choice_example_prints_the_score_and_the_plan(tmp_path):
    lines = run(block("Choosing agents"), tmp_path)
    assert lines[0].startswith("documentation_agent 0.") and "ScoreParts(" in lines[0]
    assert "'intro': 'documentation_agent'" in lines[1] and "'faq': 'documentation_agent'" in lines[1]


def test_the_workflow_example_completes_every_step(tmp_path):
    lines = run(block("Workflows"), tmp_path)
    assert lines == ["completed [('docs', 'completed'), ('review', 'completed'), ('publish', 'completed')]"]


def test_the_recovery_example_replays_the_parked_task_on_the_backup_agent(tmp_path):
    assert run(block("When tasks fail"), tmp_path) == ["built"]


def test_the_workflow_file_example_is_the_same_workflow(tmp_path):
    from pepper.workflow_file import parse_workflow_file

    text = README.read_text()
    yaml_text = re.search(r"## Workflows\n.*?```yaml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "agents.yaml").write_text("- agent_id: a\n  task_types: [documentation, review]\n  command: 'true'\n")
    (tmp_path / "publish.yaml").write_text(yaml_text)
    spec = parse_workflow_file(tmp_path / "publish.yaml").spec
    assert [(s.step_id, s.task_type, s.dependencies) for s in spec.steps] == [
        ("docs", "documentation", ()), ("review", "review", ("docs",)), ("publish", "documentation", ("review",))
    ]  # fmt: skip
    assert spec.steps[2].condition == "steps.review.result.approved"


def test_the_monitoring_example_reports_health_and_performance(tmp_path):
    health, perf = run(block("Watching it run"), tmp_path)[:2]
    assert health == "healthy ()"
    throughput, error_rate, p95 = perf.split()
    assert float(throughput) == 0 and error_rate == "None" and p95 == "None"  # nothing ran yet in this process


def test_the_planning_example_prints_what_its_comment_says(tmp_path):
    code = block("Plan before running")
    lines = run(code, tmp_path)
    promised = re.search(r"print\(plan\.makespan.*?# (.*)", code).group(1)
    assert lines == [promised.strip()]
    assert (tmp_path / "plan.png").stat().st_size > 1000


def test_the_fan_out_example_prints_the_items_results_in_order(tmp_path):
    assert run(block("Fan-out and fan-in"), tmp_path) == ["['0:api.md', '1:cli.md', '2:store.md'] 3"]


def test_the_delay_example_waits_for_its_time_then_runs(tmp_path):
    assert run(block("Delayed tasks"), tmp_path) == ["delay", "sent"]


def test_the_schedules_example_prints_the_next_tick_in_its_zone_and_the_names(tmp_path):
    next_fire, names = run(block("Schedules"), tmp_path)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d 02:00:00 CES?T", next_fire)
    assert names == "['nightly', 'poll']"


def test_the_rerun_example_completes_the_same_run(tmp_path):
    assert run(block("Re-runs"), tmp_path) == ["failed", "True completed"]


# -- links -----------------------------------------------------------------------------------------------------

PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)  # comments in code are not headings
    headings = re.findall(r"^#+ +(.+?) *$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_leads_to_a_file_and_a_heading_there(page):
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_file():
            broken.append(f"{link}: no file {target}")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert broken == []
