"""Values SQLite would refuse when it binds them are refused when they are submitted, with a typed error
naming the field; bad agent files and steps no agent can take are refused too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pepper.agents.loader import read_agents
from pepper.errors import (
    AgentDefinitionError,
    ConfigError,
    InvalidPriorityError,
    InvalidTextError,
    NotSerializableError,
    ValidationError,
)
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.submission import MAX_RETRIES, build_task, tasks_from_specs
from pepper.model.task import Task
from pepper.model.workflow import make_step
from pepper.scheduling.eligibility import unrunnable_steps
from pepper.store.connection import connect

#: What ``os.listdir`` returns for a file name that is not UTF-8 (the byte 0xff, escaped as a lone surrogate).
LISTED = b"report-\xff.txt".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"task_id": LISTED}, "task_id"),
        ({"task_type": LISTED}, "task_type"),
        ({"inputs": {"files": [{"name": LISTED}]}}, "inputs"),
        ({"inputs": {LISTED: 1}}, "inputs"),
        ({"inputs": LISTED}, "inputs"),
        ({"metadata": {"source": LISTED}}, "metadata"),
        ({"requirements": {"skills": [LISTED]}}, "skills"),
        ({"dependencies": [LISTED]}, "dependency id"),
        ({"agent": LISTED}, "agent"),
        ({"policy": {"strategy": "retry", "retry_on": [LISTED]}}, "policy"),
        ({"policy": {"strategy": "fallback", "agent": LISTED}}, "policy"),
    ],
)
def test_text_with_a_lone_surrogate_is_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build_task(**{"task_type": "review", **fields})
    assert caught.value.field == field
    str(caught.value).encode("utf-8")  # the message itself can be printed and stored


def test_the_message_says_where_the_bad_text_is_and_how_to_fix_it() -> None:
    with pytest.raises(InvalidTextError, match=r"inputs\['files'\]\[0\]\['name'\] is not valid Unicode") as caught:
        build_task(task_type="review", inputs={"files": [{"name": LISTED}]})
    assert "os.fsencode(name).decode('utf-8', 'replace')" in str(caught.value)
    assert isinstance(caught.value, NotSerializableError)


def test_valid_non_ascii_text_is_accepted() -> None:
    task = build_task(task_type="review", inputs={"titre": "Résumé — 日本語 🎉"}, metadata={"by": "Zoë"})
    assert task.inputs == {"titre": "Résumé — 日本語 🎉"}


def test_an_agent_result_with_a_lone_surrogate_is_a_serialisation_error() -> None:
    with pytest.raises(NotSerializableError, match="result"):
        codec.normalise({"files": [LISTED]}, "the agent's result")


@pytest.mark.parametrize("max_retries", [10**30, 2**63, MAX_RETRIES + 1, -1, 1.5, True])
def test_max_retries_must_be_a_whole_number_within_its_bound(max_retries: Any) -> None:
    with pytest.raises(ValidationError, match=f"from 0 to {MAX_RETRIES}") as caught:
        build_task(task_type="review", max_retries=max_retries)
    assert caught.value.field == "max_retries"


def test_max_retries_up_to_its_bound_is_accepted() -> None:
    assert build_task(task_type="review", max_retries=MAX_RETRIES).max_retries == MAX_RETRIES


@pytest.mark.parametrize("timeout", [10**30, 10**400, "9999999w", 0])
def test_a_timeout_beyond_a_year_or_a_float_is_refused(timeout: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        build_task(task_type="review", timeout=timeout)
    assert caught.value.field == "timeout"


def test_huge_numbers_elsewhere_get_typed_errors_with_readable_messages() -> None:
    with pytest.raises(InvalidPriorityError, match="integer of"):
        build_task(task_type="review", priority=10**5000)  # too many digits even to print
    with pytest.raises(ValidationError, match="far too large"):
        build_task(task_type="review", requirements={"resources": {"gpu": 10**400}})


def test_big_integers_inside_inputs_are_stored_as_json_text() -> None:
    task = build_task(task_type="review", inputs={"n": 10**30})
    assert task.inputs == {"n": 10**30} and task.inputs_json == '{"n":' + str(10**30) + "}"


def test_a_task_built_by_hand_is_checked_before_it_is_stored() -> None:
    with pytest.raises(ValidationError, match="max_retries is out of range") as caught:
        tasks_from_specs([Task(task_id="t1", task_type="review", max_retries=10**30)], 0.0)
    assert caught.value.field == "max_retries"


@pytest.mark.parametrize("specs", [None, 5, "review", b"review", {"type": "review"}, object()])
def test_a_batch_must_be_a_list_of_tasks(specs: Any) -> None:
    with pytest.raises(ValidationError, match="expects a list of tasks") as caught:
        tasks_from_specs(specs, 0.0)
    assert caught.value.field == "tasks"


@pytest.mark.parametrize("item", [5, None, "review", ["review"]])
def test_each_item_of_a_batch_must_be_a_mapping_or_a_task(item: Any) -> None:
    with pytest.raises(ValidationError, match=r"tasks\[1\] must be a mapping"):
        tasks_from_specs([{"type": "review"}, item], 0.0)


def test_a_batch_may_be_any_iterable_of_mappings() -> None:
    tasks = tasks_from_specs(({"id": f"t{i}", "type": "review"} for i in range(3)), 0.0)
    assert [t.task_id for t in tasks] == ["t0", "t1", "t2"]


# --- agents ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"config": {"root": LISTED}}, "config"),
        ({"kind": "command", "command": f"cat {LISTED}"}, "command"),
        ({"skills": [LISTED]}, "skills"),
        ({"task_types": ["review", LISTED]}, "task_types"),
    ],
)
def test_agent_definitions_with_unstorable_text_are_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(AgentDefinitionError) as caught:
        AgentSpec.build("reviewer", **{"task_types": ["review"], **fields})
    assert caught.value.field == field


def test_an_agents_file_with_a_key_written_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - agent_id: echo\n    task_types: [echo]\n    command: cat\n    task_types: [x]\n")
    with pytest.raises(AgentDefinitionError, match=r"agents\.yaml:5: 'task_types' is written twice") as caught:
        read_agents(path)
    assert caught.value.line == 5


def test_a_key_written_twice_deeper_in_an_agent_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agent_id: echo\ntask_types: [echo]\ncommand: cat\nconfig:\n  depth: 1\n  depth: 2\n")
    with pytest.raises(AgentDefinitionError, match=r"agents\.yaml:6: 'depth' is written twice"):
        read_agents(path)


# --- steps no agent can take --------------------------------------------------------------------


def agents(*specs: tuple[str, list[str], list[str]]) -> list[AgentSpec]:
    return [AgentSpec.build(agent_id, task_types=types, skills=skills) for agent_id, types, skills in specs]


def test_a_step_needing_a_skill_no_agent_of_its_type_has_is_unrunnable() -> None:
    step = make_step("render", "docs", requirements={"skills": ["latex"]})
    pool = agents(("writer", ["docs"], ["markdown"]), ("typesetter", ["print"], ["latex"]))
    [(step_id, key, message)] = unrunnable_steps([step], pool)
    assert (step_id, key) == ("render", "skills")
    assert "needs skills latex" in message and "writer (markdown)" in message


def test_a_step_pinned_to_an_agent_without_its_skill_is_unrunnable() -> None:
    step = make_step("render", "docs", agent="writer", requirements={"skills": ["latex"]})
    pool = agents(("writer", ["docs"], ["markdown"]), ("other", ["docs"], ["latex"]))
    [(_, key, message)] = unrunnable_steps([step], pool)
    assert key == "skills" and "its agent 'writer' has markdown" in message


def test_steps_some_agent_can_take_pass() -> None:
    steps = [make_step("a", "docs", requirements={"skills": ["latex"]}), make_step("b", "docs", agent="writer")]
    assert unrunnable_steps(steps, agents(("writer", ["docs"], ["latex", "markdown"]))) == []
    unknown = unrunnable_steps([make_step("c", "build")], agents(("writer", ["docs"], [])))
    assert [(s, k) for s, k, _ in unknown] == [("c", "type")]


# --- database paths ------------------------------------------------------------------------------


def test_a_database_in_a_missing_folder_is_refused_and_no_folder_is_made(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "pepper.db"
    with pytest.raises(ConfigError, match="does not exist; create it first") as caught:
        connect(str(target))
    assert caught.value.field == "db"
    assert not (tmp_path / "no").exists()


def test_an_agents_file_that_is_not_utf8_is_refused_with_its_path(tmp_path) -> None:
    from pepper.agents.loader import read_yaml
    from pepper.errors import AgentDefinitionError

    path = tmp_path / "agents.yaml"
    path.write_bytes(b"\xff\xfeagents: []\n")
    with pytest.raises(AgentDefinitionError, match="not UTF-8"):
        read_yaml(path)
