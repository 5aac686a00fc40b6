"""``pepper rerun RUN [--failed | --from STEP]``: run an ended workflow run's steps again, in the same run."""

from __future__ import annotations

import click
from rich.text import Text

from pepper.cli.common import db_option, json_option, not_empty, open_runtime, where_hint
from pepper.cli.render import make_console
from pepper.cli.run_progress import Following, RunDisplay, drive, leave
from pepper.cli.run_report import RunHistory, finish
from pepper.cli.run_setup import parse_timeout, resume_agents
from pepper.cli.run_views import settled
from pepper.cli.worker import _stop_signals
from pepper.core import WorkflowController


@click.command(name="rerun", short_help="Run an ended workflow run's failed steps (or from a step) again.")
@click.argument("run_id", metavar="RUN")
@click.option("--failed", "failed_only", is_flag=True, help="Run its failed and cancelled steps again (the default).")
@click.option("--from", "from_step", metavar="STEP", help="Run STEP and every step downstream of it again.")
@click.option(
    "--agents",
    "agents_path",
    metavar="PATH",
    help="The agents to run its steps: an agents YAML file (or folder) or a workflow file. "
    "Default: the agents of the workflow file the run was started from.",
    callback=not_empty,
)
@click.option("--timeout", metavar="DURATION", help="Cancel the run if it has not finished after this long.")
@json_option
@db_option
def rerun(
    run_id: str, failed_only: bool, from_step: str | None, agents_path: str | None, timeout: str | None,
    as_json: bool, db: str | None,
) -> None:  # fmt: skip
    """Run the failed and cancelled steps of an ended workflow run again, or
    (--from STEP) that step and everything downstream of it, in the same run.

    Completed steps are kept; earlier attempts stay in the run's history
    (`pepper show RUN`). The steps run here, with the progress display and
    summary of `pepper run`.

    \b
    Examples:
      pepper rerun docsite-3f2a9c1e0b
      pepper rerun docsite-3f2a9c1e0b --from build
    """
    if failed_only and from_step is not None:
        raise click.UsageError("give --failed or --from STEP, not both")
    limit = parse_timeout(timeout)
    console = make_console()
    with open_runtime(db) as runtime:
        record = runtime.store.runs.get(run_id)
        controller = WorkflowController(record.workflow, runtime)
        controller.spec = record.spec
        controller.rerun_steps(run_id, from_step)  # refused before any agent is started here: nothing runs
        where = resume_agents(runtime, record, agents_path)
        steps = controller.start_rerun(run_id, from_step=from_step)
        before = controller.status(run_id)
        mode = "quiet" if as_json else "live" if console.is_terminal else "lines"
        display = RunDisplay(console, record.spec, mode, where_hint(db))
        display.skip_settled(before)
        with _stop_signals() as stopping:
            future = runtime.portal().submit(controller.wait_async(run_id))
            kept = sum(1 for s in before.steps.values() if settled(s))
            display.note(Text.assemble("re-running ", (", ".join(steps), "bold"), f" of run {run_id} ({kept} of "
                                       f"{len(before.steps)} steps kept); Ctrl-C cancels it"))  # fmt: skip
            display.note(Text(f"agents from {where}", style="dim"))
            result, ending = drive(
                runtime, Following(controller, run_id, display, stopping, limit, timeout, future), db
            )
        code = finish(
            console, record.spec, result, ending, as_json, False, None, None, db, RunHistory.of(runtime, result)
        )
    leave(code)
