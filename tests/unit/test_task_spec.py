"""One task-spec schema: ``submit_tasks`` mappings, workflow-file steps, sequencer tasks and plan tasks
accept the same keys and aliases, and refuse an unknown key with the same message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import pepper
from pepper.core.workflow import TaskSequencer
from pepper.errors import ValidationError
from pepper.model.submission import tasks_from_specs
from pepper.model.task_spec import FIELD_OF, PLAN, STEP, SUBMIT, SpecKey, spec_fields
from pepper.workflow_file import parse_workflow_file

AGENTS = [{"agent_id": "a", "task_types": ["t"], "skills": ["md"]}]


def _submitted(specs: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    return {t.task_id: t.dependencies for t in tasks_from_specs(specs, now=0.0)}


def _from_file(specs: list[dict[str, Any]], tmp_path: Path) -> dict[str, tuple[str, ...]]:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump({"name": "wf", "steps": specs}))
    return {s.step_id: s.template.dependencies for s in parse_workflow_file(path).spec.steps}


def _sequenced(specs: list[dict[str, Any]], runtime: pepper.Runtime) -> dict[str, tuple[str, ...]]:
    sequence = TaskSequencer(runtime).create_sequence(specs)
    return {s.step_id: s.template.dependencies for s in sequence.tasks}


def _planned(specs: list[dict[str, Any]], runtime: pepper.Runtime) -> set[str]:
    return {slot.task_id for slot in pepper.plan(specs, AGENTS, runtime=runtime).schedule}


@pytest.mark.parametrize(
    "specs",
    [
        [{"id": "x", "type": "t"}, {"id": "y", "type": "t", "needs": ["x"], "priority": "high", "skills": ["md"]}],
        [{"task_id": "x", "task_type": "t"}, {"step_id": "y", "task_type": "t", "dependencies": ["x"]}],
        [{"id": "x", "type": "t"}, {"id": "y", "type": "t", "depends_on": ["x"], "max_retries": 1}],
    ],
)
def test_the_same_spec_is_accepted_by_every_reader(specs, tmp_path, runtime):
    # Given one list of task specs, written with the file's keys or with any alias
    expected = {"x": (), "y": ("x",)}
    # When submit_tasks, a workflow file, the sequencer and a plan read it
    # Then each reads the same tasks and dependencies
    assert _submitted(specs) == expected
    assert _from_file(specs, tmp_path) == expected
    assert _sequenced(specs, runtime) == expected
    assert _planned(specs, runtime) == {"x", "y"}


def test_an_unknown_key_gets_the_same_message_everywhere(tmp_path, runtime):
    # Given a spec with a misspelt key
    specs = [{"id": "x", "type": "t", "dependson": ["y"]}]
    expected = (
        r"unknown .* 'dependson'; valid keys: id \(or task_id, step_id\), type \(or task_type\), agent, "
        r"needs \(or dependencies, depends_on\), .* Did you mean 'depends_on'\?"
    )
    # Then every reader refuses it naming the valid keys and the likely fix
    for read in (
        _submitted,
        lambda s: _from_file(s, tmp_path),
        lambda s: _sequenced(s, runtime),
        lambda s: _planned(s, runtime),
    ):
        with pytest.raises(ValidationError, match=expected):
            read(specs)


def test_a_field_given_under_two_names_is_refused():
    with pytest.raises(ValidationError, match="'needs' is given twice"):
        spec_fields({"id": "x", "needs": [], "dependencies": []}, SUBMIT)


def test_each_reader_takes_only_the_fields_that_mean_something_to_it():
    assert "condition" in STEP and "condition" not in SUBMIT and "condition" not in PLAN
    assert "duration" in PLAN and "duration" not in STEP
    with pytest.raises(ValidationError, match="'when' has no meaning here"):
        spec_fields({"id": "x", "when": "true"}, SUBMIT)


def test_every_alias_names_one_field():
    assert all(isinstance(k, SpecKey) for k in pepper.model.task_spec.SPEC_KEYS)
    assert FIELD_OF["needs"] == FIELD_OF["dependencies"] == FIELD_OF["depends_on"] == "dependencies"
    assert FIELD_OF["type"] == FIELD_OF["task_type"] == "task_type"


@pytest.mark.parametrize("accepted", [SUBMIT, STEP, PLAN])
def test_the_unknown_key_message_names_every_accepted_spelling_and_only_those(accepted):
    # Given the message for an unknown key
    with pytest.raises(ValidationError) as caught:
        spec_fields({"colour": "red"}, accepted)
    listed = str(caught.value).split("valid keys: ", 1)[1].split(".", 1)[0]
    named = set(re.findall(r"[a-z_]+", listed)) - {"or"}
    # Then every spelling it names is accepted, and every accepted spelling is named
    assert named == {key for key, name in FIELD_OF.items() if name in accepted}
    for key in named:
        spec_fields({key: None}, accepted)
    assert "id (or task_id, step_id), type (or task_type)" in listed
