"""Deployment step of the docsite, run by pepper's command agent ``deployment_agent``.

Reads the task as JSON on stdin (``inputs`` and the ``dependency_results`` of
the review steps (a list of results for a fanned-out step) and the index step, by
step id), writes ``review-report.json``
into the site folder (``inputs["site_dir"]``, by default ``output/site`` beside
this file), and then either publishes or refuses:

- any review *problem* (a missing section, a broken link): print them on
  stderr and exit 1, which fails the task, so nothing is published;
- otherwise render every reviewed page and the index to HTML, with ``.md``
  links rewritten to ``.html``, and print ``{"pages", "problems", "site"}``.

Warnings (such as a missing module docstring) are reported but do not block.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path
from typing import Any

import markdown

STYLE = """\
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #222; }
nav { background: #2d3e50; padding: .6em 2em; }
nav a { color: #fff; text-decoration: none; font-weight: 600; }
main { max-width: 60em; margin: 0 auto; padding: 1em 2em 3em; }
h1 { border-bottom: 2px solid #2d3e50; }
h3 { margin-top: 1.8em; }
code { background: #f2f4f7; padding: .1em .3em; border-radius: 3px; font-size: 90%; }
pre { background: #f2f4f7; padding: .8em; overflow-x: auto; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d5dae1; padding: .3em .6em; text-align: left; vertical-align: top; }
"""

TEMPLATE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="style.css">
</head>
<body>
<nav><a href="index.html">pepper API reference</a></nav>
<main>
{body}
</main>
</body>
</html>
"""

# A relative link to a Markdown page, in rendered HTML: href="pepper.model.task.md" or "...md#anchor".
_MD_HREF = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|/|#)([^"#]+)\.md(#[^"]*)?"')


def render(text: str) -> tuple[str, str]:
    """The HTML page of one Markdown text, and its title (its first ``# `` heading)."""
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "untitled")
    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    body = _MD_HREF.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    return TEMPLATE.format(title=html.escape(title), body=body), title


def deploy(task: dict[str, Any]) -> dict[str, Any]:
    """Publish the site described by ``task`` (see the module docstring); raise ``SystemExit`` to refuse."""
    inputs = task["inputs"]
    results = task["dependency_results"]
    site = Path(inputs.get("site_dir") or Path(__file__).resolve().parent / "output" / "site")
    site.mkdir(parents=True, exist_ok=True)
    index_step = inputs.get("index_step", "index")
    index = results[index_step]
    parts = [r for step, value in results.items() if step != index_step
             for r in (value if isinstance(value, list) else [value])]  # fmt: skip
    reviews = sorted((review for r in parts for review in r["reviews"]), key=lambda r: r["page"])
    problems = sum(len(r["problems"]) for r in reviews)
    report = {
        "ok": problems == 0,
        "pages": len(reviews),
        "problems": problems,
        "warnings": sum(len(r["warnings"]) for r in reviews),
        "reviews": reviews,
    }
    (site / "review-report.json").write_text(json.dumps(report, indent=2) + "\n")
    if problems:
        for review in reviews:
            for problem in review["problems"]:
                print(f"{Path(review['page']).name}: {problem}", file=sys.stderr)
        raise SystemExit(f"not published: the reviews found {problems} problem(s); see {site / 'review-report.json'}")

    (site / "style.css").write_text(STYLE)
    pages = [index["page"], *(r["page"] for r in reviews)]
    for source in map(Path, pages):
        document, _ = render(source.read_text())
        (site / source.with_suffix(".html").name).write_text(document)
    return {"pages": len(pages), "problems": problems, "site": str(site)}


def main() -> None:
    task = json.load(sys.stdin)
    print(json.dumps(deploy(task)))


if __name__ == "__main__":
    main()
