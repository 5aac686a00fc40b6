"""``pepper alerts rules`` and ``pepper alerts test``: the alert rules of the configuration."""

from __future__ import annotations

import time

import click
from rich.text import Text

from pepper.cli.common import db_option, json_option, open_runtime
from pepper.cli.monitoring import alerts, table
from pepper.cli.render import make_console, print_json, relative
from pepper.core.alert_rules import AlertRules, find_rule, send_test, with_rules_file
from pepper.core.config import load_settings

_FILE_HELP = "Also the rules of this YAML file (as given to `pepper worker --alerts`)."


@click.command(name="rules")
@click.option("--alerts", "alerts_path", metavar="FILE", type=click.Path(), help=_FILE_HELP)
@json_option
@db_option
def list_rules(alerts_path: str | None, as_json: bool, db: str | None) -> None:
    """List the alert rules of pepper.toml ([[alerts]]) and whether each is firing now."""
    with open_runtime(db, create=True) as runtime:
        listed = AlertRules(runtime, with_rules_file(runtime.settings.alerts, alerts_path)).list()
    if as_json:
        print_json(listed)
        return
    console = make_console()
    if not listed:
        console.print(Text("No alert rule is configured; add [[alerts]] tables to pepper.toml."))
        return
    now = time.time()
    grid = table()
    for name in ("RULE", "WHEN", "FOR", "STATE", "FIRED", "SINKS"):
        grid.add_column(name, no_wrap=name != "SINKS")
    for rule in listed:
        when = f"{rule['metric']} {rule['comparison']} {rule['threshold']:g} over {rule['window']:g}s"
        state = Text("firing", style="red") if rule["firing"] else Text("ok", style="green")
        since = f" since {relative(rule['changed_at'], now)}" if rule["changed_at"] else ""
        state.append(since)
        grid.add_row(Text(rule["name"]), Text(when), Text(f"{rule['for']:g}s"), state, Text(str(rule["fired_count"])),
                     Text(", ".join(rule["sinks"])))  # fmt: skip
    console.print(grid)


@click.command(name="test")
@click.argument("rule", metavar="RULE")
@click.option("--alerts", "alerts_path", metavar="FILE", type=click.Path(), help=_FILE_HELP)
@db_option
def test_rule(rule: str, alerts_path: str | None, db: str | None) -> None:
    """Send a test notification of RULE to its sinks (its body says "test": true); exits 1 if a sink failed."""
    configured = load_settings({"db": db}).alerts  # the rules `pepper alerts rules --db ...` lists
    delivered = send_test(find_rule(with_rules_file(configured, alerts_path), rule), time.time())
    console = make_console()
    for sink, ok in delivered.items():
        console.print(Text(f"{'sent' if ok else 'FAILED'}: {sink}", style="green" if ok else "red"))
    if not all(delivered.values()):
        raise click.exceptions.Exit(1)


# ``pepper alerts`` lists what fired; its subcommands are the configured rules' (loaded with this module)
alerts.add_command(list_rules)
alerts.add_command(test_rule)
