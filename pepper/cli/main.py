"""The ``pepper`` command: a group of subcommands, and how errors become exit codes."""

from __future__ import annotations

import difflib
import io
import sys
from typing import Any

import click

import pepper
from pepper.cli.commands import COMMANDS, load_command, placeholder
from pepper.cli.common import DB_PATH, EXIT_BAD_INPUT, EXIT_INTERRUPTED, db_option

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PepperGroup(click.Group):
    """Lists its subcommands in their order without loading them (each one's module is imported only when it
    runs, or when its own help is asked for); turns pepper errors (and a damaged database) into ``error: ...``
    and exit 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The subcommand ``args`` names; a mistyped one is refused with the closest name, if one is close."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            close = difflib.get_close_matches(args[0], self.list_commands(ctx), n=1) if args else []
            if close and exc.message.startswith("No such command"):
                more = f" Did you mean {close[0]!r}? `pepper --help` lists the commands."
                raise click.UsageError(exc.message + more, ctx) from None
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name) or placeholder(name)
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C in a command that does not wait (those that wait say what they stopped)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            error = _bad_input(exc, ctx)
            if error is None and _store_failure(exc):
                error = f"the database failed: {exc}"
            if error is None:
                raise
            from pepper.cli.render import error_line, make_console

            make_console(stderr=True).print(error_line(error))
            raise click.exceptions.Exit(EXIT_BAD_INPUT) from None


def _bad_input(exc: Exception, ctx: click.Context) -> str | None:
    """What to tell the user about ``exc`` when it is bad input (a pepper error, a damaged database), else None."""
    from pepper.errors import PepperError

    if isinstance(exc, PepperError):
        return str(exc)
    if "sqlite3" in sys.modules and isinstance(exc, sys.modules["sqlite3"].DatabaseError):  # met on any query
        from pepper.store.connection import damaged

        error = damaged(exc, ctx.meta.get(DB_PATH) or ctx.params.get("db") or "the database")
        return None if error is None else str(error)
    return None


def _store_failure(exc: Exception) -> bool:
    """Whether ``exc`` is the database's own (SQLite's or psycopg's), which the store types; a last guard."""
    for name in ("sqlite3", "psycopg"):
        module = sys.modules.get(name)
        if module is not None and isinstance(exc, module.Error):
            return True
    return False


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
    input (unknown task, bad option, invalid agent or workflow file...) or a
    database that cannot be used now (locked, read-only, full); 130 stopped
    with Ctrl-C.
    """


def main() -> None:
    """Entry point of the ``pepper`` console script and of ``python -m pepper``."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # a character the terminal cannot show becomes '?'
            stream.reconfigure(errors="replace")
    cli(prog_name="pepper")
