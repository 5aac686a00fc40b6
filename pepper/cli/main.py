"""The ``pepper`` command: a group of subcommands, and how errors become exit codes."""

from __future__ import annotations

import io
import sqlite3
import sys
from typing import Any

import click

import pepper
from pepper.cli.alert_rules import list_rules, test_rule
from pepper.cli.approvals import approve
from pepper.cli.common import DB_PATH, EXIT_BAD_INPUT, db_option
from pepper.cli.db import db_group
from pepper.cli.distribution import feedback, why
from pepper.cli.logs import logs
from pepper.cli.monitoring import alerts, health, metrics, perf, serve_metrics
from pepper.cli.plan import plan_command
from pepper.cli.prune import prune
from pepper.cli.recovery import dlq, errors
from pepper.cli.render import error_line, make_console
from pepper.cli.rerun import rerun
from pepper.cli.resources import leases, resources
from pepper.cli.schedules import schedules_group
from pepper.cli.serve import serve
from pepper.cli.tasks import cancel, list_tasks, status, submit
from pepper.cli.tokens import token_group
from pepper.cli.top import top
from pepper.cli.worker import agents, worker
from pepper.cli.workflows import cancel_run, list_runs, resume_run, run_workflow, show_run
from pepper.errors import PepperError
from pepper.store.connection import damaged

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PepperGroup(click.Group):
    """Lists commands in the order they were added; turns pepper errors (and a damaged database) into
    ``error: ...`` and exit 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PepperError as exc:
            make_console(stderr=True).print(error_line(str(exc)))
            raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
        except sqlite3.DatabaseError as exc:  # met on any query, not only at opening
            error = damaged(exc, ctx.meta.get(DB_PATH) or ctx.params.get("db") or "the database")
            if error is None:
                raise
            make_console(stderr=True).print(error_line(str(error)))
            raise click.exceptions.Exit(EXIT_BAD_INPUT) from None


@click.group(cls=PepperGroup, context_settings=_CONTEXT)
@click.version_option(pepper.__version__, "--version", "-V", prog_name="pepper", message="%(prog)s %(version)s")
@db_option
def cli(db: str | None) -> None:
    """pepper runs tasks on a pool of agents, in order of priority and dependencies.

    You queue tasks with `pepper submit`; a `pepper worker` runs them on the
    agents defined in a YAML file. A workflow file names steps, their
    dependencies and agents: `pepper run` runs it to its end, live. Everything
    lives in one database (--db: a SQLite file, default .pepper/pepper.db, or
    a postgresql:// URL for workers on several machines), so commands and
    workers in different terminals, runs or hosts share the same queue.

    \b
    Try it:
      pepper run workflow.yaml
      pepper submit review --id review-1 --input path=README.md
      pepper submit publish --depends-on review-1
      pepper worker --agents agents.yaml --until-idle
      pepper tasks
      pepper status review-1
      pepper why review-1

    Exit codes: 0 success; 1 the task or run failed or was cancelled; 2 bad
    input (unknown task, bad option, invalid agent or workflow file...); 130
    stopped with Ctrl-C.
    """


cli.add_command(submit)
cli.add_command(status)
cli.add_command(why)
cli.add_command(list_tasks)
cli.add_command(cancel)
cli.add_command(logs)
cli.add_command(run_workflow)
cli.add_command(list_runs)
cli.add_command(show_run)
cli.add_command(cancel_run)
cli.add_command(approve)
cli.add_command(resume_run)
cli.add_command(rerun)
cli.add_command(plan_command)
cli.add_command(feedback)
cli.add_command(errors)
cli.add_command(dlq)
cli.add_command(worker)
cli.add_command(agents)
cli.add_command(resources)
cli.add_command(leases)
cli.add_command(health)
cli.add_command(perf)
cli.add_command(top)
alerts.add_command(list_rules)
alerts.add_command(test_rule)
cli.add_command(alerts)
cli.add_command(metrics)
cli.add_command(serve_metrics)
cli.add_command(serve)
cli.add_command(db_group)
cli.add_command(prune)
cli.add_command(token_group)
cli.add_command(schedules_group)


def main() -> None:
    """Entry point of the ``pepper`` console script and of ``python -m pepper``."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # a character the terminal cannot show becomes '?'
            stream.reconfigure(errors="replace")
    cli(prog_name="pepper")
