"""The docsite's function agents, named in ``agents.yaml``.

``document_package`` writes the Markdown pages of one part of the package (a
subpackage, or the top-level modules), ``write_index`` the index once every page
exists, and ``review_package`` checks the pages of one part and reports what it
found without failing, so that the deployment step sees every review and decides.
pepper imports this file from the YAML file's folder, so ``apidoc`` beside it is
importable too. Every path is found from this file: the package documented is the
repository's ``pepper/``, and pages go to ``output/`` beside this file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from apidoc import NO_DOCSTRING, describe_module, discover_modules, first_line, page_name, render_page

from pepper import TaskRun

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "pepper"
OUTPUT = HERE / "output"
MARKDOWN = OUTPUT / "markdown"
TOP = "top"  # the part holding the package's own top-level modules

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_REQUIRED = ("## Overview",)
_ONE_OF = ("## Classes", "## Functions")


def part_of(module: str) -> str:
    """``model`` for ``pepper.model.task``; ``top`` for ``pepper.errors`` or ``pepper`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else TOP


def clean(task: TaskRun) -> dict[str, Any]:
    """Empty ``output/markdown`` and ``output/site`` so that pages of deleted modules do not linger."""
    for folder in (MARKDOWN, OUTPUT / "site"):
        shutil.rmtree(folder, ignore_errors=True)
    MARKDOWN.mkdir(parents=True)
    modules = discover_modules(PACKAGE)
    return {"modules": len(modules), "parts": sorted({part_of(m) for m in modules})}


def document_package(task: TaskRun) -> dict[str, Any]:
    """Write one page per module of the part named by ``inputs["part"]`` (e.g. ``model``, or ``top``)."""
    if task.inputs.get("kind") == "index":
        return write_index(task)
    modules = discover_modules(PACKAGE)
    wanted = sorted(m for m in modules if part_of(m) == task.inputs["part"])
    if not wanted:
        raise ValueError(f"pepper has no part {task.inputs['part']!r}; parts: {sorted({part_of(m) for m in modules})}")
    pages = []
    for done, module in enumerate(wanted):
        task.report_progress(done / len(wanted), module)
        source = modules[module]
        doc = describe_module(source.read_text(), module, is_package=source.name == "__init__.py", known=set(modules))
        page = MARKDOWN / page_name(doc.name)
        page.write_text(render_page(doc))
        pages.append({"module": doc.name, "page": str(page), "classes": len(doc.classes),
                      "functions": len(doc.functions), "summary": first_line(doc.doc)})  # fmt: skip
    return {"part": task.inputs["part"], "pages": pages}


def write_index(task: TaskRun) -> dict[str, Any]:
    """The index page, from the pages the documentation steps it depends on wrote.

    Fails when a module of the package belongs to no documented part: the
    workflow would otherwise publish a site with a hole in it.
    """
    parts = [r for value in task.dependency_results.values() for r in (value if isinstance(value, list) else [value])]
    pages = sorted(
        (page for r in parts if isinstance(r, dict) for page in r.get("pages", ())),
        key=lambda r: r["module"],
    )
    documented = {p["module"] for p in pages}
    missing = sorted(set(discover_modules(PACKAGE)) - documented)
    if missing:
        parts = sorted({part_of(m) for m in missing})
        raise ValueError(f"no step documents {', '.join(missing)}; add a step for part(s) {', '.join(parts)}")

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
    page = MARKDOWN / "index.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines) + "\n")
    return {"page": str(page), "modules": len(pages), "classes": classes, "functions": functions}


def review_package(task: TaskRun) -> dict[str, Any]:
    """Check every page written for one part: ``inputs["written"]`` (an item of the documentation step's
    result), or the result of the one documentation step this review depends on.

    Links may point to any module's page (pages of other parts are written
    concurrently, so the file system cannot say which exist). Problems make ``ok``
    false; a missing module docstring is only a warning.
    """
    written = task.inputs.get("written")
    if written is None:
        (written,) = task.dependency_results.values()
    expected = {page_name(m) for m in discover_modules(PACKAGE)} | {"index.md"}
    reviews = []
    for item in written["pages"]:
        problems, warnings = review_markdown(Path(item["page"]).read_text(), expected)
        reviews.append({"module": item["module"], "page": item["page"], "ok": not problems,
                        "problems": problems, "warnings": warnings})  # fmt: skip
    return {"part": written["part"], "ok": all(r["ok"] for r in reviews), "reviews": reviews}


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
