"""The end of a run on the terminal (``pepper run``, ``resume``, ``rerun``): its pictures, steps table,
verdict, hints and exit code; and the notes beside a run that is shown: what each waiting step waits for,
and which process drives it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console
from rich.padding import Padding
from rich.text import Text

import pepper
from pepper.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED, db_hint
from pepper.cli.render import (
    duration,
    error_line,
    make_console,
    print_json,
)
from pepper.cli.run_views import local, run_hints, settled, step_error, steps_table, verdict
from pepper.cli.step_notes import step_note
from pepper.core import TaskOrchestrator
from pepper.core.chart_inputs import agent_capacities, earlier_attempts, fan_out_items
from pepper.drawing import EarlierAttempt, ItemRun, run_bars, run_notes, run_title, workflow_dot, write_gantt
from pepper.errors import PepperError
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import RunRecord, RunState, WorkflowResult


@dataclass(frozen=True, slots=True)
class RunHistory:
    """What the store knows beyond a run's result: each step's earlier attempts and the agents' capacities."""

    earlier: Mapping[str, Sequence[EarlierAttempt]]
    capacities: Mapping[str, int]
    items: Mapping[str, Sequence[ItemRun]] = field(default_factory=dict)  # a fan-out's item tasks, by step

    @classmethod
    def of(cls, runtime: pepper.Runtime, result: WorkflowResult) -> RunHistory:
        return cls(earlier_attempts(runtime, result), agent_capacities(runtime), fan_out_items(runtime, result))


def finish(
    console: Console,
    spec: WorkflowSpec,
    result: WorkflowResult,
    ending: str | None,
    as_json: bool,
    quiet: bool,
    gantt: str | None,
    dot: str | None,
    db: str | None,
    history: RunHistory | None = None,
) -> int:
    """Draw the pictures asked for, then print the JSON, or the steps table, verdict and hints; the exit code.
    ``history`` adds each step's earlier attempts to the table and the chart."""
    drawn, failed = draw(result, spec, gantt, dot, history)
    if as_json:
        print_json(result.to_dict())
    elif dot == "-":
        click.echo(workflow_dot(spec, result), nl=False)
    if not as_json:
        report(console, result, quiet, drawn, db, history)
    if ending == "interrupted":
        return EXIT_INTERRUPTED
    if result.status is not RunState.COMPLETED:
        return EXIT_TASK_FAILED
    return EXIT_BAD_INPUT if failed else EXIT_OK  # a picture asked for but not written


def draw(
    result: WorkflowResult, spec: WorkflowSpec, gantt: str | None, dot: str | None, history: RunHistory | None = None
) -> tuple[list[str], bool]:
    """Write the Gantt chart (every attempt of ``history``, no more lanes a row than its agent's capacity) and
    the DOT file asked for; hints naming them, and whether one could not be written (errors go to stderr)."""
    hints, failed = [], False
    earlier, capacities = (history.earlier, history.capacities) if history is not None else (None, None)
    items = history.items if history is not None else None
    if gantt is not None:
        try:
            bars = run_bars(result, earlier=earlier, items=items)
            written = write_gantt(bars, gantt, run_title(result), notes=run_notes(result), capacities=capacities)
            hints.append(f"Gantt chart of the run: {written}")
        except (PepperError, OSError) as exc:
            make_console(stderr=True).print(error_line(f"could not write the Gantt chart {gantt}: {exc}"))
            failed = True
    if dot is not None and dot != "-":
        try:
            target = Path(dot)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(workflow_dot(spec, result), encoding="utf-8")
            hints.append(f"graph of the workflow: {target} (draw it with: dot -Tpng {target} -o graph.png)")
        except OSError as exc:
            make_console(stderr=True).print(error_line(f"could not write the graph {dot}: {exc}"))
            failed = True
    return hints, failed


def report(
    console: Console, result: WorkflowResult, quiet: bool, drawn: Sequence[str], db: str | None,
    history: RunHistory | None = None,
) -> None:  # fmt: skip
    """The steps table (unless ``quiet``), the verdict and why the run did not complete, then hints (or, when
    ``quiet``, the errors of the failed steps)."""
    now = time.time()
    if not quiet:
        console.print(Text(""))
        console.print(steps_table(result, now, earlier=history.earlier if history is not None else None))
        console.print(Text(""))
    console.print(verdict(result, now))
    if result.reason and result.status is not RunState.COMPLETED:
        console.print(Padding(Text(local(result.reason, result.run_id), style="dim"), (0, 0, 0, 2), expand=False))
    if quiet:
        for step in result.steps.values():
            if step.status == "failed":
                console.print(Text.assemble(f"  {step.step_id}: ", (local(step_error(step), result.run_id), "red")))
        return
    for hint in [*run_hints(result, db), *drawn]:
        console.print(Text(hint, style="dim"))


def waiting_notes(
    runtime: pepper.Runtime, result: WorkflowResult, spec: WorkflowSpec, db: str | None
) -> dict[str, str]:
    """What each step that has not started waits for, in a few words (commands it suggests name ``db``)."""
    orchestrator = TaskOrchestrator(runtime)
    waiting: dict[str, str] = {}
    for step in result.steps.values():
        if step.status in ("pending", "blocked"):
            reasons = orchestrator.get_task_status(step.task_id).waiting_on
            if reasons:
                waiting[step.step_id] = reasons[0].message.splitlines()[0]
        elif step.status == "waiting" and (note := _shaped_note(runtime, result, spec, step.step_id, db)) is not None:
            waiting[step.step_id] = note
        elif step.status == "waiting":
            if result.status.is_final:
                waiting[step.step_id] = "never started: the run ended first"
                continue
            open_deps = [d for d in step.dependencies if not settled(result.steps[d])]
            when = spec.by_id[step.step_id].condition if step.step_id in spec.by_id else None
            condition = f"its condition ({when})" if when else "its condition"
            waiting[step.step_id] = (
                f"{condition} is decided once {', '.join(open_deps)} ended"
                if open_deps
                else f"{condition} is being decided"
            )
    return waiting


def _shaped_note(
    runtime: pepper.Runtime, result: WorkflowResult, spec: WorkflowSpec, step_id: str, db: str | None
) -> str | None:
    """What an approval, fan-out or sub-workflow step without its own task yet stands at."""
    step = spec.by_id.get(step_id)
    if step is None or not (step.approval is not None or step.fans_out or step.workflow is not None):
        return None
    record = runtime.read(lambda backend: backend.run_record(result.run_id))
    return step_note(runtime, record, step, db)


def driver_note(runtime: pepper.Runtime, record: RunRecord, db: str | None) -> str | None:
    """For a running run: which process drives it, and whether that process seems gone."""
    if record.state.is_final or record.driver is None or runtime.server is not None:
        return None  # (the workers' heartbeats are the server's business)
    live = {w.worker_id: w for w in runtime.store.workers.live()}
    worker = live.get(record.driver)
    resume = f"`pepper resume {record.run_id}{db_hint(db)}` finishes it"
    if worker is None:
        return f"the process that drove it has stopped; {resume}"
    silent = time.time() - worker.heartbeat_at
    if silent > max(10.0, 3 * runtime.settings.heartbeat_interval):
        return f"process {worker.pid} on {worker.hostname}, silent for {duration(silent)}; if it is gone, {resume}"
    return f"process {worker.pid} on {worker.hostname}"
