"""``pepper why`` on approval, fan-out and sub-workflow steps that have ended: it says how they ended (and what
they became), not what they would do once the steps they need completed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.test_cli_workflows import AGENTS, AGENTS_MODULE, CLI

WAITING = "once the steps it needs completed"

ENDED = (
    AGENTS
    + """\
name: ended
inputs: {pages: [a, b, c], broken: false}
steps:
  - id: first
    type: build
    inputs: {fail: "${{ inputs.broken }}"}
  - id: render
    type: build
    needs: first
    for_each: ${{ inputs.pages }}
  - id: gate
    needs: first
    approval: {timeout: 1h, approvers: [ops@example.com]}
  - id: docs
    needs: first
    workflow: child.yaml
"""
)

CHILD = "name: child\nsteps:\n  - id: write\n    type: test\n"


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    (tmp_path / "wf_agents.py").write_text(AGENTS_MODULE)
    (tmp_path / "ended.yaml").write_text(ENDED)
    (tmp_path / "child.yaml").write_text(CHILD)
    return CLI(tmp_path)


def test_why_says_a_shaped_step_cancelled_with_its_run_was_cancelled(cli: CLI) -> None:
    cli.expect(1, "run", "ended.yaml", "-q", "--input", "broken=no compiler")
    run_id = cli.runs()[0]["run_id"]
    for step in ("render", "gate", "docs"):
        said = cli.expect(0, "why", f"{run_id}/{step}").stdout
        assert WAITING not in said and "will wait" not in said, said
        assert "It has finished" in said and "It was cancelled" in said and "dependency 'first' failed" in said
        data = cli.json("why", f"{run_id}/{step}")
        assert data["state"] == "cancelled" and "note" not in data


def test_why_says_a_completed_fan_out_completed_and_what_its_items_did(cli: CLI) -> None:
    (cli.folder / "ended.yaml").write_text(ENDED.replace("  - id: gate\n", "  - id: gate\n    when: 'false'\n"))
    cli.expect(0, "run", "ended.yaml", "-q")
    run_id = next(r["run_id"] for r in cli.runs() if r["workflow"] == "ended")

    said = cli.expect(0, "why", f"{run_id}/render").stdout
    assert "It completed at" in said and "on no agent" not in said and "started so far" not in said, said
    assert "Fanned out into 3 items: 3 completed." in said
    assert cli.json("why", f"{run_id}/render")["note"] == "fanned out into 3 items: 3 completed"

    child = next(r["run_id"] for r in cli.runs() if r["workflow"] == "child")
    said = cli.expect(0, "why", f"{run_id}/docs").stdout
    assert "It completed at" in said and f"Ran as sub-workflow run {child} (completed;" in said, said
