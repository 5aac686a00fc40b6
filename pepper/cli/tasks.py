"""``pepper submit``, ``status``, ``tasks`` and ``cancel``: work on tasks in the database."""

from __future__ import annotations

import time
from collections import Counter

import click
from rich.text import Text

from pepper.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    check_seconds,
    db_option,
    exit_code_for,
    json_option,
    limit_option,
    not_empty,
    open_runtime,
    server_option,
    where_hint,
)
from pepper.cli.inputs import parse_inputs, parse_priority
from pepper.cli.render import make_console, print_json, state_label, text_console
from pepper.cli.views import counts_line, status_view, tasks_table
from pepper.core import TaskOrchestrator
from pepper.model.status import TaskStatus
from pepper.model.task import TaskState

#: People say "running" for ``in_progress``: accepted as another name for it.
_STATE_ALIASES = {"running": TaskState.IN_PROGRESS.value}


@click.command()
@click.argument("task_type")
@click.option("--id", "task_id", metavar="ID", help="Task id (default: a generated one). Must be unique.")
@click.option(
    "--priority",
    default="normal",
    show_default=True,
    metavar="LEVEL",
    help="critical, high, medium, normal, low, or an integer (higher runs first).",
)
@click.option("--depends-on", "dependencies", multiple=True, metavar="ID", help="Run only after task ID completed.")
@click.option(
    "--input",
    "input_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="One input; VALUE is JSON if it parses (n=3, ok=true), else text.",
)
@click.option("--inputs", "inputs_json", metavar="JSON", help="All inputs as a JSON object (--input entries win).")
@click.option("--agent", metavar="AGENT_ID", help="Run only on this agent.", callback=not_empty)
@click.option("--skill", "skills", multiple=True, metavar="NAME", help="Run only on an agent with this skill.")
@click.option("--timeout", metavar="SECONDS", help="Stop an attempt after this long (e.g. 90, 30s, 15m).")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Extra attempts on failure.",
)
@click.option(
    "--delay",
    metavar="DURATION",
    help="Start no sooner than this long from now, e.g. 30s, 15m, 2h (or seconds).",
)
@click.option(
    "--not-before",
    metavar="TIME",
    help="Start no sooner than this time: ISO 8601 with its UTC offset (2026-03-01T09:00:00+01:00, ...Z) or seconds "
    "since the epoch.",
)
@click.option("--wait", is_flag=True, help="Wait for the task to finish and show how it ended.")
@click.option(
    "--wait-timeout",
    type=click.STRING,
    callback=check_seconds,
    metavar="SECONDS",
    help="Stop waiting after this long (exit 2; the task stays queued).",
)
@json_option
@db_option
@server_option
def submit(
    task_type: str,
    task_id: str | None,
    priority: str,
    dependencies: tuple[str, ...],
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    agent: str | None,
    skills: tuple[str, ...],
    timeout: str | None,
    retries: int,
    delay: str | None,
    not_before: str | None,
    wait: bool,
    wait_timeout: float | None,
    as_json: bool,
    db: str | None,
) -> None:
    """Add a task to the queue and print its id.

    A worker (`pepper worker`) with an agent for TASK_TYPE runs it once every
    task it depends on has completed.

    \b
    Examples:
      pepper submit review --input path=README.md --priority high
      pepper submit publish --depends-on review-1 --retries 2 --wait
      pepper submit report --delay 30m
    """
    inputs = parse_inputs(input_pairs, inputs_json)
    with open_runtime(db, create=True) as runtime:
        orchestrator = TaskOrchestrator(runtime)
        task = orchestrator.submit_task(
            task_id=task_id,
            task_type=task_type,
            priority=parse_priority(priority),
            dependencies=list(dependencies),
            inputs=inputs,
            agent=agent,
            requirements={"skills": list(skills)} if skills else None,
            timeout=timeout,
            max_retries=retries,
            delay=delay,
            not_before=not_before,
        )
        if not (wait or wait_timeout is not None):
            if as_json:
                print_json(orchestrator.get_task_status(task.task_id).to_dict())
            else:
                click.echo(task.task_id)
            return
        final = _wait_for(orchestrator, task.task_id, wait_timeout, db)
    _show_status(final, as_json, db)


def _wait_for(orchestrator: TaskOrchestrator, task_id: str, timeout: float | None, db: str | None) -> TaskStatus:
    """Wait for the end of the task, telling the user (on stderr) what it waits for."""
    err = make_console(stderr=True)
    status = orchestrator.get_task_status(task_id)
    if not status.is_final:
        err.print(Text(f"submitted {task_id}; waiting for it to finish (Ctrl-C stops waiting, not the task)"))
        for reason in status.waiting_on:
            err.print(Text(f"  waiting: {reason.message}", style="dim"))
    try:
        result = orchestrator.wait(task_id, timeout=timeout)
    except KeyboardInterrupt:
        err.print(Text(f"\nstopped waiting; {task_id} {_standing(orchestrator, task_id)} "
                       f"(pepper status {task_id}{where_hint(db)})"))  # fmt: skip
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    assert isinstance(result, TaskStatus)
    return result


def _standing(orchestrator: TaskOrchestrator, task_id: str) -> str:
    """``is still queued``, ``is running``, ``has completed``...: where the task stands now."""
    state = orchestrator.get_task_status(task_id).state
    if state is TaskState.IN_PROGRESS:
        return "is running"
    if state.is_final:
        return f"has {state.value}"
    return "is still queued" if state is TaskState.PENDING else f"is still {state_label(state)}"


def _show_status(status: TaskStatus, as_json: bool, db: str | None, traceback: bool = False) -> None:
    """Print one task's status and exit 1 if it failed or was cancelled."""
    if as_json:
        print_json(status.to_dict())
    else:
        make_console().print(status_view(status, time.time(), traceback=traceback, where=where_hint(db)))
    code = exit_code_for(status)
    if code != EXIT_OK:
        raise click.exceptions.Exit(code)


@click.command()
@click.argument("task_id", metavar="TASK")
@click.option("--traceback", is_flag=True, help="Show the full traceback of a failed task.")
@json_option
@db_option
@server_option
def status(task_id: str, traceback: bool, as_json: bool, db: str | None) -> None:
    """Show one task: its state, result or error, and why it is waiting.

    Exits with 1 when the task failed or was cancelled, so
    `pepper status build && deploy` only deploys after a successful build.
    """
    with open_runtime(db) as runtime:
        current = TaskOrchestrator(runtime).get_task_status(task_id)
    _show_status(current, as_json, db, traceback)


@click.command(name="tasks")
@click.option(
    "--state",
    metavar="STATE",
    help=f"Only tasks in this state: {', '.join(TaskState)} (running means in_progress).",
    callback=not_empty,
)
@limit_option(50, "Show at most N tasks")
@json_option
@db_option
@server_option
def list_tasks(state: str | None, limit: int, as_json: bool, db: str | None) -> None:
    """List tasks, newest first, with a count per state."""
    state = _STATE_ALIASES.get(state, state) if state else None
    with open_runtime(db) as runtime:
        statuses = TaskOrchestrator(runtime).list_tasks(state=state, limit=limit)
        # a server offers no count per state: the listed tasks' counts stand in for them
        counts = Counter(s.state.value for s in statuses) if runtime.server else runtime.store.count_by_state()
    if as_json:
        print_json([s.to_dict() for s in statuses])
        return
    console = make_console()
    if not statuses:
        which = f"{state_label(state)} " if state else ""
        console.print(Text(f"No {which}tasks yet." if not state else f"No {which}tasks."))
        if not counts:
            console.print(Text(f"Add one with: pepper submit TASK_TYPE{where_hint(db)}", style="dim"))
        return
    console.print(tasks_table(statuses, time.time()))
    console.print(Text(""))
    console.print(counts_line(counts, len(statuses), TaskState(state) if state else None))


@click.command()
@click.argument("task_id", metavar="TASK")
@click.option("--reason", metavar="TEXT", help="Why (kept with the task; shown by `pepper status`).")
@click.option("--wait", is_flag=True, help="If a worker runs the task, wait until it ends and say how.")
@click.option(
    "--wait-timeout",
    type=click.STRING,
    callback=check_seconds,
    metavar="SECONDS",
    help="Stop waiting after this long (exit 2; the request to stop stands).",
)
@json_option
@db_option
@server_option
def cancel(
    task_id: str, reason: str | None, wait: bool, wait_timeout: float | None, as_json: bool, db: str | None
) -> None:
    """Cancel a task and every task that depends on it.

    A task that is running is asked to stop: its worker stops it when it next
    reads the database. If the task finishes first, it keeps that outcome and
    the tasks that depend on it go on as after any end (`--wait` tells which).
    Cancelling a task that already finished changes nothing (and is not an
    error).
    """
    with open_runtime(db) as runtime:
        orchestrator = TaskOrchestrator(runtime)
        before = orchestrator.get_task_status(task_id)
        cancelled = orchestrator.cancel_task(task_id, reason=reason)
        after = orchestrator.get_task_status(task_id)
        # running as it was cancelled: its worker was asked to stop it (and may have done so already)
        asked = cancelled and TaskState.IN_PROGRESS in (before.state, after.state)
        if asked and (wait or wait_timeout is not None):
            ended = orchestrator.wait(task_id, timeout=wait_timeout)
            assert isinstance(ended, TaskStatus)
            after = ended
    console = text_console(as_json, {"task_id": task_id, "cancelled": cancelled, "state": after.state.value})
    if console is None:
        return
    if not cancelled:
        console.print(Text(f"{task_id} already finished ({state_label(after.state)}); nothing to cancel"))
    elif after.state is TaskState.IN_PROGRESS:
        see = f"pepper status {task_id}{where_hint(db)}"
        console.print(Text(f"asked the worker running {task_id} to stop it; if it finishes first, it keeps that "
                           f"outcome and the tasks that depend on it go on ({see})"))  # fmt: skip
    elif after.state is TaskState.CANCELLED:
        stopped = "stopped and cancelled" if asked else "cancelled"
        console.print(Text(f"{stopped} {task_id} (tasks that depend on it are cancelled too)"))
    else:
        console.print(Text(f"{task_id} ended {state_label(after.state)} before its worker stopped it; "
                           "the tasks that depend on it go on as after any such end"))  # fmt: skip
