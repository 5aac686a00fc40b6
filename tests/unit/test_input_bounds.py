"""Bounds on what a document may make pepper build: YAML aliases, expected fan-out items, a plan's tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pepper
from pepper.agents.loader import MAX_ALIAS_NODES, parse_yaml
from pepper.core import plan_inputs
from pepper.core.plan_inputs import MAX_PLAN_TASKS, planned_count
from pepper.core.planning import plan
from pepper.errors import AgentDefinitionError, ValidationError, WorkflowDefinitionError
from pepper.model.workflow import MAX_EXPECTED_ITEMS, WorkflowSpec, check_fan_out, make_step
from pepper.workflow_file import parse_workflow_text


def laughs(levels: int) -> str:
    """A workflow whose inputs nest ``levels`` lists of nine aliases of the list before: 9 ** levels values."""
    parts = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        parts.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "name: x\nsteps:\n  - id: s\n    type: work\n    inputs: {" + ", ".join(parts) + "}\n"


SHARED = """\
name: shared
steps:
  - id: one
    type: work
    inputs: {settings: &defaults {retries: 2, tags: [a, b]}}
  - id: two
    type: work
    inputs: {settings: *defaults, again: *defaults}
"""


def test_nested_aliases_that_would_expand_past_the_bound_are_refused_at_the_alias_line() -> None:
    document = laughs(9)  # about 400 bytes; copied out, 9 ** 9 values (gigabytes as JSON)
    assert len(document) < 500
    with pytest.raises(WorkflowDefinitionError) as refused:
        parse_workflow_text(document, "workflow")
    message = str(refused.value)
    assert f"{MAX_ALIAS_NODES:,} nodes" in message and "alias *a" in message
    assert message.startswith("workflow:5:")  # the line of the alias that went past the bound
    with pytest.raises(AgentDefinitionError, match="aliases expand it past"):
        parse_yaml(laughs(7), Path("agents.yaml"))  # the agents' files are read the same way


def test_a_document_using_a_few_anchors_still_reads_with_its_values_shared() -> None:
    data = parse_yaml(SHARED, Path("shared.yaml"))
    assert data["steps"][1]["inputs"]["again"] == {"retries": 2, "tags": ["a", "b"]}
    assert [s.step_id for s in parse_workflow_text(SHARED, "shared").spec.steps] == ["one", "two"]
    parsed = parse_workflow_text(laughs(4), "workflow")  # 9 ** 4 values: well within the bound
    assert [s.step_id for s in parsed.spec.steps] == ["s"]


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(AgentDefinitionError, match=r"alias \*loop is inside its own anchor &loop") as refused:
        parse_yaml("a: &loop\n  - 1\n  - *loop\n", Path("loop.yaml"))
    assert refused.value.line == 3


def fan_out(items: int, steps: int = 1) -> str:
    body = "".join(
        f'  - id: s{i}\n    type: q\n    for_each: "${{{{ inputs.items }}}}"\n    expected_items: {items}\n'
        for i in range(steps)
    )
    return f"name: many\nsteps:\n{body}"


def test_a_plan_of_more_tasks_than_the_bound_is_refused_before_any_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    original = plan_inputs.spec_tasks
    monkeypatch.setattr(plan_inputs, "spec_tasks", lambda spec, *a: made.append(spec.name) or original(spec, *a))
    steps = MAX_PLAN_TASKS // MAX_EXPECTED_ITEMS + 1
    (tmp_path / "many.yaml").write_text(fan_out(MAX_EXPECTED_ITEMS, steps))
    agents = [{"agent_id": "w", "task_types": ["q"]}]
    with pytest.raises(ValidationError, match=f"at most {MAX_PLAN_TASKS:,} tasks") as refused:
        plan(str(tmp_path / "many.yaml"), agents)
    assert refused.value.field == "workflow" and made == []
    with pytest.raises(ValidationError, match=f"at most {MAX_PLAN_TASKS:,} tasks"):
        plan([{"id": f"t{i}", "type": "q"} for i in range(MAX_PLAN_TASKS + 1)], agents)
    (tmp_path / "some.yaml").write_text(fan_out(3))
    assert len(plan(str(tmp_path / "some.yaml"), agents).schedule) == 3
    assert made == ["many"]


def test_a_plan_refuses_more_expected_items_than_the_bound_naming_it(tmp_path: Path) -> None:
    agents = [{"agent_id": "w", "task_types": ["q"]}]
    assert planned_count(parse_workflow_text(fan_out(MAX_EXPECTED_ITEMS), "workflow").spec) == MAX_EXPECTED_ITEMS
    (tmp_path / "more.yaml").write_text(fan_out(MAX_EXPECTED_ITEMS + 1))
    with pytest.raises(ValidationError, match=f"at most {MAX_EXPECTED_ITEMS:,}") as refused:
        plan(str(tmp_path / "more.yaml"), agents)
    assert refused.value.field == "expected_items" and "step 's0'" in str(refused.value)
    with pytest.raises(ValidationError, match="0 or more"):
        check_fan_out("${{ inputs.items }}", None, -1)


def test_a_workflow_expecting_more_items_than_a_plan_takes_is_still_read() -> None:
    """Runs stored with a larger expected_items stay readable: the bound is the planner's."""
    assert check_fan_out("${{ inputs.items }}", None, 20_000)[2] == 20_000
    spec = parse_workflow_text(fan_out(20_000), "workflow").spec
    assert spec.steps[0].expected_items == 20_000


def test_a_plan_counts_a_sub_workflow_used_many_times_once_and_stops_past_the_bound() -> None:
    spec = WorkflowSpec("leaf", (make_step("x", "q"),))
    for level in range(60):  # 2 ** 60 tasks once written out: counted by walking each copy, never done
        spec = WorkflowSpec(
            f"w{level}",
            (make_step("a", None, workflow=spec), make_step("b", None, workflow=spec, dependencies=["a"])),
        )
    assert planned_count(spec) > MAX_PLAN_TASKS
    with pytest.raises(ValidationError, match=f"at most {MAX_PLAN_TASKS:,} tasks") as refused:
        plan(spec, [{"agent_id": "w", "task_types": ["q"]}])
    assert refused.value.field == "workflow"


def test_with_no_agents_a_plan_is_refused_before_its_items_are_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    original = plan_inputs.spec_tasks
    monkeypatch.setattr(plan_inputs, "spec_tasks", lambda spec, *a: made.append(spec.name) or original(spec, *a))
    (tmp_path / "many.yaml").write_text(fan_out(MAX_EXPECTED_ITEMS))
    runtime = pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"))
    try:
        with pytest.raises(ValidationError, match="no agents to plan on"):
            plan(str(tmp_path / "many.yaml"), runtime=runtime)
    finally:
        runtime.close()
    assert made == []


def test_pepper_plan_refuses_too_many_expected_items(tmp_path: Path) -> None:
    (tmp_path / "huge.yaml").write_text(fan_out(100_000_000))
    (tmp_path / "agents.yaml").write_text("- agent_id: w\n  task_types: [q]\n  command: cat\n")
    done = subprocess.run(
        [sys.executable, "-m", "pepper", "plan", "huge.yaml", "--agents", "agents.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"expected_items must be at most {MAX_EXPECTED_ITEMS:,}" in done.stderr


def test_alert_rules_files_refuse_nested_aliases_at_the_alias_line(tmp_path: Path) -> None:
    from pepper.core.alert_rules import read_rules_file

    path = tmp_path / "rules.yaml"
    path.write_text(laughs(9))
    with pytest.raises(pepper.errors.ConfigError, match="aliases expand it past") as refused:
        read_rules_file(str(path))
    assert str(refused.value).startswith(f"{path}:5: invalid YAML: its aliases expand it past {MAX_ALIAS_NODES:,}")
    path.write_text("- name: errors\n  metric: error_rate\n  threshold: &t 0.5\n- name: again\n"
                    "  metric: error_rate\n  threshold: *t\n")  # fmt: skip
    assert [rule.name for rule in read_rules_file(str(path))] == ["errors", "again"]  # a few anchors still read


def test_a_resumed_run_s_agents_file_of_nested_aliases_is_refused(tmp_path: Path) -> None:
    from pepper.cli.run_setup import _is_workflow_file

    path = tmp_path / "workflow.yaml"
    path.write_text(laughs(9))
    assert not _is_workflow_file(path)  # refused by the bounded reader, not expanded...
    with pytest.raises(AgentDefinitionError, match="aliases expand it past"):
        pepper.load_agents(path)  # ... and the agents' reader says why, at its line
    path.write_text(laughs(2))
    assert _is_workflow_file(path)


def test_every_yaml_reader_of_pepper_uses_the_bounded_loader() -> None:
    root = Path(pepper.__file__).parent
    calls = ("yaml.safe_load(", "yaml.load(", "yaml.full_load(")
    readers = [
        str(file.relative_to(root))
        for file in root.rglob("*.py")
        if any(call in file.read_text(encoding="utf-8") for call in calls)
    ]
    assert readers == ["agents/loader.py"]
