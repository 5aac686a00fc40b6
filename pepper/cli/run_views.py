"""How workflow runs read on the terminal: step statuses and outcomes, the steps table (``pepper run``,
``resume`` and ``show``), the one-line verdict, a run's header and the runs table.

The end of a run (its pictures, summary and exit code) is ``cli.run_report``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table
from rich.text import Text

from pepper.cli.common import where_hint
from pepper.cli.render import (
    STATE_STYLES,
    clock_time,
    duration,
    one_line,
    plural,
    relative,
)
from pepper.drawing import EarlierAttempt
from pepper.model.workflow_run import SKIPPED, RunRecord, RunState, StepResult, WorkflowResult

#: Colour of each step status (a step is a task, or ``skipped``/``waiting`` which tasks are not).
STEP_STYLES: dict[str, str] = {**STATE_STYLES, "skipped": "blue", "waiting": "magenta", "interrupted": "yellow"}
#: Order in which statuses are counted: how steps ended first, then where the others stand.
STATUS_ORDER = ("completed", "failed", "cancelled", "skipped", "parked", "in_progress", "pending", "blocked", "waiting")
_RUN_STYLES = {"completed": "bold green", "failed": "bold red", "cancelled": "bold yellow", "running": "bold cyan"}


def status_label(status: str) -> str:
    """A step status for people: as stored (``in_progress``, not "running", which is a run's status)."""
    return status


def status_text(status: str) -> Text:
    return Text(status_label(status), style=STEP_STYLES.get(status, ""))


def run_status_text(status: RunState | str) -> Text:
    return Text(str(status), style=_RUN_STYLES.get(str(status), ""))


def settled(step: StepResult) -> bool:
    """True once the step ended (completed, failed, cancelled or skipped)."""
    return step.state is not None and step.state.is_final


def counts_text(result: WorkflowResult) -> Text:
    """``20 completed, 2 skipped`` in the statuses' colours."""
    counts = result.counts()
    order = [s for s in STATUS_ORDER if counts.get(s)] + sorted(set(counts) - set(STATUS_ORDER))
    return Text(", ").join(Text.assemble(f"{counts[s]} ", status_text(s)) for s in order)


def verdict(result: WorkflowResult, now: float) -> Text:
    """``run docsite-3f2a9c1e0b completed in 4.20s: 22 steps, 20 completed, 2 skipped``."""
    if result.status.is_final:
        took = result.duration
        when = f" in {duration(took)}" if result.status is RunState.COMPLETED else f" after {duration(took)}"
    else:
        when = f" for {duration(now - result.created_at)}"
    line = Text.assemble("run ", (result.run_id, "bold"), " ", run_status_text(result.status), when, ": ")
    line.append(plural(len(result.steps), "step"))
    if result.steps:
        line.append(", ")
        line.append_text(counts_text(result))
    return line


# --- what a step came to --------------------------------------------------------------------


def local(text: str, run_id: str) -> str:
    """A message about the run's tasks with their ids (``<run>/<step>``) shortened to step ids."""
    return text.replace(f"{run_id}/", "")


def first_line(value: object, width: int = 300) -> str:
    """The first non-empty line of a string, or a value as compact JSON, cut to ``width``."""
    if isinstance(value, str):
        lines = [line for line in value.splitlines() if line.strip()]
        value = lines[0].strip() if lines else ""
    return one_line(value, width)


def step_error(step: StepResult) -> str:
    """``ValueError: the first line of its message``."""
    if step.error is None:
        return ""
    message = first_line(step.error.message)
    return f"{step.error.type}: {message}" if message else step.error.type


def skip_reason(step: StepResult) -> str:
    return (step.reason or "").removeprefix(SKIPPED) or "its condition was false"


def outcome(step: StepResult, run_id: str, waiting: Mapping[str, str] | None = None) -> Text:
    """One line on how the step ended, or what it is doing or waiting for."""
    status = step.status
    if status == "completed":
        return _cell("(no result)", "dim") if step.result is None else _cell(first_line(step.result))
    if status == "skipped":
        return _cell(local(skip_reason(step), run_id), "dim")
    if status == "failed":
        return _cell(local(step_error(step), run_id) or "failed (no error recorded)", "red")
    if status == "cancelled":
        return _cell(local(step.reason or "cancelled", run_id), "dim")
    if status == "in_progress":
        return Text("")  # its agent and time are in their columns
    note = (waiting or {}).get(step.step_id)
    if note:
        return _cell(local(note, run_id), "yellow" if step.error is not None else "dim")
    if step.error is not None:  # an attempt failed; it will run again
        return _cell(f"attempt {step.attempts} failed ({local(step_error(step), run_id)}); will retry", "yellow")
    return Text("")


def _cell(text: str, style: str = "") -> Text:
    """A cell cut with an ellipsis rather than wrapped."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def steps_table(
    result: WorkflowResult, now: float, waiting: Mapping[str, str] | None = None,
    earlier: Mapping[str, Sequence[EarlierAttempt]] | None = None,
) -> Table:  # fmt: skip
    """One row per step, in the workflow's order: status, agent, attempts, time, and its outcome; under it a
    row for each of its ``earlier`` attempts (``#1``, ...)."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    widest = max((len(s) for s in result.steps), default=4)
    table.add_column("STEP", min_width=min(12, widest), max_width=40)  # both wide columns shrink to fit
    table.add_column("STATUS", no_wrap=True)
    table.add_column("AGENT", no_wrap=True, max_width=28, overflow="ellipsis")
    table.add_column("TRIES", justify="right", no_wrap=True)
    table.add_column("TIME", justify="right", no_wrap=True)
    planned = (result.plan or {}).get("steps") or {}
    assumed = set((result.plan or {}).get("assumed") or ())
    if planned:
        table.add_column("PLANNED", justify="right", no_wrap=True)
    table.add_column("OUTCOME", min_width=16)
    for step in result.steps.values():
        started = step.started_at if step.status == "in_progress" else None
        took = duration(step.duration if started is None else now - started)
        cells = [_cell(step.step_id), status_text(step.status), Text(step.agent_id or "-"),
                 Text(str(step.attempts) if step.attempts else "-"), Text(took)]  # fmt: skip
        if planned:
            slot = planned.get(step.step_id)
            guess = "?" if step.step_id in assumed else ""  # no duration known: 1 s assumed
            cells.append(Text(duration(slot[2] - slot[1]) + guess if slot else "-", style="dim"))
        table.add_row(*cells, outcome(step, result.run_id, waiting))
        for past in (earlier or {}).get(step.step_id, ()):
            took = duration(past.ended_at - past.started_at) if past.started_at is not None else "-"
            row = [_cell(f"  #{past.attempt}", "dim"), status_text(past.status), Text(past.agent_id or "-"),
                   Text(""), Text(took)]  # fmt: skip
            if planned:
                row.append(Text(""))
            table.add_row(*row, _cell(local(past.error, result.run_id), "red" if past.status == "failed" else "dim"))
    return table


# --- a run's header, hints, and the list of runs ---------------------------------------------------


def run_header(record: RunRecord, result: WorkflowResult, now: float, driver: str | None) -> Text:
    """``Run <id>  <status>`` and the run's facts: workflow, file, inputs, times, who drives it, the schedule that
    started it, why it ended."""
    spec = record.spec
    rows: list[tuple[str, str]] = [("workflow", spec.name + (f" ({spec.description})" if spec.description else ""))]
    if spec.source:
        rows.append(("file", spec.source))
    if record.inputs:
        rows.append(("inputs", one_line(dict(record.inputs), 200)))
    rows.append(("started", f"{clock_time(record.created_at)}  ({relative(record.created_at, now)})"))
    if record.finished_at is not None:
        rows.append(("finished", f"{clock_time(record.finished_at)}  (took {duration(result.duration)})"))
    else:
        rows.append(("running for", duration(now - record.created_at)))
    if record.plan:
        makespan, bound = record.plan.get("makespan"), record.plan.get("lower_bound")
        predicted = f"{duration(makespan)} ({record.plan.get('policy', 'default')} policy; no schedule beats "
        predicted += f"{duration(bound)})"
        if result.duration is not None and makespan:
            predicted += f"; it took {duration(result.duration)}, {100 * (result.duration / makespan - 1):+.0f}%"
        assumed = record.plan.get("assumed") or ()
        if len(assumed) == len(spec.steps):
            predicted += "; no step's duration was known, 1s each assumed"
        elif assumed:
            predicted += f"; {plural(len(assumed), 'step')} (PLANNED ?) of unknown duration counted as 1s each"
        rows.append(("predicted", predicted))
    if driver:
        rows.append(("driven by", driver))
    if record.schedule:
        rows.append(("schedule", record.schedule))  # the schedule whose tick started it
    if record.parent:
        parent_run, _, parent_step = record.parent.rpartition("/")
        rows.append(("sub-workflow of", f"run {parent_run}, step {parent_step}"))
    if record.reason and record.state is not RunState.COMPLETED:
        rows.append(("reason", local(record.reason, record.run_id)))
    width = max(len(label) for label, _ in rows) + 2
    header = Text.assemble(("Run ", "bold"), (record.run_id, "bold"), "  ", run_status_text(record.state), "\n")
    facts = [Text.assemble(("  " + label.ljust(width), "dim"), value) for label, value in rows]
    steps = Text.assemble(("  " + "steps".ljust(width), "dim"), str(len(result.steps)), ": ", counts_text(result))
    return header + Text("\n").join([*facts, steps])


def run_hints(result: WorkflowResult, db: str | None, *, show: bool = True) -> list[str]:
    """Commands to see more: the run again (with ``show``), the whole error of its first failed step."""
    hint = where_hint(db)  # show and status take --server too
    hints = [f"`pepper show {result.run_id}{hint}` shows this run again"] if show else []
    failed = result.failed_steps
    if failed:
        task_id = result.steps[failed[0]].task_id
        hints.append(f"`pepper status {task_id} --traceback{hint}` shows the whole error of step {failed[0]}")
    return hints


def runs_table(records: Sequence[RunRecord], ended: Mapping[str, int], now: float) -> Table:
    """One row per run: its workflow, status, steps that ended out of all, when it started, how long it took."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("RUN", no_wrap=True)
    table.add_column("WORKFLOW", no_wrap=True, overflow="ellipsis", max_width=30)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("ENDED", justify="right", no_wrap=True)  # steps that ended, however, out of all
    table.add_column("STARTED", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    scheduled = any(r.schedule for r in records)
    if scheduled:
        table.add_column("SCHEDULE", no_wrap=True)  # the schedule whose tick started the run ("-": by hand)
    if any(r.parent for r in records):
        table.add_column("PARENT", no_wrap=True)  # the step (run/step) a sub-workflow's run was started by
    for r in records:
        took = (
            duration(r.finished_at - r.created_at)
            if r.finished_at is not None
            else f"{duration(now - r.created_at)} so far"
        )
        table.add_row(
            Text(r.run_id),
            Text(r.workflow),
            run_status_text(r.state),
            Text(f"{ended[r.run_id]}/{len(r.spec.steps)}"),
            Text(relative(r.created_at, now)),
            Text(took),
            *((Text(r.schedule or "-"),) if scheduled else ()),
            *([Text(r.parent or "-")] if any(x.parent for x in records) else []),
        )
    return table
