"""``pepper approve``: decide a workflow step that waits for a person."""

from __future__ import annotations

import click
from rich.text import Text

from pepper.cli.common import db_option, json_option, open_runtime, server_option, where_hint
from pepper.cli.render import text_console
from pepper.core import WorkflowController


@click.command(name="approve", short_help="Approve (or reject) a workflow step that waits for a person.")
@click.argument("run_id", metavar="RUN")
@click.argument("step_id", metavar="STEP")
@click.option("--reject", is_flag=True, help="Reject instead: the step fails (or its recovery policy skips it).")
@click.option("--reason", metavar="TEXT", help="Why (kept with the decision, shown by `pepper show`).")
@click.option(
    "--by",
    "by",
    metavar="WHO",
    help="Who decides: one of the step's approvers, when it names them. "
    "Through a server (--server) it is the token's name, and another name is refused.",
)
@json_option
@db_option
@server_option
def approve(run_id: str, step_id: str, reject: bool, reason: str | None, by: str | None, as_json: bool,
            db: str | None) -> None:  # fmt: skip
    """Approve STEP of workflow run RUN, which waits for a person (a step with
    `approval:` in its workflow). The run goes on at once.

    The first decision is the one kept: deciding a step again, a step that
    does not wait for approval (or not yet), or one whose time ran out is an
    error and changes nothing. `pepper why RUN/STEP` says who a step waits for
    and until when.

    \b
    Examples:
      pepper approve release-3f2a9c1e0b gate --by ops@example.com
      pepper approve release-3f2a9c1e0b gate --reject --reason "tests are red" --by ops@example.com
    """
    with open_runtime(db) as runtime:
        decided = WorkflowController(runtime=runtime).approve(run_id, step_id, approve=not reject, reason=reason, by=by)
    console = text_console(as_json, decided.to_dict())
    if console is None:
        return
    who = f" by {decided.decided_by}" if decided.decided_by else ""
    console.print(Text(f"{decided.decision} step {step_id} of run {run_id}{who}"))
    console.print(Text(f"`pepper show {run_id}{where_hint(db)}` follows the run", style="dim"))
