"""pepper demo: build an HTML API reference of the pepper package itself.

For every module of ``pepper/`` a *documentation* task writes a Markdown page
(read from the source with ``ast``, never imported) and a *review* task, which
depends on it, checks the page's sections and links. An *index* task waits for
every page; a single *deployment* task waits for the index and every review and
renders the site to HTML, unless a review found problems. Three agents from
``agents.yaml`` share the work: two Python functions and one shell command.

Run from the repository root with ``make demo`` (or ``.venv/bin/python
examples/docsite/run.py``). Outputs go to ``examples/docsite/output/``, which is
wiped first: pepper remembers submitted task ids, so a fresh database is what
makes each run do the work again. Pass ``--all`` to list every task at the end.
Exit status: 0 when every task completed, 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from apidoc import discover_modules, page_name
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import pepper
from pepper import TaskState, TaskStatus
from pepper.core import TaskOrchestrator
from pepper.errors import WaitTimeoutError

HERE = Path(__file__).resolve().parent
PACKAGE = Path(__file__).resolve().parents[2] / "pepper"
OUTPUT = HERE / "output"
MARKDOWN = OUTPUT / "markdown"
SITE = OUTPUT / "site"
DATABASE = OUTPUT / "pepper.db"
TYPES = ("documentation", "review", "deployment")
DEADLINE = 120.0  # seconds for the whole run; it normally takes one or two
SHOWN = 12  # task rows in the final table unless --all


def build_tasks(modules: dict[str, Path]) -> list[dict[str, Any]]:
    """The task graph: documentation -> review per module, index after all pages, deployment last."""
    known = sorted(modules)
    expected_pages = [page_name(m) for m in known] + ["index.md"]
    tasks: list[dict[str, Any]] = []
    for module in known:
        source = modules[module]
        tasks.append(
            {
                "id": f"doc:{module}",
                "type": "documentation",
                "priority": "high",  # ahead of the index, which competes for the same agent
                "inputs": {
                    "kind": "module",
                    "module": module,
                    "source": str(source),
                    "is_package": source.name == "__init__.py",
                    "known": known,
                    "out_dir": str(MARKDOWN),
                },
                "timeout": 60,
                "max_retries": 1,
            }
        )
        tasks.append(
            {
                "id": f"review:{module}",
                "type": "review",
                "dependencies": [f"doc:{module}"],
                "inputs": {"expected_pages": expected_pages},
                "timeout": 60,
                "max_retries": 1,
            }
        )
    tasks.append(
        {
            "id": "index",
            "type": "documentation",
            "dependencies": [f"doc:{m}" for m in known],
            "inputs": {"kind": "index", "out_dir": str(MARKDOWN)},
            "timeout": 60,
            "max_retries": 1,
        }
    )
    tasks.append(
        {
            "id": "deploy",
            "type": "deployment",
            "dependencies": [f"review:{m}" for m in known] + ["index"],
            "inputs": {"site_dir": str(SITE), "index_task": "index"},
            "timeout": 60,
            "max_retries": 0,  # a refusal to publish is a verdict, not a glitch: do not retry it
        }
    )
    return tasks


def follow(orchestrator: TaskOrchestrator, tasks: list[dict[str, Any]], console: Console) -> list[TaskStatus]:
    """Show one progress bar per task type until every task is final; return their statuses."""
    ids = [t["id"] for t in tasks]
    type_of = {t["id"]: t["type"] for t in tasks}
    totals = Counter(type_of.values())
    deadline = time.monotonic() + DEADLINE
    columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bars = {kind: progress.add_task(kind, total=totals[kind]) for kind in TYPES}
        while True:
            try:
                # Waiting in short chunks: returns as soon as everything is final.
                statuses = orchestrator.wait(ids, timeout=0.1)
                open_ids: tuple[str, ...] = ()
            except WaitTimeoutError as exc:
                open_ids = exc.pending
            still = Counter(type_of[i] for i in open_ids)
            for kind, bar in bars.items():
                progress.update(bar, completed=totals[kind] - still[kind])
            if not open_ids:
                return statuses
            if time.monotonic() > deadline:
                return [orchestrator.get_task_status(i) for i in ids]


def summary_table(statuses: list[TaskStatus], show_all: bool) -> Table:
    """Task, type, agent, state and duration: the unsuccessful tasks first, then the slowest."""
    ranked = sorted(
        statuses,
        key=lambda s: (s.state is TaskState.COMPLETED, s.task_id not in ("index", "deploy"), -(s.duration or 0)),
    )
    rows = ranked if show_all else ranked[:SHOWN]
    hidden = len(statuses) - len(rows)
    table = Table(
        title="Tasks" if show_all else "Tasks (unfinished first, then index, deploy and the slowest)",
        caption=f"{hidden} more completed tasks not shown (--all lists them)" if hidden else None,
    )
    table.add_column("task", overflow="fold")
    for column in ("type", "agent", "state"):
        table.add_column(column, no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    colour = {TaskState.COMPLETED: "green", TaskState.FAILED: "red", TaskState.CANCELLED: "yellow"}
    for s in rows:
        state = f"[{colour.get(s.state, 'white')}]{s.state.value}[/]"
        duration = f"{s.duration * 1000:.0f} ms" if s.duration is not None else "-"
        table.add_row(s.task_id, s.task_type, s.agent_id or "-", state, duration)
    return table


def main(argv: list[str]) -> int:
    console = Console()
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    modules = discover_modules(PACKAGE)
    tasks = build_tasks(modules)
    console.rule("[bold]pepper demo: an API reference site for the pepper package")
    console.print(
        f"Source: {PACKAGE} ({len(modules)} modules)\n"
        f"Tasks:  {len(modules)} documentation + {len(modules)} review, 1 index, 1 deployment = {len(tasks)}\n"
        f"Agents: {HERE / 'agents.yaml'}"
    )

    # The deployment agent's command refers to these; its subprocess inherits them.
    os.environ["DOCSITE_PYTHON"] = sys.executable
    os.environ["DOCSITE_DIR"] = str(HERE)
    runtime = pepper.init(db=str(DATABASE), home=str(OUTPUT / ".pepper"))
    try:
        for agent in pepper.load_agents(HERE / "agents.yaml"):
            spec = agent.spec
            types = ", ".join(sorted(spec.task_types))
            console.print(f"  - {spec.agent_id}: {types} (capacity {spec.capacity}, {agent.kind} agent)")
        orchestrator = TaskOrchestrator()
        started = time.monotonic()
        orchestrator.submit_tasks(tasks)
        statuses = follow(orchestrator, tasks, console)
        elapsed = time.monotonic() - started
    finally:
        runtime.close()

    console.print(summary_table(statuses, show_all="--all" in argv))
    by_state = Counter(s.state.value for s in statuses)
    console.print(f"{len(statuses)} tasks in {elapsed:.1f}s: " + ", ".join(f"{n} {k}" for k, n in by_state.items()))
    for s in statuses:
        if s.state is TaskState.FAILED and s.error is not None:
            lines = str(s.error).splitlines()
            if len(lines) > 6:  # a command's stderr tail can be long: its start and its verdict suffice
                lines = [*lines[:4], "  ...", lines[-1]]
            message = "\n".join(lines)
            console.print(f"[red]{s.task_id} failed[/] after {s.attempts} attempt(s): {message}", highlight=False)
    reviews = [s.result for s in statuses if s.task_type == "review" and isinstance(s.result, dict)]
    if reviews:
        problems = sum(len(r["problems"]) for r in reviews)
        warnings = sum(len(r["warnings"]) for r in reviews)
        console.print(f"Reviews: {len(reviews)} pages, {problems} problems, {warnings} warnings")

    ok = all(s.state is TaskState.COMPLETED for s in statuses)
    outputs = {
        "Site": SITE,
        "Index": SITE / "index.html",
        "Review report": SITE / "review-report.json",
        "Markdown": MARKDOWN,
        "Database": DATABASE,
    }
    console.print()
    for label, path in outputs.items():
        missing = "" if path.exists() else "  [red](not written)[/]"
        console.print(f"{label + ':':<15}{path}{missing}", soft_wrap=True)
    console.print(
        "inspect the run with: .venv/bin/pepper tasks --db examples/docsite/output/pepper.db",
        soft_wrap=True,
        highlight=False,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
