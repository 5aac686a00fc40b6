"""The docsite's function agents, named in ``agents.yaml``.

``document_module`` writes Markdown pages (one module's page, or the index once
every module page exists); ``review_page`` checks one page and reports what it
found without failing, so that the deployment step sees every review and decides.
pepper imports this file from the YAML file's folder, so ``apidoc`` beside it is
importable too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from apidoc import NO_DOCSTRING, describe_module, first_line, page_name, render_page

from pepper import TaskRun

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_REQUIRED = ("## Overview",)
_ONE_OF = ("## Classes", "## Functions")


def document_module(task: TaskRun) -> dict[str, Any]:
    """Write the page for ``inputs["module"]`` or, when ``inputs["kind"] == "index"``, the index page.

    Inputs of a module page: ``module``, ``source`` (path of the ``.py`` file),
    ``is_package``, ``known`` (every documented module, to resolve imports) and
    ``out_dir``. The index needs only ``out_dir``; its facts come from the results
    of the documentation tasks it depends on.
    """
    if task.inputs.get("kind") == "index":
        return _write_index(task)
    inputs = task.inputs
    task.report_progress(0.1, "parsing")
    doc = describe_module(
        Path(inputs["source"]).read_text(),
        inputs["module"],
        is_package=inputs["is_package"],
        known=set(inputs["known"]),
    )
    task.report_progress(0.7, "writing")
    page = Path(inputs["out_dir"]) / page_name(doc.name)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(doc))
    return {
        "module": doc.name,
        "page": str(page),
        "classes": len(doc.classes),
        "functions": len(doc.functions),
        "summary": first_line(doc.doc),
    }


def _write_index(task: TaskRun) -> dict[str, Any]:
    pages = sorted(
        (r for r in task.dependency_results.values() if isinstance(r, dict) and "module" in r),
        key=lambda r: r["module"],
    )
    classes = sum(r["classes"] for r in pages)
    functions = sum(r["functions"] for r in pages)
    lines = [
        "# pepper API reference",
        "",
        "## Overview",
        "",
        f"Generated from the source of the `pepper` package with Python's `ast` module: "
        f"{len(pages)} modules, {classes} classes, {functions} functions.",
        "",
        "## Modules",
        "",
        "| Module | Classes | Functions | Summary |",
        "|---|---:|---:|---|",
    ]
    for r in pages:
        summary = r["summary"].replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"| [{r['module']}]({page_name(r['module'])}) | {r['classes']} | {r['functions']} | {summary} |")
    page = Path(task.inputs["out_dir"]) / "index.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines) + "\n")
    return {"page": str(page), "modules": len(pages), "classes": classes, "functions": functions}


def review_page(task: TaskRun) -> dict[str, Any]:
    """Check the page written by the documentation task this review depends on.

    ``inputs["expected_pages"]`` lists the file names every link may point to
    (pages written concurrently may not exist yet, so the file system cannot say).
    Problems make ``ok`` false; a missing module docstring is only a warning.
    """
    written = next(r for r in task.dependency_results.values() if isinstance(r, dict) and "page" in r)
    page = Path(written["page"])
    problems, warnings = review_markdown(page.read_text(), set(task.inputs["expected_pages"]))
    return {
        "module": written.get("module"),
        "page": str(page),
        "ok": not problems,
        "problems": problems,
        "warnings": warnings,
    }


def review_markdown(text: str, expected_pages: set[str]) -> tuple[list[str], list[str]]:
    """The problems and warnings of one Markdown page."""
    problems: list[str] = []
    warnings: list[str] = []
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        problems.append("the page does not start with a '# ' title")
    headings = {line.strip() for line in lines if line.startswith("## ")}
    problems += [f"missing section '{s}'" for s in _REQUIRED if s not in headings]
    if not any(s in headings for s in _ONE_OF):
        problems.append("missing section '## Classes' or '## Functions'")
    if "## Overview" in headings:
        overview = _section(lines, "## Overview")
        if not overview or overview == NO_DOCSTRING:
            warnings.append("missing module docstring")
    for target in _LINK.findall(text):
        if "://" in target or target.startswith(("/", "#", "mailto:")):
            continue  # only relative links between pages are checked
        name = target.split("#", 1)[0]
        if name.endswith(".md") and name not in expected_pages:
            problems.append(f"broken link to {name}")
    return problems, warnings


def _section(lines: list[str], heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or higher level."""
    start = next(i for i, line in enumerate(lines) if line.strip() == heading) + 1
    body: list[str] = []
    for line in lines[start:]:
        if line.startswith(("# ", "## ")):
            break
        body.append(line)
    return "\n".join(body).strip()
