"""The docsite demo (``make demo``) documents the pepper package end to end.

The demo runs once, as a subprocess from the repository root exactly as
``make demo`` runs it (``pepper run`` on the workflow file); the tests then read
what it left on disk. Two more tests drive the review check and the deployment
script directly, to show that a review problem stops the site from being published.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCSITE = ROOT / "examples" / "docsite"
OUTPUT = DOCSITE / "output"
MARKDOWN = OUTPUT / "markdown"
SITE = OUTPUT / "site"


DEMO = ("run", "examples/docsite/workflow.yaml", "--db", "examples/docsite/output/pepper.db",
        "--gantt", "examples/docsite/output/run.png")  # fmt: skip


def test_make_demo_runs_the_same_command() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "pepper " + " ".join(DEMO) in recipe


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pepper", *DEMO],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def finished(demo: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert demo.returncode == 0, f"demo failed\nstdout:\n{demo.stdout}\nstderr:\n{demo.stderr}"
    return demo


def _module_pages() -> set[str]:
    return {p.name for p in MARKDOWN.glob("*.md")} - {"index.md"}


def test_demo_completes_every_step_and_draws_the_run(finished: subprocess.CompletedProcess[str]) -> None:
    verdict = r"run docsite-\S+ completed in [\d.]+\s?m?s: 5 steps, 5 completed"
    assert re.search(verdict, finished.stdout), finished.stdout
    assert (OUTPUT / "pepper.db").is_file()
    from matplotlib.image import imread

    height, width, _ = imread(OUTPUT / "run.png").shape
    assert width > 600 and height > 200


def test_index_links_to_module_pages_that_exist(finished: subprocess.CompletedProcess[str]) -> None:
    index = (SITE / "index.html").read_text()
    assert 'href="pepper.model.task.html"' in index
    links = set(re.findall(r'href="([^"#]+\.html)"', index))
    assert {f"{Path(page).stem}.html" for page in _module_pages()} <= links
    assert all((SITE / link).is_file() for link in links)


def test_one_html_page_per_markdown_page(finished: subprocess.CompletedProcess[str]) -> None:
    markdown = {p.stem for p in MARKDOWN.glob("*.md")}
    html = {p.stem for p in SITE.glob("*.html")}
    assert "index" in markdown  # the index is a Markdown page too, so the counts match exactly
    assert len(markdown) > 10
    assert html == markdown
    # Links between pages point at the HTML files, not at the Markdown sources.
    assert not re.search(r'href="[^":]+\.md"', (SITE / "pepper.model.task.html").read_text())


def test_review_report_lists_one_review_per_module_page(finished: subprocess.CompletedProcess[str]) -> None:
    report = json.loads((SITE / "review-report.json").read_text())
    reviewed = [Path(review["page"]).name for review in report["reviews"]]
    assert sorted(reviewed) == sorted(_module_pages())
    assert report["problems"] == 0
    assert all(review["ok"] and review["problems"] == [] for review in report["reviews"])


def test_page_of_a_known_module_documents_its_classes(finished: subprocess.CompletedProcess[str]) -> None:
    page = (MARKDOWN / "pepper.model.task.md").read_text()
    assert page.startswith("# pepper.model.task\n")
    for section in ("## Overview", "## Classes", "## Functions", "## See also"):
        assert section in page
    assert "### TaskState" in page
    assert "### Priority" in page
    assert "`check_transition(task_id: str, source: TaskState, target: TaskState) -> None`" in page
    assert "[pepper.errors](pepper.errors.md)" in page
    html = (SITE / "pepper.model.task.html").read_text()
    assert "TaskState" in html
    assert "Priority" in html


@pytest.fixture
def docsite_agents(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(DOCSITE))
    return importlib.import_module("docsite_agents")


def test_review_reports_broken_links_and_missing_docstrings(docsite_agents: ModuleType) -> None:
    page = "# pepper.x\n\n## Overview\n\n*No module docstring.*\n\n## Functions\n\n- [a](a.md)\n- [gone](gone.md)\n"
    problems, warnings = docsite_agents.review_markdown(page, {"a.md", "pepper.x.md"})
    assert problems == ["broken link to gone.md"]
    assert warnings == ["missing module docstring"]


def test_deployment_refuses_to_publish_when_a_review_found_problems(tmp_path: Path) -> None:
    (tmp_path / "index.md").write_text("# Index\n\n[a](a.md)\n")
    (tmp_path / "a.md").write_text("# a\n\n## Overview\n\nA.\n\n## Functions\n\n[b](b.md)\n")
    review = {"page": str(tmp_path / "a.md"), "ok": False, "problems": ["broken link to b.md"], "warnings": []}
    task = {
        "inputs": {"site_dir": str(tmp_path / "site"), "index_step": "index"},
        "dependency_results": {"index": {"page": str(tmp_path / "index.md")}, "review-a": {"reviews": [review]}},
    }
    script = str(DOCSITE / "deploy_site.py")
    refused = subprocess.run([sys.executable, script], input=json.dumps(task), capture_output=True, text=True)
    assert refused.returncode != 0
    assert "broken link to b.md" in refused.stderr
    assert json.loads((tmp_path / "site" / "review-report.json").read_text())["problems"] == 1
    assert not list((tmp_path / "site").glob("*.html"))

    review.update(ok=True, problems=[])
    published = subprocess.run([sys.executable, script], input=json.dumps(task), capture_output=True, text=True)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout) == {"pages": 2, "problems": 0, "site": str(tmp_path / "site")}
    assert 'href="a.html"' in (tmp_path / "site" / "index.html").read_text()
