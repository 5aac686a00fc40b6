"""Workflows that shape themselves, from the command line as a user runs them: a fan-out over an input list,
an approval decided with ``pepper approve`` from another process while ``pepper run`` waits (and explained by
``pepper why``), a sub-workflow file linked to its parent in ``pepper runs`` and ``pepper show``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.test_cli_workflows import AGENTS, AGENTS_MODULE, CLI, TIMEOUT, _env, _until

APPROVER = "approver@example.com"

FLOW = (
    AGENTS
    + """\
name: flow
inputs: {pages: [a, b, c]}
steps:
  - id: render
    type: build
    for_each: ${{ inputs.pages }}
    max_parallel: 2
    inputs: {x: "${{ index }}-${{ item }}"}
  - id: gate
    needs: render
    approval: {timeout: 1h, approvers: [approver@example.com]}
  - id: docs
    needs: gate
    workflow: parts/child.yaml
    inputs: {x: child}
"""
)

CHILD = """\
name: child
steps:
  - id: write
    type: test
"""


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    (tmp_path / "wf_agents.py").write_text(AGENTS_MODULE)
    (tmp_path / "flow.yaml").write_text(FLOW)
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "child.yaml").write_text(CHILD)
    return CLI(tmp_path)


def _waiting_run(cli: CLI) -> str | None:
    runs = [r for r in cli.runs() if r["workflow"] == "flow"]
    if not runs:
        return None
    why = cli("why", f"{runs[0]['run_id']}/gate")
    return runs[0]["run_id"] if "waits for approval by" in why.stdout else None


def test_a_run_fans_out_waits_for_an_approval_given_from_another_process_and_runs_its_sub_workflow(cli: CLI) -> None:
    running = cli.popen("run", "flow.yaml")
    try:
        run_id = _until(lambda: _waiting_run(cli), "the run waits for its approval")
        why = cli.expect(0, "why", f"{run_id}/gate")
        until = r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(in \d+m \d\ds\); `pepper approve"
        assert re.search(f"waits for approval by {re.escape(APPROVER)} {until}", why.stdout), why.stdout
        assert f"pepper approve {run_id} gate --db {cli.db}`" in why.stdout
        wide = subprocess.run(cli.argv("show", run_id), cwd=cli.folder, env=_env(COLUMNS="500"), capture_output=True,
                              text=True, timeout=TIMEOUT)  # fmt: skip
        assert f"`pepper approve {run_id} gate --db {cli.db}` decides" in wide.stdout, wide.stdout  # on this db too
        refused = cli("approve", run_id, "gate", "--by", "other@example.com")
        assert refused.returncode != 0 and "is not among them" in refused.stderr and "Traceback" not in refused.stderr
        unknown = cli("approve", run_id, "nope", "--by", APPROVER)
        assert unknown.returncode != 0 and "has no step 'nope'" in unknown.stderr
        approved = cli.expect(0, "approve", run_id, "gate", "--by", APPROVER, "--reason", "ship it")
        assert f"approved step gate of run {run_id} by {APPROVER}" in approved.stdout
        again = cli("approve", run_id, "gate", "--reject", "--by", APPROVER)
        assert again.returncode != 0 and "already" in again.stderr
        out, err = running.communicate(timeout=TIMEOUT)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, f"stdout: {out}\nstderr: {err}"
    assert "3 steps, 3 completed" in out

    shown = cli.json("show", run_id)
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert steps["render"]["result"] == [{"step": "render", "x": f"{i}-{p}", "after": []} for i, p in enumerate("abc")]
    assert steps["gate"]["result"] == {"approved": True, "by": APPROVER, "reason": "ship it"}
    assert steps["docs"]["result"]["write"]["step"] == "write"

    runs = {r["run_id"]: r for r in cli.runs()}
    (child,) = [r for r in runs.values() if r["workflow"] == "child"]
    assert child["parent"] == f"{run_id}/docs"
    table = cli.expect(0, "runs").stdout
    assert "PARENT" in table and f"{run_id}/docs" in table
    assert "sub-workflow of" in cli.expect(0, "show", child["run_id"]).stdout
