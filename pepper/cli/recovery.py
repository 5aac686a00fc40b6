"""``pepper errors`` (what went wrong, and what was done about it) and ``pepper dlq`` (the dead-letter queue)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import click
from rich.table import Table
from rich.text import Text

from pepper.cli.common import (
    EXIT_TASK_FAILED,
    db_option,
    json_option,
    limit_option,
    not_empty,
    open_runtime,
    server_option,
    where_hint,
)
from pepper.cli.render import listing_console, make_console, one_line, plural, print_json, relative
from pepper.core import ErrorHandler
from pepper.errors import RemoteUnsupportedError
from pepper.model.recovery import ErrorRecord
from pepper.model.status import TaskStatus

_ACTION_STYLES = {"retry": "yellow", "reassign": "cyan", "fallback": "cyan", "skip": "magenta",
                  "dead_letter": "red", "abort": "red", "fail": "red"}  # fmt: skip


@click.command()
@click.argument("task_id", metavar="[TASK]", required=False)
@click.option(
    "--agent", "agent_id", metavar="AGENT", help="The latest errors on this agent instead.", callback=not_empty
)
@click.option("--run", "run_id", metavar="RUN", help="The errors of this workflow run's steps instead.")
@limit_option(50, "At most N errors (of a TASK, its latest)")
@click.option("--traceback", is_flag=True, help="Show each error's full traceback.")
@json_option
@db_option
@server_option
def errors(
    task_id: str | None, agent_id: str | None, run_id: str | None, limit: int, traceback: bool, as_json: bool,
    db: str | None,
) -> None:  # fmt: skip
    """Show the errors of a task, and what its recovery policy did about each.

    Without TASK: the latest errors of every task (or of --agent, or of --run).
    Each line says when, which attempt, on which agent, the error, the
    strategy that answered it (retry, reassign, fallback, skip, abort,
    dead_letter) and what it decided.

    \b
    Examples:
      pepper errors build-7
      pepper errors --agent reviewer
      pepper errors --run docsite-3f2a9c1e0b
    """
    with open_runtime(db) as runtime:
        if task_id is None and runtime.server:
            raise RemoteUnsupportedError("the errors of an agent, of a run or of every task",
                                         "with --server give a TASK: `pepper errors TASK`")  # fmt: skip
        found = ErrorHandler(runtime).get_error_history(task_id, agent_id=agent_id, run_id=run_id, limit=limit)
    total = len(found)
    if task_id is not None:  # a task's whole history comes back, oldest first: its latest are shown
        found = found[-limit:]
    what = f"task {task_id}" if task_id else f"agent {agent_id}" if agent_id else f"run {run_id}" if run_id else None
    empty = Text(f"No errors recorded for {what}." if what else "No errors recorded.")
    console = listing_console(as_json, found, ErrorRecord.to_dict, empty)
    if console is None:
        return
    console.print(errors_table(found, time.time(), show_task=task_id is None))
    if traceback:
        for e in found:
            if e.error.traceback:
                console.print(Text(f"\n{e.task_id} attempt {e.attempt}:", style="bold"))
                console.print(Text(e.error.traceback.rstrip()), soft_wrap=True)
    shown = f" (the latest {len(found)} shown: `--limit N` shows more)" if total > len(found) else ""
    console.print(Text(f"\n{plural(total, 'error')}" + (f" of {what}" if what else "") + shown, style="dim"))


def errors_table(found: Sequence[ErrorRecord], now: float, *, show_task: bool) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    if show_task:
        table.add_column("TASK", overflow="fold")
    for name in ("WHEN", "ATTEMPT", "AGENT"):
        table.add_column(name, no_wrap=True)
    table.add_column("ERROR", ratio=3, overflow="fold")
    table.add_column("DECIDED", ratio=2, overflow="fold")
    for e in found:
        decided = Text(e.action.replace("_", " "), style=_ACTION_STYLES.get(e.action, ""))
        if e.detail:
            decided.append(f": {e.detail}", style="dim")
        row = [Text(relative(e.at, now)), Text(str(e.attempt)), Text(e.agent_id or "-"),
               Text(one_line(f"{e.error.type}: {e.error.message}", 160)), decided]  # fmt: skip
        table.add_row(*([Text(e.task_id)] if show_task else []), *row)
    return table


@click.group(invoke_without_command=True)
@limit_option(50, "Show at most N parked tasks, the oldest")
@json_option
@db_option
@server_option
@click.pass_context
def dlq(ctx: click.Context, limit: int, as_json: bool, db: str | None) -> None:
    """The dead-letter queue: tasks a recovery policy parked for a person.

    Without a subcommand, lists them. A parked task keeps the tasks that
    depend on it waiting; replay it once the cause is fixed, or drop it.

    \b
    Examples:
      pepper dlq
      pepper dlq replay build-7
      pepper dlq replay --all --agent backup
      pepper dlq drop build-7 --reason "obsolete"
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_runtime(db) as runtime:
        if runtime.server:  # a server answers the queue page by page
            everyone = ErrorHandler(runtime).dead_letters()
            parked, total = everyone[:limit], len(everyone)
        else:  # the oldest only, and a count of the rest: the queue may hold many thousands
            parked = [record.to_status() for record in runtime.store.errors.parked_page(None, limit)]
            total = runtime.store.count_by_state().get("parked", 0)
    console = listing_console(as_json, parked, TaskStatus.to_dict, Text("The dead-letter queue is empty."))
    if console is None:
        return
    now = time.time()
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for name in ("TASK", "TYPE", "PARKED", "ATTEMPTS", "LAST AGENT"):
        table.add_column(name, no_wrap=name != "TASK", overflow="fold")
    table.add_column("LAST ERROR", ratio=1, overflow="fold")
    for s in parked:
        error = one_line(str(s.error), 120) if s.error else "-"
        table.add_row(s.task_id, s.task_type, relative(s.parked_at or now, now), str(s.attempts), s.agent_id or "-",
                      error)  # fmt: skip
    console.print(table)
    hint = where_hint(db)  # dlq replay and errors take --server
    shown = f" (the oldest {len(parked)} shown: `--limit N` shows more)" if total > len(parked) else ""
    console.print(Text(f"\n{plural(total, 'parked task')}{shown}. `pepper dlq replay TASK{hint}` runs one again, "
                       f"`pepper errors TASK{hint}` shows its history.", style="dim"))  # fmt: skip


@dlq.command()
@click.argument("task_id", metavar="[TASK]", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every parked task.")
@click.option(
    "--agent",
    metavar="AGENT",
    help="Run it on this agent (pins it there). It must be an agent of a live worker that accepts the task's type "
    "and has its skills; otherwise nothing is replayed.",
    callback=not_empty,
)
@json_option
@db_option
@server_option
def replay(task_id: str | None, replay_all: bool, agent: str | None, as_json: bool, db: str | None) -> None:
    """Run a parked task (or --all) again, from the start of its recovery policy.

    A failed task can be replayed too. Exits with 1 if nothing was replayed, with 2 (changing
    nothing) if --agent cannot take every task to replay.
    """
    if bool(task_id) == replay_all:
        raise click.UsageError("give a TASK, or --all (not both)")
    with open_runtime(db) as runtime:
        replayed = ErrorHandler(runtime).replay(task_id, all=replay_all, agent=agent)
    if as_json:
        print_json({"replayed": replayed})
    else:
        console = make_console()
        if replayed:
            where = f" on agent {agent}" if agent else ""
            console.print(Text(f"replaying {', '.join(replayed)}{where}"))
        elif task_id:
            console.print(Text(f"{task_id} is neither parked nor failed; nothing to replay"))
        else:
            console.print(Text("The dead-letter queue is empty; nothing to replay."))
    if not replayed:
        raise click.exceptions.Exit(EXIT_TASK_FAILED)


@dlq.command()
@click.argument("task_id", metavar="TASK")
@click.option("--reason", metavar="TEXT", help="Why it is given up (kept with the task).")
@json_option
@db_option
@server_option
def drop(task_id: str, reason: str | None, as_json: bool, db: str | None) -> None:
    """Give up a parked task: it fails, and the tasks that depend on it are cancelled."""
    with open_runtime(db) as runtime:
        dropped = ErrorHandler(runtime).drop(task_id, reason)
    if as_json:
        print_json({"task_id": task_id, "dropped": dropped})
    else:
        message = f"dropped {task_id}; tasks that depend on it are cancelled" if dropped else (
            f"{task_id} is not parked; nothing to drop"
        )  # fmt: skip
        make_console().print(Text(message))
    if not dropped:
        raise click.exceptions.Exit(EXIT_TASK_FAILED)
