"""``pepper feedback``: rate how a finished task went, or list the ratings it was given."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from pepper.cli.common import db_option, json_option, open_runtime, server_option, where_hint
from pepper.cli.inputs import parse_value
from pepper.cli.render import make_console, one_line, plural, print_json, relative, state_label
from pepper.core import TaskOrchestrator
from pepper.errors import RemoteUnsupportedError
from pepper.model.feedback import TaskFeedback


@click.command()
@click.argument("task_id", metavar="TASK")
@click.option("--rating", type=int, metavar="N", help="How well it went, from 1 (poor) to 5 (excellent).")
@click.option("--comment", metavar="TEXT", help="A few words on why (kept with the rating).")
@click.option(
    "--metric",
    "metric_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A measurement to keep with the rating (repeatable); VALUE is JSON if it parses, else text.",
)
@json_option
@db_option
@server_option
def feedback(
    task_id: str,
    rating: int | None,
    comment: str | None,
    metric_pairs: tuple[str, ...],
    as_json: bool,
    db: str | None,
) -> None:
    """Rate how a finished task went, or list the ratings it was given.

    A rating (1 poor to 5 excellent) feeds the score of the agent that ran
    the task, so better-rated agents are preferred. Without --rating,
    lists the feedback given on TASK.

    \b
    Examples:
      pepper feedback review-1 --rating 4 --comment "clear, a bit long"
      pepper feedback review-1 --rating 2 --metric accuracy=0.6
      pepper feedback review-1
    """
    if rating is None and (comment is not None or metric_pairs):
        raise click.UsageError("--comment and --metric go with a rating: add --rating N (1 to 5)")
    metrics = _parse_metrics(metric_pairs)
    with open_runtime(db) as runtime:
        orchestrator = TaskOrchestrator(runtime)
        if rating is None and runtime.server:
            raise RemoteUnsupportedError("listing a task's ratings", "with --server give --rating N to rate it; "
                                         "list them with `pepper feedback TASK` on the server's machine")  # fmt: skip
        if rating is None:
            status = orchestrator.get_task_status(task_id)  # an unknown task is an error, not an empty list
            given = orchestrator.get_feedback(task_id)
        else:
            added = orchestrator.add_feedback(task_id, rating=rating, comment=comment, metrics=metrics)
    console = make_console()
    if rating is not None:
        if as_json:
            print_json(added.to_dict())
            return
        learns = f" — agent {added.agent_id} learns from it" if added.agent_id else ""
        console.print(Text(f"rated {task_id} {stars(added.rating)} ({added.rating}/5){learns}"))
        return
    if as_json:
        print_json([f.to_dict() for f in given])
        return
    if not given:
        console.print(Text(f"No feedback on {task_id} yet ({state_label(status.state)})."))
        if not status.is_final:
            console.print(Text("It can be rated once it has finished.", style="dim"))
        elif status.agent_id:
            rate = f"pepper feedback {task_id} --rating N{where_hint(db)}"
            console.print(Text(f"Rate it from 1 (poor) to 5 (excellent) with: {rate}", style="dim"))
        return
    console.print(_feedback_table(given, time.time()))
    average = sum(f.rating for f in given) / len(given)
    console.print(Text(f"\n{plural(len(given), 'rating')} on {task_id}, {average:.1f}/5 on average", style="dim"))


def _parse_metrics(pairs: Sequence[str]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"expected KEY=VALUE (e.g. --metric accuracy=0.9), got {pair!r}", param_hint="'--metric'"
            )
        metrics[key.strip()] = parse_value(value)
    return metrics


def stars(rating: int) -> str:
    """``★★★★☆`` for 4 out of 5."""
    return "★" * rating + "☆" * (5 - rating)


def _feedback_table(given: Sequence[TaskFeedback], now: float) -> Table:
    """One row per rating, oldest first."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("WHEN", no_wrap=True)
    table.add_column("RATING", no_wrap=True, min_width=9)
    table.add_column("AGENT", no_wrap=True)
    table.add_column("COMMENT", ratio=2, min_width=12, overflow="fold")
    table.add_column("METRICS", ratio=1, min_width=10, overflow="fold")
    for f in given:
        metrics = ", ".join(f"{key}={one_line(value, 24)}" for key, value in f.metrics.items())
        table.add_row(
            Text(relative(f.created_at, now)),
            Text(f"{stars(f.rating)} {f.rating}/5"),
            Text(f.agent_id or "-"),
            Text(f.comment or "-"),
            Text(metrics or "-"),
        )
    return table
