"""``pepper worker`` (run agents on the queue) and ``pepper agents`` (who is online)."""

from __future__ import annotations

import errno
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.text import Text

import pepper
from pepper.cli.common import (
    EXIT_INTERRUPTED,
    check_seconds,
    db_hint,
    db_option,
    json_option,
    not_empty,
    open_runtime,
    start_engine,
)
from pepper.cli.render import listing_console, make_console, plural
from pepper.cli.reporter import Reporter
from pepper.cli.views import agents_table
from pepper.core.alert_rules import configured_alerts, with_rules_file
from pepper.core.online import AgentStanding, agent_dict, agent_standing
from pepper.core.prometheus import MetricsServer, serve_metrics
from pepper.errors import PepperError
from pepper.store.location import redact

_POLL = 0.1
_LOOK = 0.05  # seconds between two looks at a stop flag set by a signal


@click.command()
@click.option(
    "--agents",
    "agents_path",
    required=True,
    metavar="PATH",
    type=click.Path(),
    help="YAML file of agents, or a folder of them.",
    callback=not_empty,
)
@click.option(
    "--until-idle",
    is_flag=True,
    help="Stop once there is no work left for these agents: no task of theirs running, ready, waiting for a "
    "retry, or delayed (however long the delay).",
)
@click.option(
    "--idle-grace",
    type=click.STRING,
    callback=check_seconds,
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --until-idle: how long to stay without work left before stopping.",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not print a line per task.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while the worker runs: this worker's task "
    "counters and latency histograms (with --database-metrics, the database's figures too).",
)
@click.option(
    "--database-metrics",
    is_flag=True,
    help="With --metrics-port: also export the figures read from the shared database (tasks by state, runs, "
    "dead letters, the pool, workers). Let one process export them, not every worker.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="Where agents that name no executor run: here (local, the default) or as Ray actors (ray).",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    help="With Ray: the cluster to join ('auto', or 'ray://host:10001'); without it a local Ray is started.",
)
@click.option(
    "--alerts",
    "alerts_path",
    metavar="FILE",
    type=click.Path(),
    help="A YAML file of alert rules (a list of rules as in pepper.toml's [[alerts]]), evaluated with those of "
    "pepper.toml.",
)
@db_option
def worker(
    agents_path: str,
    until_idle: bool,
    idle_grace: float,
    quiet: bool,
    metrics_port: int | None,
    executor: str | None,
    ray_address: str | None,
    database_metrics: bool,
    alerts_path: str | None,
    db: str | None,
) -> None:
    """Run the agents of a YAML file on queued tasks until stopped.

    Prints a line as each task starts and ends. Ctrl-C (or SIGTERM) stops
    taking new tasks and lets running ones finish first. Run several workers
    on the same --db to share the work.

    \b
    An agents file looks like:
      - agent_id: reviewer
        task_types: [review]
        command: python3 /opt/tools/review.py
      - agent_id: summarizer
        task_types: [summarize]
        skills: [markdown]
        function: my_agents:summarize

    A command gets the task as JSON on stdin (and its inputs in
    $PEPPER_TASK_INPUTS); what it prints is the result (JSON if it parses); a
    non-zero exit fails the task. A function (here in my_agents.py, beside the
    YAML file) receives the task (task.inputs, task.dependency_results) and
    returns the result.
    """
    if database_metrics and metrics_port is None:
        raise click.UsageError("--database-metrics exports on the metrics server: give --metrics-port PORT too")
    console = make_console()
    reporter = Reporter(console, quiet=quiet, where=db_hint(db))
    with _stop_signals() as stopping:
        try:
            grace = idle_grace if until_idle else None
            where: dict[str, Any] = {"executor": executor, "ray_address": ray_address}
            if alerts_path:
                where["alerts"] = with_rules_file(configured_alerts(), alerts_path)
            _serve(console, reporter, stopping, agents_path, db, grace, metrics_port, where, database_metrics)
        except KeyboardInterrupt:
            console.print(Text("stopped without waiting; tasks that were running here will run again later"))
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    console.print(reporter.summary())


def _serve(
    console: Console,
    reporter: Reporter,
    stopping: Stopping,
    agents_path: str,
    db: str | None,
    idle_grace: float | None,
    metrics_port: int | None = None,
    where: dict[str, Any] | None = None,
    database_metrics: bool = False,
) -> None:
    """Load the agents, run the engine until told to stop (or idle), then drain. Nothing says the worker runs
    before its engine started with every agent (a budget the pool cannot give fails before; an agent whose
    start-up fails stops the worker with ``AgentStartError``)."""
    with (
        open_runtime(db, create=True, **(where or {})) as runtime,
        _metrics(runtime, metrics_port, database_metrics) as server,
    ):
        agents = pepper.load_agents(agents_path, runtime=runtime)
        runtime.add_hook(reporter)
        reporter.hold()  # the lines of tasks that start at once come after the announcement
        try:
            start_engine(runtime, "worker")
            _announce(console, runtime, agents, idle_grace)
            if server is not None:
                console.print(Text(f"serving metrics on {metrics_url(server)}", style="dim"))
        finally:
            reporter.release()
        _run(runtime, stopping, idle_grace)
        if stopping.is_set() and runtime.has_work():
            timeout = runtime.settings.shutdown_timeout
            console.print(
                Text(f"stopping: letting running tasks finish (up to {timeout:g}s; Ctrl-C again to stop now)")
            )


def _metrics(runtime: pepper.Runtime, port: int | None, stored: bool) -> AbstractContextManager[MetricsServer | None]:
    return nullcontext() if port is None else metrics_served(runtime, port, option="--metrics-port", stored=stored)


def _announce(console: Console, runtime: pepper.Runtime, agents: list[pepper.BaseAgent], grace: float | None) -> None:
    names = ", ".join(f"{a.spec.agent_id} ({', '.join(sorted(a.spec.task_types))})" for a in agents)
    console.print(Text(f"worker {runtime.worker_id} on {redact(runtime.settings.db)}"))
    console.print(Text(f"{plural(len(agents), 'agent')}: {names}"))
    how = "Ctrl-C to stop" if grace is None else f"stops after {grace:g}s without work"
    console.print(Text(f"waiting for tasks; {how}", style="dim"))


def _run(runtime: pepper.Runtime, stopping: Stopping, idle_grace: float | None) -> None:
    """Return when ``stopping`` is set or, with ``idle_grace``, after that long without work."""
    idle_since: float | None = None
    while not stopping.wait(_POLL):
        if idle_grace is None:
            continue
        if runtime.has_work():
            idle_since = None
            continue
        now = time.monotonic()
        idle_since = now if idle_since is None else idle_since
        if now - idle_since >= idle_grace:
            return


@contextmanager
def metrics_served(
    runtime: pepper.Runtime, port: int, host: str = "127.0.0.1", *, option: str = "--port", stored: bool = True
) -> Iterator[MetricsServer]:
    """``/metrics`` served on ``host:port`` from a background thread while inside (``pepper worker --metrics-port``,
    ``pepper serve-metrics``); an address that cannot be used is a pepper error naming ``option``."""
    try:
        server = serve_metrics(runtime, port, host, stored=stored)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = f"port {port} is already in use; choose another with {option}"
        elif exc.errno == errno.EACCES:
            why = f"not allowed to use port {port} (ports below 1024 need privileges); choose another with {option}"
        else:
            why = exc.strerror or str(exc)
        raise PepperError(f"cannot serve metrics on {host}:{port}: {why}") from None
    try:
        yield server
    finally:
        server.close()


def metrics_url(server: MetricsServer) -> str:
    """``http://HOST:PORT/metrics`` of a server from ``metrics_served``."""
    host, port = server.server_address[:2]
    shown = host.decode() if isinstance(host, bytes) else str(host)
    return f"http://{shown}:{port}/metrics"


class Stopping:
    """Set when the command was asked to stop; ``signum`` is the signal that asked.

    Not a ``threading.Event``: it is set from a signal handler, which runs in the main thread between any two
    of its steps, also while that thread waits on the event holding the event's own lock (a handler taking it
    would wait for itself forever). Setting and reading a flag take no lock."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """True once set; False after ``timeout`` seconds if it was not (it is looked at every 50 ms)."""
        end = time.monotonic() + timeout
        while not self._set:
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, _LOOK))
        return True

    @property
    def by_ctrl_c(self) -> bool:
        return self.signum == signal.SIGINT


@contextmanager
def _stop_signals() -> Iterator[Stopping]:
    """An event set by the first SIGINT or SIGTERM (``.signum`` says which); a second one raises
    ``KeyboardInterrupt``."""
    stopping = Stopping()
    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        stopping.signum = signum
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handle)
    try:
        yield stopping
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@click.command()
@json_option
@db_option
def agents(as_json: bool, db: str | None) -> None:
    """List the agents online, with their load and learned score.

    LOAD is tasks running / capacity; QUEUED the tasks waiting that this agent
    could take (a task several agents could take counts in part for each);
    SCORE, from 0 to 1, what pepper learned from the agent's history:
    successes, speed, and ratings given with `pepper feedback`. Agents that
    score better are expected to finish sooner and are preferred.
    """
    with open_runtime(db) as runtime:
        online = runtime.store.workers.agents()
        running = runtime.store.running_by_agent()
        standing = _standing(runtime, {a.spec.agent_id for a in online})
    console = listing_console(
        as_json,
        online,
        lambda a: agent_dict(a, running, standing),
        Text("No agents are online. Agents appear here while a `pepper worker` runs; start one with:"),
        Text(f"  pepper worker --agents agents.yaml{db_hint(db)}"),
    )
    if console is None:
        return
    console.print(agents_table(online, running, standing))


def _standing(runtime: pepper.Runtime, agent_ids: set[str]) -> dict[str, AgentStanding]:
    """Score and queue of each agent (one that went offline meanwhile is left out)."""
    return agent_standing(runtime, agent_ids)
