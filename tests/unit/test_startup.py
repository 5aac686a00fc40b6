"""Start-up loads only what is used: ``import pepper`` loads no subpackage, ``pepper --help`` no subcommand,
and neither changes what users see (every public name, every command and its help line)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import pepper
from pepper.cli.commands import COMMANDS, load_command, placeholder
from pepper.cli.main import cli

HEAVY = ("rich", "yaml", "psutil", "fastapi", "psycopg", "ray", "matplotlib", "httpx", "prometheus_client", "click")


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_import_pepper_loads_no_subpackage_and_no_heavy_dependency() -> None:
    modules = loaded_after("import pepper")
    assert [name for name in modules if name.startswith("pepper.")] == []
    assert [name for name in modules if name.split(".")[0] in HEAVY] == []


def test_help_loads_no_subcommand_module() -> None:
    modules = loaded_after(
        "from pepper.cli.main import cli\ncli.main(['--help'], prog_name='pepper', standalone_mode=False)"
    )
    loaded = {name for name in modules if name.startswith("pepper.")}
    assert loaded <= {"pepper.cli", "pepper.cli.main", "pepper.cli.commands", "pepper.cli.common"}
    assert [name for name in modules if name.split(".")[0] in HEAVY and name.split(".")[0] != "click"] == []


def test_every_public_name_loads_on_first_use() -> None:
    from pepper.core import Runtime, TaskOrchestrator

    for name in pepper.__all__:
        assert getattr(pepper, name) is not None, name
    assert pepper.Runtime is Runtime and pepper.TaskOrchestrator is TaskOrchestrator
    assert set(pepper.__all__) <= set(dir(pepper))
    assert pepper.errors.PepperError is pepper.PepperError  # subpackages too
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pepper.nope  # type: ignore[attr-defined]


def test_star_import_gives_every_public_name() -> None:
    names: dict[str, object] = {}
    exec("from pepper import *", names)
    assert set(pepper.__all__) <= set(names)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_line_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    for limit in (20, 45, 60, 80, 200):
        assert placeholder(name).get_short_help_str(limit) == command.get_short_help_str(limit), limit


def test_help_lists_every_command_once_in_order() -> None:
    shown = CliRunner().invoke(cli, ["--help"], terminal_width=100)
    assert shown.exit_code == 0, shown.output
    listed = [line.split()[0] for line in shown.output.split("Commands:")[1].splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)
    assert "Add a task to the queue and print its id." in shown.output


def test_a_subcommand_loads_when_it_runs_and_unknown_ones_are_refused() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["db", "--help"])
    assert shown.exit_code == 0 and "copy" in shown.output
    assert isinstance(cli.get_command(click.Context(cli), "db"), click.Group)
    typo = runner.invoke(cli, ["sumbit"])
    assert typo.exit_code == 2 and "No such command 'sumbit'" in typo.output


def test_the_command_line_states_the_limit_the_api_checks() -> None:
    from pepper.cli import common
    from pepper.model import units

    assert common.MOST_LISTED == units.MOST_LISTED
