"""What every command shares: the ``--db`` and ``--json`` options, the runtime, exit codes."""

from __future__ import annotations

import importlib.util
import logging
import math
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

import pepper

log = logging.getLogger("pepper.cli")

if TYPE_CHECKING:
    from pepper.model.status import TaskStatus

#: Exit codes: success, a task that failed or was cancelled, bad input (any other pepper error).
EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INPUT = 2
#: Stopped with Ctrl-C while waiting.
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])
#: Where a command's context records the database file it opened.
DB_PATH = "pepper.db_path"

_DB_HELP = (
    "The database shared by pepper commands and workers: a SQLite file (its folder must exist) or a "
    "PostgreSQL URL (postgresql://user:password@host:5432/name) for workers on several machines. "
    "Default: $PEPPER_DB, else `db` in ./pepper.toml, else .pepper/pepper.db (its folder is made for you)."
)


def db_option(function: F) -> F:
    """``--db PATH``, after the command or before it (``pepper --db x.db tasks``).

    ``None`` lets the runtime resolve it ($PEPPER_DB, pepper.toml, the default).
    """
    return click.option("--db", "db", metavar="PATH|URL", default=None, help=_DB_HELP, callback=_inherit_db)(function)


def _inherit_db(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None and ctx.parent is not None:
        return ctx.parent.params.get("db")
    return value


#: Where a command's context records the server it was given (``--server`` or ``$PEPPER_SERVER``).
SERVER = "pepper.server"
#: ... and the one given as ``--server`` on the command line.
SERVER_GIVEN = "pepper.server_given"

_SERVER_HELP = (
    "Talk to the pepper server at this URL (e.g. http://127.0.0.1:8080) instead of a database; the token comes "
    "from $PEPPER_TOKEN. Default: $PEPPER_SERVER. Not with --db."
)


def server_option(function: F) -> F:
    """``--server URL`` (or ``$PEPPER_SERVER``): the command speaks to a server; ``open_runtime`` decides."""
    return click.option("--server", metavar="URL", envvar="PEPPER_SERVER", default=None, help=_SERVER_HELP,
                        expose_value=False, callback=_remember_server)(function)  # fmt: skip


def _remember_server(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    typed = bool(param.name) and ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
    if typed and value is not None and not value.strip():  # an empty $PEPPER_SERVER means none; a typed one, a slip
        raise click.BadParameter("give the server's URL, e.g. http://127.0.0.1:8080 (or leave --server out to use "
                                 "the database)")  # fmt: skip
    if value:
        ctx.meta[SERVER] = value
        if typed:
            ctx.meta[SERVER_GIVEN] = value  # to repeat in suggested commands ($PEPPER_SERVER applies by itself)


#: ``model.units.MOST_LISTED``, written out: ``pepper --help`` loads no module beyond the command line's own.
MOST_LISTED = 1_000_000


def limit_option(default: int, help: str) -> Callable[[F], F]:
    """``--limit N``: a whole number from 1 to 1,000,000, checked by ``check_limit`` (the rule of every limit), so
    a bad one is refused with the same words as by the Python API and the HTTP API."""
    return click.option("--limit", type=click.STRING, default=str(default), show_default=True, metavar="N",
                        help=f"{help} (1 to {MOST_LISTED:,}).", callback=_check_limit)  # fmt: skip


def _check_limit(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from pepper.model.units import check_limit

    try:
        number: object = int(value)
    except ValueError:
        number = value  # not a whole number: check_limit says so, naming it
    return check_limit(number)


def check_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """The callback of an option giving a number of seconds (``type=click.STRING``): a finite number, 0 or more,
    else refused in one line (exit 2) as the option is read, before the command does anything."""
    from pepper.errors import ValidationError

    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        name = param.opts[0] if param.opts else param.name
        raise ValidationError(f"{name} must be a number of seconds, 0 or more, got {value!r}", field=param.name)
    return number


def not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The callback of an option an empty value would turn into something else than a choice (every state, every
    component, the current folder): refused in one line (exit 2) as the option is read."""
    from pepper.errors import ValidationError

    for given in value if isinstance(value, tuple) else (value,):
        if given is not None and not str(given).strip():
            name = param.opts[0] if param.opts else param.name
            advice = "give a value" if param.required else "leave it out, or give a value"
            raise ValidationError(f"{name} was given empty: {advice}", field=param.name)
    return value


def json_option(function: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(function)


@contextmanager
def open_runtime(db: str | None, *, create: bool = False, **settings: Any) -> Iterator[pepper.Runtime]:
    """A runtime on ``db`` (or, given ``--server``, one speaking to that server), always closed afterwards;
    commands that only read never create a database. ``settings`` given as None are left to the configuration."""
    ctx = click.get_current_context(silent=True)
    server = ctx.meta.get(SERVER) if ctx is not None else None
    if server:
        if db:
            raise click.UsageError("give --server or --db, not both: with a server, its machine has the database")
        remote = pepper.connect(server)
        try:
            yield remote
        finally:
            remote.close()
        return
    runtime = pepper.Runtime(db=db, create=create, **{k: v for k, v in settings.items() if v is not None})
    if ctx is not None:  # for the message if the file turns out to be damaged (see cli.main)
        ctx.meta[DB_PATH] = runtime.settings.db
    try:
        yield runtime
    except BaseException:
        try:  # the command's own error is the one to tell
            runtime.close()
        except pepper.PepperError as exc:
            log.warning("closing the runtime after an error: %s", exc)
        raise
    runtime.close()


def exit_code_for(status: TaskStatus) -> int:
    """1 when the task failed, was cancelled or is parked in the dead-letter queue, else 0."""
    from pepper.model.task import TaskState

    return EXIT_TASK_FAILED if status.state in (TaskState.FAILED, TaskState.CANCELLED, TaskState.PARKED) else EXIT_OK


def db_hint(db: str | None) -> str:
    """`` --db PATH`` to repeat in a suggested command, when the user gave one. Only for a suggested command
    that takes no ``--server`` (``pepper worker``, ``pepper token``, ...): any other takes ``where_hint``."""
    from pepper.store.location import redact

    return f" --db {shlex.quote(redact(db))}" if db else ""  # a password shows as *** (type it yourself)


def where_hint(db: str | None) -> str:
    """`` --server URL`` to repeat in a suggested command that takes it, when the user typed one (never the
    token: that comes from $PEPPER_TOKEN); else ``db_hint(db)``. Every hint naming a command that takes
    ``--server`` uses this one, so that copying it reaches the same place."""
    from pepper.store.location import redact

    ctx = click.get_current_context(silent=True)
    server = ctx.meta.get(SERVER_GIVEN) if ctx is not None else None
    return f" --server {shlex.quote(redact(server))}" if server else db_hint(db)  # a password shows as ***


def check_gantt_path(gantt: str | Path | None, *inputs: str | Path | None) -> None:
    """A ``--gantt`` target must be a ``.png`` file, and never one of the command's own input files; its folder
    is created now (it is an output, like the chart itself)."""
    if gantt is None:
        return
    target = Path(gantt)
    if importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter(
            "drawing charts needs matplotlib: pip install 'pepper[charts]'", param_hint="'--gantt'"
        )
    if target.suffix.lower() != ".png":
        raise click.BadParameter(f"a Gantt chart is a PNG image: name it ….png, got {str(gantt)!r}",
                                 param_hint="'--gantt'")  # fmt: skip
    for given in inputs:
        if given is not None and target.exists() and target.resolve() == Path(given).resolve():
            raise click.BadParameter(f"{str(gantt)!r} is this command's input; the chart would overwrite it",
                                     param_hint="'--gantt'")  # fmt: skip
    try:  # now rather than after the run: an output folder that cannot be made is said at once
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot create the folder of {str(gantt)!r}: {exc.strerror}",
                                 param_hint="'--gantt'") from None  # fmt: skip


@contextmanager
def left_out_held() -> Iterator[None]:
    """Hold back the log records (with their tracebacks) of agents left out as the engine starts within: the
    command tells them in a line of its own."""
    from pepper.core.agent_failures import AGENT_LEFT_OUT

    def keep(record: logging.LogRecord) -> bool:
        return not hasattr(record, AGENT_LEFT_OUT)

    logger = logging.getLogger("pepper")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def start_engine(runtime: pepper.Runtime, who: str) -> None:
    """Start the engine with every agent registered; one whose start-up fails stops the process (``who``: the
    worker, the server) in one line on stderr, exit 2."""
    from pepper.errors import AgentStartError

    with left_out_held():
        try:
            runtime.start()
        except AgentStartError as exc:
            told = "; ".join(f"agent {agent_id!r} could not start ({why})" for agent_id, why in exc.failures.items())
            stopped = f"{told}; the {who} stopped. Fix the cause and start it again"
            raise AgentStartError(exc.failures, stopped) from None
