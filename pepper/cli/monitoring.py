"""``pepper health``, ``perf``, ``alerts``, ``metrics`` and ``serve-metrics``: how pepper is doing."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from pepper.cli.common import (
    EXIT_INTERRUPTED,
    db_option,
    json_option,
    limit_option,
    not_empty,
    open_runtime,
    server_option,
)
from pepper.cli.render import duration, listing_console, make_console, one_line, plural, print_json, relative
from pepper.cli.worker import _stop_signals, metrics_served, metrics_url
from pepper.core import HealthMonitor, PerformanceMonitor
from pepper.core.performance import PerformanceReport
from pepper.core.prometheus import exposition
from pepper.model.resources import RESOURCE_UNITS
from pepper.model.units import parse_duration
from pepper.monitoring.health import COMPONENTS, HealthReport
from pepper.monitoring.window import Figures, Latency
from pepper.store.location import redact

HEALTH_STYLES = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red"}
#: Where performance figures come from, for people.
SOURCES = {
    "database": "from the database: every worker's attempts",
    "this process": "from this process's engine only",
}


def health_text(status: str) -> Text:
    return Text(status, style=HEALTH_STYLES.get(status, ""))


def table() -> Table:
    """A plain table in the style of the other commands: bold headers, no box."""
    return Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))


# --- pepper health -------------------------------------------------------------------------------


@click.command()
@click.option(
    "--component",
    "-c",
    "components",
    multiple=True,
    metavar="NAME",
    help=f"Check only this component (repeat, or separate with commas): {', '.join(COMPONENTS)}.",
    callback=not_empty,
)
@click.option("--verbose", "-v", is_flag=True, help="Also show the numbers behind each verdict.")
@json_option
@db_option
@server_option
def health(components: tuple[str, ...], verbose: bool, as_json: bool, db: str | None) -> None:
    """Check that pepper is healthy, and say what is wrong if it is not.

    Prints the overall verdict (the worst component's) and, for each
    component, why it is not healthy:

    \b
      agents     each agent's worker still sends heartbeats; agents failing
                 half of their recent tasks, tasks that look stuck, ready
                 tasks that no agent online can take
      resources  resources nearly exhausted, leases about to expire
      workflows  runs that stopped moving, runs failing, steps parked
      store      the database can be written; its write-ahead log's size
      engine     a worker is running while tasks wait; its event loop is
                 not blocked

    \b
    Exit codes, for scripts and container probes:
      0  healthy
      1  degraded: work goes on, but something needs a look
      2  unhealthy, or the check could not run (no database at --db...)

    \b
    Examples:
      pepper health
      pepper health --component store,engine -v
      pepper health --json
    """
    chosen = [name.strip() for value in components for name in value.split(",") if name.strip()]
    with open_runtime(db) as runtime:
        report = HealthMonitor(runtime).check_health(chosen or None)
        where = f"server {runtime.server}" if runtime.server else f"database {redact(runtime.settings.db)}"
    if as_json:
        print_json(report.to_dict())
    else:
        console = make_console()
        console.print(Text.assemble(("pepper is ", "bold"), health_text(report.status), (f"   {where}", "dim")))
        console.print()
        console.print(health_table(report, verbose))
    raise click.exceptions.Exit(report.exit_code)


def health_table(report: HealthReport, verbose: bool) -> Table:
    """One row per component: its verdict, its reasons and (``verbose``) its numbers."""
    grid = table()
    grid.add_column("COMPONENT", no_wrap=True)
    grid.add_column("STATUS", no_wrap=True)
    grid.add_column("DETAILS", ratio=1, overflow="fold")
    for name, component in report.components.items():
        details = Text("\n").join(Text(reason) for reason in component.reasons)
        if verbose and component.metrics:
            if component.reasons:
                details.append("\n")
            details.append(numbers_text(component.metrics), style="dim")
        grid.add_row(Text(name), health_text(component.status), details)
    return grid


def numbers_text(metrics: Mapping[str, Any]) -> str:
    """``agents 2, unhealthy agents 0, error rate 5.0%``: the numbers behind a verdict, for people."""
    parts = []
    for name, value in metrics.items():
        if value is None or name in _UNSAID:
            continue
        resource, _, kind = name.rpartition("_")
        if kind == "free" and f"{resource}_capacity" in metrics:
            continue  # said with its capacity
        if kind == "capacity":
            unit = RESOURCE_UNITS.get(resource, "")
            free = metrics.get(f"{resource}_free", value)
            parts.append(f"{resource} {_amount(free)} of {_amount(value)} {unit} free".replace("  ", " "))
            continue
        parts.append(f"{_LABELS.get(name, name.replace('_', ' '))} {_number(name, value)}")
    return ", ".join(parts)


#: Numbers not worth saying here: a command never runs an engine itself.
_UNSAID = {"engine_here"}
_LABELS = {"size_mb": "size", "wal_mb": "write-ahead log", "engine_here": "engine in this process",
           "live_workers": "workers running", "loop_lag": "event loop late by"}  # fmt: skip


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def _number(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    if name.endswith("rate"):
        return percent(value)
    if name.endswith("_mb"):
        return f"{value:.1f} MB"
    if name.endswith("lag"):
        return duration(value)
    return f"{value:g}"


# --- pepper perf -----------------------------------------------------------------------------------


@click.command()
@click.option(
    "--window", default="60s", show_default=True, metavar="DURATION", help="How far back to look (30s, 15m, 1h...)."
)
@click.option("--by", type=click.Choice(["agent", "type"]), help="Also one row per agent, or per task type.")
@json_option
@db_option
def perf(window: str, by: str | None, as_json: bool, db: str | None) -> None:
    """Show how fast tasks go through, and how many fail, over the last minute (or --window).

    Counts every attempt that ended within the window, on any worker:

    \b
      TASKS/S     completed attempts per second
      ERRORS      failed attempts / attempts that ended
      WAIT        queue wait: from ready to run to started (p50, p95, p99)
      RUN         run time: from started to ended (p50, p95, p99)

    A p95 of 2s means 95% of the attempts took 2s or less.

    \b
    Examples:
      pepper perf
      pepper perf --window 1h --by agent
      pepper perf --by type --json
    """
    seconds = window_option(window)
    with open_runtime(db) as runtime:
        report = PerformanceMonitor(runtime).get_performance(window=seconds)
    if as_json:
        print_json(report.to_dict())
        return
    console = make_console()
    span = window_label(report.window)
    where = SOURCES.get(report.source, f"from {report.source}")
    if not report.overall.attempts:
        console.print(Text(f"No task ended in the last {span} ({where})."))
        further = window_label(3600 if seconds < 3600 else 86400 if seconds < 86400 else seconds * 7)
        console.print(Text(f"Look further back with --window, e.g. --window {further}.", style="dim"))
        return
    console.print(Text.assemble(("Last ", "bold"), (span, "bold"), f", {where}"))
    note = span_note(report.overall)
    if note:
        console.print(Text(note, style="dim"))
    console.print()
    console.print(perf_table(report, by, wide=console.width >= 100))


def window_option(text: str) -> float:
    """Seconds of a ``--window`` (``60s``, ``15m``, ``1h``...)."""
    seconds = parse_duration(text, "--window")
    if seconds <= 0:
        raise click.BadParameter(f"must be more than 0, got {text!r}", param_hint="'--window'")
    return seconds


def perf_table(report: PerformanceReport, by: str | None, *, wide: bool = True) -> Table:
    """Overall figures and, ``by`` agent or task type, one row each (columns closer together unless ``wide``)."""
    grid = table()
    grid.padding = (0, 2 if wide else 1, 0, 0)
    names = [*(report.by_agent if by == "agent" else report.by_task_type if by == "type" else {}), "all"]
    grid.add_column("AGENT" if by == "agent" else "TYPE" if by == "type" else "", overflow="fold",
                    min_width=min(12, max(len(n) for n in names)))  # fmt: skip
    for name in ("TASKS/S", "DONE", "FAILED", "ERRORS"):
        grid.add_column(name, justify="right", no_wrap=True)
    for name in ("WAIT p50", "p95", "p99", "RUN p50", "p95", "p99"):
        grid.add_column(name, justify="right", no_wrap=True)
    rows = {} if by is None else report.by_agent if by == "agent" else report.by_task_type
    for name, figures in rows.items():
        grid.add_row(Text(name), *_figure_cells(figures))
    if rows:
        grid.add_section()
    grid.add_row(Text("all", style="bold"), *_figure_cells(report.overall))
    return grid


def _figure_cells(f: Figures) -> list[Text]:
    cells = [Text(rate(f.throughput)), Text(str(f.completed)), Text(str(f.failed), style="red" if f.failed else ""),
             Text(percent(f.error_rate))]  # fmt: skip
    for latency in (f.queue_wait, f.run_time):
        cells += [Text(duration(latency.p50)), Text(duration(latency.p95)), Text(duration(latency.p99))]
    return cells


def span_note(f: Figures) -> str:
    """What TASKS/S is measured over, when it is not the whole window."""
    if f.span >= f.window * 0.99:
        return ""
    return f"tasks/s over the {duration(f.span)} since the first of these attempts was ready to run"


def rate(per_second: float) -> str:
    """``12.3``, ``0.52``, ``0``: tasks per second with two significant decimals at most."""
    if per_second == 0:
        return "0"
    return (
        f"{per_second:.0f}" if per_second >= 100 else f"{per_second:.1f}" if per_second >= 10 else f"{per_second:.2f}"
    )


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}" if 0 < share < 0.1 else f"{share:.0%}"


def latency_text(latency: Latency) -> str:
    """``p50 0.02s  p95 0.06s  p99 0.08s`` (or ``-`` when nothing was measured)."""
    if not latency.count:
        return "-"
    return f"p50 {duration(latency.p50)}  p95 {duration(latency.p95)}  p99 {duration(latency.p99)}"


def window_label(seconds: float) -> str:
    """``60s``, ``5m``, ``1h``, ``90s``: a window as people write it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "m" and seconds < 120):
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


# --- pepper alerts -------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@limit_option(50, "Show at most N alerts")
@json_option
@db_option
@click.pass_context
def alerts(ctx: click.Context, limit: int, as_json: bool, db: str | None) -> None:
    """List the alerts that fired, newest first; `pepper alerts rules` lists the configured rules.

    Alerts are rules set in Python on a running engine, such as
    PerformanceMonitor(runtime).set_alert("error_rate", 0.05, notify) or
    HealthMonitor(runtime).set_alert("engine.loop_lag", 1.0, notify); each
    time one fires it is recorded in the database, and listed here. Rules
    in pepper.toml ([[alerts]] tables) are evaluated by every worker and
    notify their sinks (webhook, command, log) once per crossing; their
    firings are listed here too, with source "config".
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_runtime(db) as runtime:
        fired = runtime.store.alerts.recent(limit)
    console = listing_console(as_json, fired, lambda a: {**a, "above": bool(a["above"])}, Text("No alert has fired."))
    if console is None:
        return
    now = time.time()
    grid = table()
    for name in ("WHEN", "SOURCE", "SUBJECT", "METRIC", "VALUE"):
        grid.add_column(name, no_wrap=True)
    grid.add_column("MESSAGE", overflow="ellipsis", min_width=12)
    for a in fired:
        sign = ">" if a["above"] else "<"
        grid.add_row(Text(relative(a["at"], now)), Text(a["source"]), Text(a["subject"] or "-"), Text(a["metric"]),
                     Text(f"{_short(a['value'])} {sign} {_short(a['threshold'])}", style="red"),
                     Text(one_line(a["message"], 200), no_wrap=True, overflow="ellipsis"))  # fmt: skip
    console.print(grid)
    shown = plural(len(fired), "alert")
    more = f"; the newest {limit} are shown, --limit N shows more" if len(fired) == limit else ""
    console.print(Text(f"\n{shown}{more}", style="dim"))


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


# --- pepper metrics, pepper serve-metrics --------------------------------------------------------


@click.command()
@db_option
def metrics(db: str | None) -> None:
    """Print pepper's metrics in Prometheus's text format (and nothing else).

    \b
    Read from the database: tasks by state and type, workflow runs by state,
    dead letters, the resource pool and its leases, workers. The task
    counters and latency histograms of a worker are served by that worker
    itself: `pepper worker --metrics-port PORT`.
    """
    with open_runtime(db) as runtime:
        text = exposition(runtime)
    click.echo(text, nl=False)


@click.command(name="serve-metrics")
@click.option("--port", type=click.IntRange(0, 65535), default=9464, show_default=True, help="Port to listen on.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 listens on every network interface (the page has no password).",
)
@db_option
def serve_metrics(port: int, host: str, db: str | None) -> None:
    """Serve pepper's metrics on http://HOST:PORT/metrics for Prometheus, until Ctrl-C.

    \b
    Read from the database at each scrape: tasks by state and type, workflow
    runs by state, dead letters, the resource pool and its leases, workers.
    The task counters and latency histograms of a worker are served by that
    worker itself: `pepper worker --metrics-port PORT`.
    """
    console = make_console()
    with open_runtime(db) as runtime:
        runtime.store  # noqa: B018 - no database at --db is an error now, not at the first scrape
        with _stop_signals() as stopping, metrics_served(runtime, port, host) as server:
            console.print(Text(f"serving {metrics_url(server)}; Ctrl-C stops"))
            try:
                while not stopping.wait(0.5):
                    pass
            except KeyboardInterrupt:  # a second Ctrl-C while stopping
                pass
    if stopping.by_ctrl_c:  # stopped by hand, as every command says with 130; SIGTERM is a clean stop (0)
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
