"""Where each ``pepper`` subcommand lives, and its one-line help: the group lists them without loading them."""

from __future__ import annotations

from importlib import import_module
from typing import Any, NamedTuple

import click


class CommandHome(NamedTuple):
    """A subcommand's module and attribute, and the line ``pepper --help`` shows for it."""

    module: str
    attribute: str
    #: The first sentence of the command's help (or its ``short_help`` when ``short``).
    help: str
    short: bool = False


#: Every subcommand in the order ``pepper --help`` lists them. A test checks each help line against the
#: command's own, so the listing stays what the loaded commands would show.
COMMANDS: dict[str, CommandHome] = {
    "submit": CommandHome("pepper.cli.tasks", "submit", "Add a task to the queue and print its id."),
    "status": CommandHome(
        "pepper.cli.tasks", "status", "Show one task: its state, result or error, and why it is waiting."
    ),
    "why": CommandHome("pepper.cli.distribution", "why", "Explain what keeps a task from running."),
    "tasks": CommandHome("pepper.cli.tasks", "list_tasks", "List tasks, newest first, with a count per state."),
    "cancel": CommandHome("pepper.cli.tasks", "cancel", "Cancel a task and every task that depends on it."),
    "logs": CommandHome(
        "pepper.cli.logs",
        "logs",
        "Show what an attempt of TASK wrote: a command agent's stderr, a Python agent's log records and "
        "`task.log(...)` lines.",
    ),
    "run": CommandHome("pepper.cli.workflows", "run_workflow", "Run a workflow file to its end, showing its progress."),
    "runs": CommandHome("pepper.cli.workflows", "list_runs", "List workflow runs, newest first."),
    "show": CommandHome("pepper.cli.workflows", "show_run", "Show one workflow run, step by step.", short=True),
    "cancel-run": CommandHome(
        "pepper.cli.workflows", "cancel_run", "Cancel a workflow run's unfinished steps.", short=True
    ),
    "approve": CommandHome(
        "pepper.cli.approvals", "approve", "Approve (or reject) a workflow step that waits for a person.", short=True
    ),
    "resume": CommandHome(
        "pepper.cli.workflows", "resume_run", "Finish a workflow run whose process stopped.", short=True
    ),
    "rerun": CommandHome(
        "pepper.cli.rerun", "rerun", "Run an ended workflow run's failed steps (or from a step) again.", short=True
    ),
    "plan": CommandHome(
        "pepper.cli.plan",
        "plan_command",
        "Predict how a workflow file would run: when and where each step would run, the makespan beside a lower "
        "bound no schedule can beat, the critical path, and the busiest agent.",
    ),
    "feedback": CommandHome(
        "pepper.cli.feedback", "feedback", "Rate how a finished task went, or list the ratings it was given."
    ),
    "errors": CommandHome(
        "pepper.cli.recovery", "errors", "Show the errors of a task, and what its recovery policy did about each."
    ),
    "dlq": CommandHome(
        "pepper.cli.recovery", "dlq", "The dead-letter queue: tasks a recovery policy parked for a person."
    ),
    "worker": CommandHome(
        "pepper.cli.worker", "worker", "Run the agents of a YAML file on queued tasks until stopped."
    ),
    "agents": CommandHome("pepper.cli.worker", "agents", "List the agents online, with their load and learned score."),
    "resources": CommandHome(
        "pepper.cli.resources",
        "resources",
        "Show the resource pool and, per agent, what it was given beside what it really uses.",
    ),
    "leases": CommandHome(
        "pepper.cli.resources", "leases", "List the live leases: who holds which resources, since when, until when."
    ),
    "health": CommandHome(
        "pepper.cli.monitoring", "health", "Check that pepper is healthy, and say what is wrong if it is not."
    ),
    "perf": CommandHome(
        "pepper.cli.monitoring",
        "perf",
        "Show how fast tasks go through, and how many fail, over the last minute (or --window).",
    ),
    "top": CommandHome("pepper.cli.top", "top", "Watch pepper live: workers, tasks, agents and how fast work goes."),
    "alerts": CommandHome(
        "pepper.cli.alert_rules",
        "alerts",
        "List the alerts that fired, newest first; `pepper alerts rules` lists the configured rules.",
    ),
    "metrics": CommandHome(
        "pepper.cli.monitoring", "metrics", "Print pepper's metrics in Prometheus's text format (and nothing else)."
    ),
    "serve-metrics": CommandHome(
        "pepper.cli.monitoring",
        "serve_metrics",
        "Serve pepper's metrics on http://HOST:PORT/metrics for Prometheus, until Ctrl-C.",
    ),
    "serve": CommandHome(
        "pepper.cli.serve", "serve", "Serve pepper's HTTP API on http://HOST:PORT until Ctrl-C (or SIGTERM)."
    ),
    "db": CommandHome(
        "pepper.cli.db", "db_group", "Describe a pepper database, or copy one into another (SQLite <-> PostgreSQL)."
    ),
    "prune": CommandHome(
        "pepper.cli.prune",
        "prune",
        "Remove finished tasks (with their attempts, errors and logs), finished workflow runs (with their "
        "approvals) and alerts that ended longer ago than AGE, then give the space back to the disk.",
    ),
    "token": CommandHome(
        "pepper.cli.tokens", "token_group", "Make, list and revoke the tokens that let clients use `pepper serve`."
    ),
    "schedules": CommandHome(
        "pepper.cli.schedules",
        "schedules_group",
        "List the schedules (with no subcommand), or add, pause, resume or delete one.",
    ),
}


def load_command(name: str) -> click.Command:
    """The subcommand ``name``, its module imported now."""
    home = COMMANDS[name]
    command: Any = getattr(import_module(home.module), home.attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{home.module}.{home.attribute} is not a click command")
    return command


def placeholder(name: str) -> click.Command:
    """A stand-in for ``name`` that only knows its help line: what ``pepper --help`` lists, without loading it."""
    home = COMMANDS[name]
    if home.short:
        return click.Command(name, short_help=home.help)
    return click.Command(name, help=home.help)
