"""``pepper prune``: remove finished work older than a horizon, and give the space back."""

from __future__ import annotations

import time

import click
from rich.text import Text

from pepper.cli.common import db_option, json_option, open_runtime
from pepper.cli.render import make_console, print_json
from pepper.model.units import parse_duration


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Remove what ended longer ago than this, e.g. 30d, 12h, 90m.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Only count what would be removed; change nothing.")
@json_option
@db_option
def prune(older_than: str, dry_run: bool, as_json: bool, db: str | None) -> None:
    """Remove finished tasks (with their attempts, errors and logs), finished workflow runs (with their
    approvals) and alerts that ended longer ago than AGE, then give the space back to the disk.

    Unfinished tasks stay, as do the tasks an unfinished task depends on, the steps of runs still going
    and the sub-workflow runs of runs still going.
    A `retention = "30d"` setting in pepper.toml has workers do this in the background.
    """
    seconds = parse_duration(older_than, "--older-than")
    with open_runtime(db) as runtime:
        counts = runtime.store.prune(time.time() - seconds, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "older_than": seconds, "removed": counts})
        return
    verb = "would remove" if dry_run else "removed"
    parts = [f"{n} {kind.removesuffix('s') if n == 1 else kind}" for kind, n in counts.items()]  # 1 run, 2 runs
    make_console().print(Text(f"{verb}: {', '.join(parts)}"))
