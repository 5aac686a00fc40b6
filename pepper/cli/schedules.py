"""``pepper schedules [list | add | pause | resume | delete]``: workflows that start on their own."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from pepper.cli.common import db_hint, db_option, json_option, open_runtime
from pepper.cli.inputs import parse_inputs
from pepper.cli.render import listing_console, make_console, print_json
from pepper.cli.run_setup import refuse_missing_inputs
from pepper.core.schedules import delete_schedule, pause_schedule, resume_schedule, schedule, schedules
from pepper.model.schedule import ScheduleRecord, local_time
from pepper.workflow_file import parse_workflow_file


@click.group("schedules", invoke_without_command=True)
@json_option
@db_option
@click.pass_context
def schedules_group(ctx: click.Context, as_json: bool, db: str | None) -> None:
    """List the schedules (with no subcommand), or add, pause, resume or delete one.

    A schedule starts a run of a workflow at each tick of a cron expression
    (in its time zone) or of an interval. Schedules live in the database:
    every `pepper worker` on it sees them, and each tick starts one run,
    named in `pepper runs` under SCHEDULE.

    \b
    Examples:
      pepper schedules add nightly.yaml --cron "0 2 * * *" --timezone Europe/Paris
      pepper schedules add poll.yaml --name poll --every 10m
      pepper schedules
      pepper schedules pause nightly
    """
    if ctx.invoked_subcommand is None:
        _list(as_json, db)


def _db(db: str | None) -> str | None:
    """``--db`` of the subcommand, else the one given before it (``pepper schedules --db X pause NAME``)."""
    parent = click.get_current_context().parent
    return db if db is not None or parent is None else parent.params.get("db")


def _list(as_json: bool, db: str | None) -> None:
    with open_runtime(db, create=False) as runtime:
        records = schedules(runtime)
    empty = Text(f"No schedules yet. Add one with: pepper schedules add workflow.yaml --cron '0 2 * * *'{db_hint(db)}")
    console = listing_console(as_json, records, ScheduleRecord.to_dict, empty)
    if console is not None:
        console.print(_table(records))


def _table(records: list[ScheduleRecord]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("NAME", "WORKFLOW", "WHEN", "NEXT RUN", "CATCH UP", "LAST RUN"):
        table.add_column(column, no_wrap=True)
    for r in records:
        spec = r.spec
        table.add_row(
            Text(r.name),
            Text(spec.workflow),
            Text(spec.when),
            Text("paused", style="yellow") if r.paused else Text(local_time(r.next_fire_at, spec.timezone)),
            Text("yes" if spec.catch_up else "no"),
            Text(r.last_run_id or "-", style="dim" if r.last_run_id is None else ""),
        )
    return table


@schedules_group.command("add")
@click.argument("workflow_file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--name", metavar="NAME", help="The schedule's name (default: the workflow's name).")
@click.option("--cron", metavar="EXPR", help="Five cron fields, e.g. '0 2 * * *' (02:00 every day).")
@click.option("--every", metavar="DURATION", help="A fixed interval instead of cron, e.g. 10m, 1h.")
@click.option("--timezone", metavar="ZONE", help="The time zone cron is read in (default: the file's, else UTC).")
@click.option(
    "--catch-up/--no-catch-up", default=None, help="Run each tick missed while no worker ran (default: skip)."
)
@click.option("--input", "input_pairs", multiple=True, metavar="KEY=VALUE", help="An input of every run (repeatable).")
@click.option("--inputs", "inputs_json", metavar="JSON", help="Inputs of every run as a JSON object.")
@json_option
@db_option
def add(
    workflow_file: str, name: str | None, cron: str | None, every: str | None, timezone: str | None,
    catch_up: bool | None, input_pairs: tuple[str, ...], inputs_json: str | None, as_json: bool, db: str | None,
) -> None:  # fmt: skip
    """Add (or replace) a schedule that starts FILE's workflow; the file's own `schedule:` fills in the rest.

    A workflow whose first steps read an input that neither the file's `inputs:` nor --input/--inputs give is
    refused, as `pepper run` refuses it: each of its runs would fail to start.
    """
    inputs = parse_inputs(input_pairs, inputs_json)
    parsed = parse_workflow_file(Path(workflow_file), with_agents=False)
    refuse_missing_inputs(parsed, {**parsed.inputs, **inputs})  # each tick would fail as `pepper run` would
    with open_runtime(_db(db), create=True) as runtime:
        named = parsed.spec.name if name is None else name  # an empty --name is refused, not replaced
        record = schedule(named, workflow_file, cron=cron, every=every, inputs=inputs, catch_up=catch_up,
                          timezone=timezone, runtime=runtime)  # fmt: skip
    if as_json:
        print_json(record.to_dict())
        return
    following = local_time(record.next_fire_at, record.spec.timezone)
    make_console().print(Text(
        f"Schedule {record.name!r}: {record.spec.when}; next run {following}. Workers (pepper worker) on this "
        "database start its runs."
    ))  # fmt: skip


@schedules_group.command("pause")
@click.argument("name")
@db_option
def pause(name: str, db: str | None) -> None:
    """Stop NAME's ticks until it is resumed."""
    with open_runtime(_db(db), create=False) as runtime:
        pause_schedule(name, runtime)
    make_console().print(Text(f"Schedule {name!r} paused."))


@schedules_group.command("resume")
@click.argument("name")
@db_option
def resume(name: str, db: str | None) -> None:
    """Start NAME again from its next tick (ticks while it was paused do not run)."""
    with open_runtime(_db(db), create=False) as runtime:
        record = resume_schedule(name, runtime)
    make_console().print(
        Text(f"Schedule {name!r} resumed; next run {local_time(record.next_fire_at, record.spec.timezone)}.")
    )


@schedules_group.command("delete")
@click.argument("name")
@db_option
def delete(name: str, db: str | None) -> None:
    """Remove NAME (the runs it started are kept)."""
    with open_runtime(_db(db), create=False) as runtime:
        delete_schedule(name, runtime)
    make_console().print(Text(f"Schedule {name!r} deleted."))
