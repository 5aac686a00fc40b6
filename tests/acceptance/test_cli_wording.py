"""What the commands say is true and names what the user gave: help texts, refusals and hints."""

from __future__ import annotations

from tests.acceptance.test_cli_workflows import CLI
from tests.acceptance.test_cli_workflows import cli as cli

FAILING_AGENT = """\
- agent_id: b
  task_types: [boom]
  command: 'cat >/dev/null; exit 1'
  recovery: dead_letter
"""


def test_token_create_help_names_every_character_a_name_may_have(cli: CLI) -> None:
    said = " ".join(cli.expect(0, "token", "create", "--help").stdout.split())
    assert "1-64 of A-Z a-z 0-9 _ . @ -" in said
    cli.expect(0, "token", "create", "--scope", "write", "--name", "release-manager@example.com")


def test_a_bad_task_log_limit_is_told_as_that_setting(cli: CLI) -> None:
    (cli.folder / "pepper.toml").write_text('[pepper]\ntask_log_limit = "lots"\n')
    refused = cli.expect(2, "tasks").stderr
    assert "setting 'task_log_limit' must be a number of bytes or a size such as '512KiB' or '1MiB'" in refused
    assert "got 'lots'" in refused and "memory" not in refused


def test_a_test_alert_says_when_the_rule_fires_not_that_it_does(cli: CLI) -> None:
    (cli.folder / "pepper.toml").write_text(
        '[[alerts]]\nname = "e"\nmetric = "error_rate"\nthreshold = 0.5\nsinks = [{type = "log"}]\n'
    )
    said = cli.expect(0, "alerts", "test", "e")
    assert "test notification of alert rule 'e': it fires when error_rate > 0.5 (over 60s)" in said.stdout + said.stderr
    assert "is 0.5" not in said.stdout + said.stderr


def test_why_names_the_database_in_its_dead_letter_hint(cli: CLI) -> None:
    (cli.folder / "a.yaml").write_text(FAILING_AGENT)
    cli.expect(0, "submit", "boom", "--id", "b1")
    cli.expect(0, "worker", "--agents", "a.yaml", "--until-idle", "-q")
    said = " ".join(cli.expect(0, "why", "b1").stdout.split())
    assert f"`pepper dlq replay b1 --db {cli.db}` runs it again" in said


def test_db_copy_names_a_bad_source_or_destination_so(cli: CLI) -> None:
    cli.expect(0, "submit", "x", "--id", "a")
    folder = cli("db", "copy", cli.db, str(cli.folder))
    assert folder.returncode == 2 and f"DST '{cli.folder}' is a folder; give a database file" in folder.stderr
    empty = cli("db", "copy", "", cli.db)
    assert empty.returncode == 2 and "SRC must be a non-empty path, got ''" in empty.stderr
    assert "--db" not in folder.stderr + empty.stderr and "setting 'db'" not in empty.stderr


def test_worker_database_metrics_without_a_metrics_port_is_refused(cli: CLI) -> None:
    (cli.folder / "a.yaml").write_text(FAILING_AGENT)
    refused = cli.expect(2, "worker", "--agents", "a.yaml", "--database-metrics", "--until-idle")
    assert "--database-metrics exports on the metrics server: give --metrics-port PORT too" in refused.stderr
