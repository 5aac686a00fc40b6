"""``pepper top``: workers, tasks, agents and performance on one screen, refreshed live."""

from __future__ import annotations

import time
from dataclasses import dataclass

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

import pepper
from pepper.cli.common import EXIT_INTERRUPTED, db_hint, db_option, open_runtime, where_hint
from pepper.cli.monitoring import (
    HEALTH_STYLES,
    SOURCES,
    health_text,
    latency_text,
    percent,
    rate,
    span_note,
    table,
    window_label,
    window_option,
)
from pepper.cli.render import duration, make_console, plural, state_text
from pepper.cli.worker import _standing, _stop_signals
from pepper.core import HealthMonitor, PerformanceMonitor
from pepper.core.performance import PerformanceReport
from pepper.model.task import TaskState
from pepper.model.units import parse_duration
from pepper.monitoring.health import HEALTHY, HealthReport
from pepper.monitoring.window import Figures
from pepper.store.location import redact

#: Reasons of an unhealthy verdict shown at the top; `pepper health` shows them all.
_REASONS = 4


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent: online (with its worker, load and score) or gone but with attempts in the window."""

    agent_id: str
    worker: str | None  # host:pid; None once its worker stopped
    running: int
    capacity: int | None
    queued: float | None
    score: float | None
    figures: Figures | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one screen of ``pepper top`` shows."""

    at: float
    db: str
    health: HealthReport
    tasks: dict[str, int]
    runs: dict[str, int]
    parked: int
    agents: list[AgentRow]
    perf: PerformanceReport


@click.command()
@click.option("--interval", default="1s", show_default=True, metavar="DURATION", help="How often to refresh.")
@click.option(
    "--window", default="60s", show_default=True, metavar="DURATION", help="How far back performance figures look."
)
@click.option("--once", is_flag=True, help="Print one snapshot and exit (what a pipe or a file always gets).")
@db_option
def top(interval: str, window: str, once: bool, db: str | None) -> None:
    """Watch pepper live: workers, tasks, agents and how fast work goes.

    \b
    At the top: workers online, tasks by state, workflow runs running,
    tasks in the dead-letter queue and the health verdict (and why, when
    it is not healthy). Then one row per agent:
      LOAD      tasks running / capacity
      QUEUED    ready tasks this agent could take
      DONE      attempts completed in the window, FAILED those that failed
      RUN p95   95% of its attempts in the window ran this long or less
      SCORE     what pepper learned of the agent, 0 to 1 (better is sooner)
    and the throughput, error rate and latencies of the window.

    Refreshes every second until Ctrl-C. When the output is not a terminal
    (or with --once), prints one snapshot and exits.
    """
    every = parse_duration(interval, "--interval")
    if every < 0.1:
        raise click.BadParameter(f"must be at least 0.1s, got {interval!r}", param_hint="'--interval'")
    seconds = window_option(window)
    console = make_console()
    with open_runtime(db) as runtime:
        snapshot = gather(runtime, seconds)
        if once or not console.is_terminal:
            console.print(view(snapshot, db))
            return
        with _stop_signals() as stopping:
            try:
                with Live(view(snapshot, db, every), console=console, screen=True, auto_refresh=False) as live:
                    while not stopping.wait(every):
                        live.update(view(gather(runtime, seconds), db, every), refresh=True)
            except KeyboardInterrupt:  # a second Ctrl-C while refreshing
                pass
    if stopping.by_ctrl_c:
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


def gather(runtime: pepper.Runtime, window: float) -> Snapshot:
    """Read one snapshot. No agent is called: agents are judged by their workers' heartbeats."""
    store = runtime.store
    report = HealthMonitor(runtime).check_health()
    perf = PerformanceMonitor(runtime).get_performance(window=window)
    online = store.workers.agents()
    running = store.running_by_agent()
    standing = _standing(runtime, {a.spec.agent_id for a in online})
    rows = []
    for agent in online:
        agent_id = agent.spec.agent_id
        known = standing.get(agent_id)
        rows.append(AgentRow(agent_id, f"{agent.hostname}:{agent.pid}", running.get(agent_id, 0), agent.spec.capacity,
                             known.queued if known else None, known.score if known else None,
                             perf.by_agent.get(agent_id)))  # fmt: skip
    shown = {row.agent_id for row in rows}
    for agent_id, figures in perf.by_agent.items():
        if agent_id not in shown:
            rows.append(AgentRow(agent_id, None, running.get(agent_id, 0), None, None, None, figures))
    counts = store.count_by_state()
    return Snapshot(runtime.clock.now(), redact(runtime.settings.db), report, counts,
                    store.runs.count_by_state(), counts.get("parked", 0), rows, perf)  # fmt: skip


def view(s: Snapshot, db: str | None, every: float | None = None) -> RenderableType:
    """The screen: header, agents, performance; with ``every`` (live), a footer saying how to quit."""
    parts: list[RenderableType] = [_header(s, every is not None, db), Text(), _agents(s.agents, db), Text(),
                                   _performance(s.perf)]  # fmt: skip
    if every is not None:
        parts += [Text(), Text(f"refreshes every {window_label(every)}; Ctrl-C quits", style="dim")]
    return Group(*parts)


def _header(s: Snapshot, live: bool, db: str | None) -> RenderableType:
    title = Table.grid(expand=live, padding=(0, 3, 0, 0))
    title.add_column()
    title.add_column(justify="right", no_wrap=True)
    title.add_row(Text.assemble(("pepper top", "bold"), ("  " + s.db, "dim")),
                  Text.assemble(time.strftime("%H:%M:%S", time.localtime(s.at)), "   ", ("health ", "bold"),
                                health_text(s.health.status)))  # fmt: skip
    workers = s.health.components["engine"].metrics.get("live_workers", 0) if "engine" in s.health.components else 0
    parked = Text(str(s.parked), style="red" if s.parked else "")
    facts = Text.assemble(("workers ", "dim"), str(workers), ("   runs running ", "dim"), str(s.runs.get("running", 0)),
                          ("   dead letters ", "dim"), parked, ("\ntasks ", "dim"), _task_counts(s.tasks))  # fmt: skip
    lines: list[RenderableType] = [title, facts]
    if s.health.status != HEALTHY:
        reasons = [(c.name, c.status, r) for c in s.health.components.values() for r in c.reasons]
        for name, status, reason in reasons[:_REASONS]:
            lines.append(Text.assemble("  ", (f"{name}: ", HEALTH_STYLES.get(status, "")), reason))
        if len(reasons) > _REASONS:
            lines.append(
                Text(
                    f"  … {plural(len(reasons) - _REASONS, 'more reason')}: `pepper health{where_hint(db)}`",
                    style="dim",
                )
            )
    return Group(*lines)


def _task_counts(counts: dict[str, int]) -> Text:
    parts = [Text.assemble(str(counts[s.value]), " ", state_text(s)) for s in TaskState if counts.get(s.value)]
    return Text(", ").join(parts) if parts else Text("none")


def _agents(rows: list[AgentRow], db: str | None) -> RenderableType:
    if not rows:
        return Text(f"No agents are online; start a worker: pepper worker --agents agents.yaml{db_hint(db)}")
    grid = table()
    grid.add_column("AGENT", overflow="fold")
    grid.add_column("WORKER", overflow="fold")
    for name in ("LOAD", "QUEUED", "DONE", "FAILED", "RUN p95", "SCORE"):
        grid.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        f = row.figures
        load = f"{row.running}/{row.capacity}" if row.capacity is not None else "-"
        grid.add_row(
            Text(row.agent_id, style="" if row.worker else "dim"),
            Text(row.worker or "offline", style="" if row.worker else "dim"),
            Text(load),
            Text("-" if row.queued is None else f"{round(row.queued, 1):g}"),
            Text(str(f.completed) if f else "0"),
            Text(str(f.failed) if f else "0", style="red" if f and f.failed else ""),
            Text(duration(f.run_time.p95) if f else "-"),
            Text("-" if row.score is None else f"{row.score:.2f}"),
        )
    return grid


def _performance(report: PerformanceReport) -> RenderableType:
    f = report.overall
    head = Text.assemble(("Last ", "bold"), (window_label(report.window), "bold"),
                         (f", {SOURCES.get(report.source, report.source)}", "dim"))  # fmt: skip
    if not f.attempts:
        return Group(head, Text("  no task ended in this window", style="dim"))
    grid = Table.grid(padding=(0, 3, 0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    errors = Text(percent(f.error_rate), style="red" if f.failed else "")
    grid.add_row("throughput", Text.assemble(f"{rate(f.throughput)} tasks/s   ", f"{f.completed} done, ",
                                             Text(f"{f.failed} failed", style="red" if f.failed else ""),
                                             "   error rate ", errors))  # fmt: skip
    note = span_note(f)
    if note:
        grid.add_row("", Text(note, style="dim"))
    grid.add_row("queue wait", latency_text(f.queue_wait))
    grid.add_row("run time", latency_text(f.run_time))
    return Group(head, grid)
