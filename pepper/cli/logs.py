"""``pepper logs``: what a task's attempt wrote (a command's stderr, a Python agent's log records)."""

from __future__ import annotations

import sys

import click

from pepper.cli.common import EXIT_INTERRUPTED, db_option, json_option, open_runtime, server_option, where_hint
from pepper.cli.render import print_json
from pepper.core.logs import TaskLogs


@click.command()
@click.argument("task_id", metavar="TASK")
@click.option("--attempt", type=click.IntRange(min=1), metavar="N", help="Show attempt N (default: the latest).")
@click.option(
    "--follow", "-f", is_flag=True,
    help="Keep showing lines as the attempt writes them, until it ends (waits for it to start if it has not).",
)  # fmt: skip
@json_option
@db_option
@server_option
def logs(task_id: str, attempt: int | None, follow: bool, as_json: bool, db: str | None) -> None:
    """Show what an attempt of TASK wrote: a command agent's stderr, a Python agent's log records and
    `task.log(...)` lines.

    Of a long log the first and the last part are kept (`task_log_limit`, 1 MiB per attempt by default); the
    middle shows as `... N bytes cut ...`. With --follow, Ctrl-C stops following (exit 130), not the task.
    """
    with open_runtime(db) as runtime:
        reader = TaskLogs(runtime)
        if not follow:
            found = reader.get(task_id, attempt)
            if as_json:
                print_json(found.to_dict())
            elif found.text:
                _write(found.text)
            elif found.attempt == 0 and found.ended:  # said on stderr: stdout stays the log alone
                click.echo(f"{task_id} ended without running, so it wrote nothing", err=True)
            elif found.attempt == 0:
                click.echo(f"{task_id} has not started yet, so it wrote nothing; `pepper logs {task_id} --follow"
                           f"{where_hint(db)}` waits for it", err=True)  # fmt: skip
            else:
                click.echo(f"attempt {found.attempt} of {task_id} wrote nothing (no stderr, log records or "
                           "task.log lines)", err=True)  # fmt: skip
            return
        try:
            if reader.get(task_id, attempt).attempt == 0:  # said on stderr: stdout stays the log alone
                click.echo(f"{task_id} has not started yet; waiting for it (Ctrl-C stops waiting)", err=True)
            for part in reader.follow(task_id, attempt):
                if as_json:
                    print_json(part.to_dict())
                else:
                    _write(part.text)
        except KeyboardInterrupt:
            click.echo(f"\nstopped following; {task_id} goes on (`pepper status {task_id}{where_hint(db)}`)", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
