"""``pepper run`` (a workflow file, live), ``runs``, ``show``, ``cancel-run`` and ``resume``: workflow runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.text import Text

import pepper
from pepper.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_TASK_FAILED,
    check_gantt_path,
    db_option,
    json_option,
    limit_option,
    not_empty,
    open_runtime,
    server_option,
    where_hint,
)
from pepper.cli.inputs import parse_inputs
from pepper.cli.render import make_console, plural, print_json, text_console
from pepper.cli.run_progress import Following, RunDisplay, drive, leave, wake_on_events
from pepper.cli.run_report import RunHistory, draw, driver_note, finish, waiting_notes
from pepper.cli.run_setup import (
    controller_for,
    parse_timeout,
    refuse_missing_inputs,
    refuse_unrunnable,
    resume_agents,
    start_agents,
)
from pepper.cli.run_views import counts_text, run_header, run_hints, runs_table, settled, steps_table
from pepper.cli.worker import _stop_signals
from pepper.core import WorkflowController
from pepper.drawing import workflow_dot
from pepper.model.workflow_run import RunRecord, RunState
from pepper.workflow_file import parse_workflow_file

#: How long ``pepper cancel-run`` waits for the run to end before leaving it to the process that drives it.
_CANCEL_WAIT = 5.0

_TIMEOUT_HELP = "Cancel the run if it has not finished after this long (e.g. 90s, 10m, 2h)."
_GANTT_HELP = "Draw the run as a Gantt chart (one row per agent) into this PNG file"
_DOT_HELP = "Write the workflow as a Graphviz graph, steps coloured by status; '-' prints only it on stdout."


def _gantt_option(when: str) -> Any:
    return click.option("--gantt", metavar="PNG", type=click.Path(dir_okay=False), help=_GANTT_HELP + when)


_dot_option = click.option("--dot", metavar="PATH|-", help=_DOT_HELP)


# --- pepper run ------------------------------------------------------------------------------


@click.command(name="run")
@click.argument("file", metavar="FILE")
@click.option(
    "--input",
    "input_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set one of the run's inputs (over the file's `inputs`); VALUE is JSON if it parses, else text.",
)
@click.option("--timeout", metavar="DURATION", help=_TIMEOUT_HELP)
@json_option
@_gantt_option(", however the run ends.")
@_dot_option
@click.option("--quiet", "-q", is_flag=True, help="Show no progress or table; only how the run ended.")
@db_option
@server_option
def run_workflow(
    file: str,
    input_pairs: tuple[str, ...],
    timeout: str | None,
    as_json: bool,
    gantt: str | None,
    dot: str | None,
    quiet: bool,
    db: str | None,
) -> None:
    """Run a workflow file to its end, showing its progress.

    The file names the steps, their dependencies and the agents that run
    them (in this process, beside any `pepper worker` on the same --db).
    Ends with a table of the steps and how each went. Ctrl-C (or SIGTERM)
    cancels the run; `pepper resume RUN` finishes a run whose process was
    killed.

    \b
    Examples:
      pepper run workflow.yaml
      pepper run workflow.yaml --input site=docs --timeout 10m --gantt run.png

    \b
    A workflow file looks like:
      name: publish
      agents: agents.yaml          # or agents written here, as in an agents file
      inputs: {site: docs}         # defaults; --input overrides them
      steps:
        - id: build
          type: build
          inputs: {dir: "${{ inputs.site }}"}
        - id: review
          type: review
          needs: build             # runs once build completed; gets its result
          retries: 2

    With --server, the server runs it with the agents of its workers: the
    file may not define agents of its own (no `agents:`), and the progress
    shown comes from the server's event stream.

    Exits with 0 if every step completed (or was skipped), 1 if a step
    failed or the run was cancelled or timed out, 130 after Ctrl-C.
    """
    overrides = parse_inputs(input_pairs, None)
    limit = parse_timeout(timeout)
    _check_outputs(as_json, gantt, dot, Path(file))
    path = Path(file)
    parsed = parse_workflow_file(path)
    quiet = quiet or dot == "-"  # stdout is for the graph: only the verdict, on stderr
    console = make_console(stderr=dot == "-")
    mode = "quiet" if quiet or as_json else "live" if console.is_terminal else "lines"
    with open_runtime(db, create=True) as runtime:
        if not runtime.server:  # a server checks its own workers' agents
            refuse_unrunnable(parsed, db)
        controller = controller_for(parsed, runtime)
        refuse_missing_inputs(parsed, {**controller.default_inputs, **overrides})
        if not runtime.server:
            start_agents(runtime, controller.spec.steps)
        display = RunDisplay(console, controller.spec, mode, where_hint(db))
        with _stop_signals() as stopping:
            run_id = controller.start(overrides)
            steps = plural(len(controller.spec.steps), "step")
            display.note(Text.assemble("run ", (run_id, "bold"), f" of workflow {controller.name} ({steps}) started; "
                                       "Ctrl-C cancels it"))  # fmt: skip
            following = Following(
                controller, run_id, display, stopping, limit, timeout, wake=wake_on_events(runtime, run_id)
            )
            result, ending = drive(runtime, following, db)
        history = None if runtime.server else RunHistory.of(runtime, result)
        code = finish(console, controller.spec, result, ending, as_json, quiet, gantt, dot, db, history)
    leave(code)


def _check_outputs(as_json: bool, gantt: str | None, dot: str | None = None, source: Path | None = None) -> None:
    check_gantt_path(gantt, source)
    if as_json and dot == "-":
        raise click.UsageError("--json and --dot - both print on stdout; write the graph to a file (--dot run.dot)")


# --- pepper runs -----------------------------------------------------------------------------------


@click.command(name="runs")
@click.option(
    "--state",
    type=click.Choice([s.value for s in RunState]),
    metavar="STATE",
    help="Only runs in this state: running, completed, failed, cancelled.",
    callback=not_empty,
)
@limit_option(20, "Show at most N runs")
@json_option
@db_option
@server_option
def list_runs(state: str | None, limit: int, as_json: bool, db: str | None) -> None:
    """List workflow runs, newest first.

    ENDED counts the steps that ended, however they ended (completed,
    failed, cancelled or skipped), out of all the workflow's steps:
    `pepper show RUN` says how each one went.
    """
    with open_runtime(db) as runtime:
        records = runtime.read(lambda backend: backend.list_runs(limit, RunState(state) if state else None))
        if runtime.server:
            controller = WorkflowController(runtime=runtime)
            ended = {r.run_id: controller.status(r.run_id).steps_ended for r in records}
        else:
            ended = {r.run_id: _ended_steps(runtime, r.run_id) for r in records}
    if as_json:
        print_json([_run_dict(r, ended[r.run_id]) for r in records])
        return
    console = make_console()
    if not records:
        console.print(Text(f"No {state} workflow runs." if state else "No workflow runs yet."))
        if not state:
            console.print(Text(f"Start one with: pepper run workflow.yaml{where_hint(db)}", style="dim"))
        return
    console.print(runs_table(records, ended, time.time()))
    if len(records) == limit:
        console.print(Text(f"\nshowing the newest {limit}; use --limit N to see more", style="dim"))


def _ended_steps(runtime: pepper.Runtime, run_id: str) -> int:
    steps = runtime.store.runs.tasks(run_id).items()  # a fan-out's items (run/step[i]) are not steps
    return sum(1 for tid, record in steps if record.state.is_final and not tid.endswith("]"))


def _run_dict(record: RunRecord, ended: int) -> dict[str, Any]:
    took = None if record.finished_at is None else max(0.0, record.finished_at - record.created_at)
    return {"run_id": record.run_id, "workflow": record.workflow, "status": record.state.value,
            "steps": len(record.spec.steps), "steps_ended": ended, "created_at": record.created_at,
            "finished_at": record.finished_at, "duration": took, "reason": record.reason,
            "source": record.spec.source, "schedule": record.schedule, "parent": record.parent}  # fmt: skip


# --- pepper show -----------------------------------------------------------------------------------


@click.command(name="show", short_help="Show one workflow run, step by step.")
@click.argument("run_id", metavar="RUN")
@json_option
@_gantt_option(".")
@_dot_option
@db_option
@server_option
def show_run(run_id: str, as_json: bool, gantt: str | None, dot: str | None, db: str | None) -> None:
    """Show one workflow run: how it went (or where it stands), step by step.

    Steps that have not started say what they wait for. Exits with 1 when
    the run failed or was cancelled, like `pepper status`. `pepper runs`
    lists the runs.
    """
    _check_outputs(as_json, gantt, dot)
    with open_runtime(db) as runtime:
        record = runtime.read(lambda backend: backend.run_record(run_id))
        result = WorkflowController(runtime=runtime).status(run_id)
        waiting = waiting_notes(runtime, result, record.spec, db)
        driver = driver_note(runtime, record, db)
        history = RunHistory.of(runtime, result)
    drawn, failed = draw(result, record.spec, gantt, dot, history)
    if as_json:
        print_json({**result.to_dict(), "source": record.spec.source, "schedule": record.schedule})
    elif dot == "-":
        click.echo(workflow_dot(record.spec, result), nl=False)
    else:
        now = time.time()
        console = make_console()
        console.print(run_header(record, result, now, driver))
        console.print(Text(""))
        console.print(steps_table(result, now, waiting, history.earlier))
        hints = [*run_hints(result, db, show=False), *drawn]
        if gantt is None and result.started_at is not None:
            hints.append(f"`pepper show {run_id} --gantt run.png{where_hint(db)}` draws it")
        console.print(Text(""))
        for hint in hints:
            console.print(Text(hint, style="dim"))
    if result.status in (RunState.FAILED, RunState.CANCELLED):
        raise click.exceptions.Exit(EXIT_TASK_FAILED)
    if failed:
        raise click.exceptions.Exit(EXIT_BAD_INPUT)


# --- pepper cancel-run -----------------------------------------------------------------------------


@click.command(name="cancel-run", short_help="Cancel a workflow run's unfinished steps.")
@click.argument("run_id", metavar="RUN")
@click.option("--reason", metavar="TEXT", help="Why (kept with the run and its cancelled steps).")
@json_option
@db_option
def cancel_run(run_id: str, reason: str | None, as_json: bool, db: str | None) -> None:
    """Cancel a workflow run: its steps that have not ended are cancelled.

    Running steps are asked to stop. Cancelling a run that already ended
    changes nothing (and is not an error).
    """
    with open_runtime(db) as runtime:
        runtime.store.runs.get(run_id)  # an unknown run is an error before anything starts
        cancelled = WorkflowController(runtime=runtime).cancel(run_id, reason)
        deadline = time.monotonic() + _CANCEL_WAIT
        while cancelled and not _ended(runtime, run_id) and time.monotonic() < deadline:
            time.sleep(0.1)
    with open_runtime(db) as runtime:  # read afresh: the steps ran elsewhere
        result = WorkflowController(runtime=runtime).status(run_id)
    console = text_console(as_json, {"run_id": run_id, "cancelled": cancelled, "status": result.status.value})
    if console is None:
        return
    if not cancelled:
        console.print(Text(f"run {run_id} already ended ({result.status}); nothing to cancel"))
    elif result.status.is_final:
        console.print(Text.assemble(f"cancelled run {run_id}: ", counts_text(result)))
    else:
        console.print(Text(f"asked the process driving run {run_id} to stop its steps; "
                           f"`pepper show {run_id}{where_hint(db)}` follows it"))  # fmt: skip


def _ended(runtime: pepper.Runtime, run_id: str) -> bool:
    """True once the run and each of its steps' tasks ended, as stored."""
    store = runtime.store.runs
    return store.get(run_id).state.is_final and all(t.state.is_final for t in store.tasks(run_id).values())


# --- pepper resume ---------------------------------------------------------------------------------


@click.command(name="resume", short_help="Finish a workflow run whose process stopped.")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--agents",
    "agents_path",
    metavar="PATH",
    help="The agents to run its steps: an agents YAML file (or folder) or a workflow file. "
    "Default: the agents of the workflow file the run was started from.",
    callback=not_empty,
)
@click.option("--timeout", metavar="DURATION", help=_TIMEOUT_HELP)
@json_option
@_gantt_option(", however the run ends.")
@db_option
def resume_run(
    run_id: str, agents_path: str | None, timeout: str | None, as_json: bool, gantt: str | None, db: str | None
) -> None:
    """Finish a workflow run whose process stopped (killed, crashed, closed).

    Steps that completed are not run again; the others run here, on the
    agents of the run's workflow file (or those given with --agents), with
    the same progress display and summary as `pepper run`.

    \b
    Example:
      pepper resume docsite-3f2a9c1e0b
    """
    limit = parse_timeout(timeout)
    _check_outputs(as_json, gantt)
    console = make_console()
    with open_runtime(db) as runtime:
        record = runtime.store.runs.get(run_id)
        controller = WorkflowController(record.workflow, runtime)
        controller.spec = record.spec
        if record.state.is_final:
            result = controller.status(run_id)
            if not as_json:
                console.print(Text(f"run {run_id} already ended ({record.state}); nothing to resume"))
            code = finish(console, record.spec, result, None, as_json, False, gantt, None, db,
                          RunHistory.of(runtime, result))  # fmt: skip
        else:
            before = controller.status(run_id)  # before any agent is here to run a step of it
            where = resume_agents(runtime, record, agents_path)
            display = RunDisplay(
                console, record.spec, "quiet" if as_json else "live" if console.is_terminal else "lines", where_hint(db)
            )
            display.skip_settled(before)
            with _stop_signals() as stopping:
                future = runtime.portal().submit(controller.resume_async(run_id))
                done = sum(1 for s in before.steps.values() if settled(s))
                display.note(Text.assemble("resuming run ", (run_id, "bold"), f" of workflow {record.workflow} ({done} "
                                           f"of {len(before.steps)} steps had ended); Ctrl-C cancels it"))  # fmt: skip
                display.note(Text(f"agents from {where}", style="dim"))
                result, ending = drive(
                    runtime, Following(controller, run_id, display, stopping, limit, timeout, future), db
                )
            code = finish(console, record.spec, result, ending, as_json, False, gantt, None, db,
                          RunHistory.of(runtime, result))  # fmt: skip
    leave(code)
