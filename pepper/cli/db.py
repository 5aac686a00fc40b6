"""``pepper db info`` (which store, its schema and size, what it holds) and ``pepper db copy`` (SQLite to
PostgreSQL and back).

Both open the database themselves (a SQLite path or a PostgreSQL URL), without a runtime: they start no
engine and register no worker, so they describe or copy the database as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from pepper.cli.common import db_option, json_option
from pepper.cli.render import make_console, plural, print_json, state_text
from pepper.core.config import check_database_url, load_settings
from pepper.errors import ConfigError
from pepper.store import catalog
from pepper.store.copy import CopyProgress, copy_database, same_database
from pepper.store.info import DatabaseInfo, database_info
from pepper.store.location import check_location, open_store, redact
from pepper.store.sql_store import SqlStore

#: Copies of at least this many rows show a progress bar (on a terminal).
PROGRESS_FROM = 10_000


@click.group("db")
@db_option
def db_group(db: str | None) -> None:
    """Describe a pepper database, or copy one into another (SQLite <-> PostgreSQL).

    \b
    Examples:
      pepper db info
      pepper db info --db postgresql://pepper:secret@db.example.com/pepper
      pepper db copy .pepper/pepper.db postgresql://pepper:secret@db.example.com/pepper
      pepper db copy postgresql://pepper:secret@db.example.com/pepper backup.db
    """


@contextmanager
def opened(db: str, *, create: bool) -> Iterator[SqlStore]:
    """The store at ``db`` (a file path or URL), closed afterwards."""
    settings = load_settings({"db": db})
    store = open_store(settings.db, create=create, busy_timeout=settings.busy_timeout)
    try:
        yield store
    finally:
        store.close()


@db_group.command("info")
@json_option
@db_option
def info(as_json: bool, db: str | None) -> None:
    """Show which store the database is (SQLite file or PostgreSQL server), its schema version, its size,
    and how many tasks, runs, live workers and agents it holds.

    The password of a PostgreSQL URL is never shown.
    """
    settings = load_settings({"db": db})
    with opened(settings.db, create=False) as store:
        report = database_info(store, time.time(), settings.visibility_timeout)
    if as_json:
        print_json(report.to_dict())
        return
    make_console().print(info_table(report))


def info_table(report: DatabaseInfo) -> Table:
    """One line per fact: store, schema, size, tasks by state, runs, workers and agents."""
    grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("store", Text.assemble(report.kind, "  ", (report.location, "cyan")))
    schema = Text(str(report.schema_version))
    if report.schema_version == report.latest_schema:
        schema.append("  (the newest this pepper knows)", style="dim")
    else:
        schema.append(f"  (this pepper knows up to {report.latest_schema})", style="yellow")
    grid.add_row("schema", schema)
    grid.add_row("size", size_text(report))
    tasks = Text(str(report.task_count))
    for i, (state, n) in enumerate(report.tasks.items()):
        tasks.append(": " if i == 0 else ", ")
        tasks.append_text(Text.assemble(f"{n} ", state_text(state)))
    grid.add_row("tasks", tasks)
    grid.add_row("runs", str(report.runs))
    grid.add_row("workers", f"{report.workers_alive} alive")
    grid.add_row("agents", f"{report.agents} (on live workers)")
    return grid


def size_text(report: DatabaseInfo) -> str:
    if report.size_mb is None:
        return "- (in memory)"
    text = megabytes(report.size_mb)
    if report.wal_mb is not None:
        text += f" + {megabytes(report.wal_mb)} write-ahead log"
    return text


def megabytes(size_mb: float) -> str:
    """``1.5 MB``, or ``96 KB`` below a megabyte."""
    return f"{size_mb:.1f} MB" if size_mb >= 1 else f"{size_mb * 1024:.0f} KB"


@db_group.command("copy")
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@click.option(
    "--force",
    is_flag=True,
    help="Replace the destination's content even if it holds something (tasks, runs, tokens, schedules...).",
)
@json_option
def copy(src: str, dst: str, force: bool, as_json: bool) -> None:
    """Copy pepper's whole state from SRC to DST: tasks, attempts, errors, runs, feedback, alerts, workers,
    agents, the resource pool, leases and usage samples.

    SRC and DST are each a SQLite file or a PostgreSQL URL (postgresql://user:password@host:5432/name),
    so a SQLite state moves to PostgreSQL, and back. DST is created (and its schema brought up to date)
    if needed; it must hold nothing the copy would delete (tasks, runs, tokens, schedules, alerts...:
    it is refused, naming what it holds), unless --force, which replaces its content. The copy is one
    transaction on DST: a copy that fails leaves DST as it was. Stop SRC's workers first: while the copy
    reads SRC, its writers wait.

    \b
    Examples:
      pepper db copy .pepper/pepper.db postgresql://pepper:secret@db.example.com/pepper
      pepper db copy postgresql://pepper:secret@db.example.com/pepper backup.db --force
    """
    for label, given in (("SRC", src), ("DST", dst)):
        with _named(label):
            check_location(given)
            check_database_url(given)
    if same_database(src, dst):
        raise ConfigError(f"SRC and DST are one database ({redact(src)}); give another destination", field="dst")
    started = time.monotonic()
    with ExitStack() as stack:
        with _named("SRC"):
            source = stack.enter_context(opened(src, create=False))
        with _named("DST"):
            target = stack.enter_context(opened(dst, create=True))
        show = stack.enter_context(progress_bar())
        copied = copy_database(source, target, replace=force, progress=show)
        where = (f"{source.kind} {catalog.location(source)}", f"{target.kind} {catalog.location(target)}")
    total = sum(copied.values())
    if as_json:
        print_json({"source": where[0], "destination": where[1], "rows": total, "tables": copied})
        return
    console = make_console()
    grid = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    grid.add_column("TABLE", no_wrap=True)
    grid.add_column("ROWS", justify="right")
    for table, rows in copied.items():
        grid.add_row(table, str(rows))
    console.print(grid)
    console.print(Text(f"copied {plural(total, 'row')} from {where[0]} to {where[1]} "
                       f"in {time.monotonic() - started:.1f}s"))  # fmt: skip


@contextmanager
def _named(label: str) -> Iterator[None]:
    """A refusal of a database given as SRC or DST names it so, not as --db (the option of the other commands)."""
    try:
        yield
    except ConfigError as exc:
        told = str(exc)
        for said in ("--db ", "setting 'db' ", "the database given "):
            if told.startswith(said):
                raise ConfigError(f"{label} {told[len(said) :]}", field=label.lower()) from None
        raise


@contextmanager
def progress_bar() -> Iterator[Callable[[CopyProgress], None]]:
    """A callback drawing the copy's progress on stderr, for copies of ``PROGRESS_FROM`` rows or more (and only
    on a terminal); a bar appears at the first report of such a copy and goes away at the end."""
    console = make_console(stderr=True)
    bars: list[tuple[Progress, TaskID]] = []

    def show(step: CopyProgress) -> None:
        if not console.is_terminal or step.total < PROGRESS_FROM:
            return
        if not bars:
            progress = Progress(
                TextColumn("copying {task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            progress.start()
            bars.append((progress, progress.add_task(step.table, total=step.total)))
        progress, task = bars[0]
        progress.update(task, completed=step.rows, description=step.table)

    try:
        yield show
    finally:
        for progress, _task in bars:
            progress.stop()
