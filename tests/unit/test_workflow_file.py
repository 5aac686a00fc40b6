"""Workflow files: the YAML format, its agents, and errors that point at the offending line."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import pepper
from pepper.core import load_workflow
from pepper.core.workflow import read_workflow_file
from pepper.errors import AgentDefinitionError, WorkflowDefinitionError
from pepper.model.requirements import Requirements
from pepper.model.task import Priority
from pepper.workflow_file import parse_workflow_file


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def runtime(tmp_path: Path):
    rt = pepper.Runtime(db=":memory:", home=str(tmp_path / "home"))
    yield rt
    rt.close()


FULL_LIST = """
name: docsite
description: Build the docs site
inputs: {site: docs, pages: [index, api]}
fail_fast: true
steps:
  - id: draft
    type: documentation
  - id: outline
    type: documentation
    agent: writer
    needs: [draft]
    inputs: {page: "${{ inputs.site }}/index.md", text: "${{ steps.draft.result.text }}"}
    priority: high
    timeout: 30s
    retries: 2
    skills: [markdown]
    resources: {cpu: 1, memory: 512Mi}
    when: steps.draft.result.ok
    metadata: {owner: docs}
  - id: publish
    type: publish
    needs: outline
    priority: 7
    requirements: {performance_score: 0.5}
    when: "${{ steps.outline.skipped == false }}"
"""

FULL_MAPPING = """
name: docsite
description: Build the docs site
inputs: {site: docs, pages: [index, api]}
fail_fast: true
steps:
  draft:
    type: documentation
  outline:
    type: documentation
    agent: writer
    needs: [draft]
    inputs: {page: "${{ inputs.site }}/index.md", text: "${{ steps.draft.result.text }}"}
    priority: high
    timeout: 30s
    retries: 2
    skills: [markdown]
    resources: {cpu: 1, memory: 512Mi}
    when: steps.draft.result.ok
    metadata: {owner: docs}
  publish:
    type: publish
    needs: outline
    priority: 7
    requirements: {performance_score: 0.5}
    when: "${{ steps.outline.skipped == false }}"
"""


def test_a_full_file_becomes_the_spec_it_describes(tmp_path):
    path = write(tmp_path / "docsite.yaml", FULL_LIST)
    parsed = parse_workflow_file(path)
    spec = parsed.spec
    assert (spec.name, spec.description, spec.fail_fast, spec.source) == (
        "docsite",
        "Build the docs site",
        True,
        str(path),
    )
    assert parsed.path == path and parsed.inputs == {"site": "docs", "pages": ["index", "api"]}
    assert parsed.agents == [] and parsed.agent_files == []
    assert [s.step_id for s in spec.steps] == ["draft", "outline", "publish"]
    draft, outline, publish = spec.steps
    assert (draft.task_type, draft.dependencies, draft.condition, draft.agent) == ("documentation", (), None, None)
    assert outline.task_type == "documentation" and outline.agent == "writer"
    assert outline.dependencies == ("draft",)
    assert outline.template.inputs == {  # references are kept as written, resolved when a run starts
        "page": "${{ inputs.site }}/index.md",
        "text": "${{ steps.draft.result.text }}",
    }
    assert outline.template.priority == Priority.HIGH
    assert (outline.template.timeout, outline.template.max_retries) == (30.0, 2)
    assert outline.template.requirements == Requirements.parse(
        {"skills": ["markdown"], "resources": {"cpu": 1, "memory": "512Mi"}}
    )
    assert outline.condition == "steps.draft.result.ok"
    assert outline.template.metadata == {"owner": "docs"}
    assert publish.dependencies == ("outline",) and publish.template.priority == 7
    assert publish.template.requirements.performance_score == 0.5
    assert publish.condition == "${{ steps.outline.skipped == false }}"
    assert spec.validate() == ["draft", "outline", "publish"]


def test_steps_may_be_a_mapping_of_id_to_step(tmp_path):
    as_list = parse_workflow_file(write(tmp_path / "list.yaml", FULL_LIST)).spec
    as_mapping = parse_workflow_file(write(tmp_path / "mapping.yaml", FULL_MAPPING)).spec
    assert as_mapping.steps == as_list.steps
    assert as_mapping.source == str(tmp_path / "mapping.yaml")


def test_a_workflow_file_registers_its_agents_and_runs(tmp_path, runtime):
    write(
        tmp_path / "helpers.py",
        """
        def draft(task):
            return {"text": "hello from " + task.inputs["site"], "ok": True}

        def outline(task):
            return {"page": task.inputs["page"], "got": task.inputs["text"]}
        """,
    )
    write(tmp_path / "finish.py", "print('{\"finished\": true}')\n")
    write(
        tmp_path / "agents.yaml",
        """
        agent_id: drafter
        task_types: [draft]
        function: helpers:draft
        """,
    )
    path = write(
        tmp_path / "docsite.yaml",
        f"""
        name: docsite
        agents:
          - agents.yaml
          - agent_id: writer
            task_types: [documentation]
            skills: [markdown]
            function: helpers:outline
          - agent_id: finisher
            task_types: [finish]
            command: '{sys.executable} "$PEPPER_AGENT_DIR/finish.py"'
        inputs: {{site: docs}}
        steps:
          - id: draft
            type: draft
          - id: outline
            type: documentation
            needs: draft
            skills: [markdown]
            inputs: {{page: "${{{{ inputs.site }}}}/index.md", text: "${{{{ steps.draft.result.text }}}}"}}
            when: steps.draft.result.ok
          - id: finish
            type: finish
            needs: [outline]
        """,
    )
    parsed = parse_workflow_file(path)
    assert parsed.agent_files == [(tmp_path / "agents.yaml").resolve()]
    assert [a.spec.agent_id for a in runtime.agents()] == []  # parsing registers nothing
    finisher = parsed.agents[2]
    assert finisher.spec.config["env"]["PEPPER_AGENT_DIR"] == str(tmp_path.resolve())

    controller = read_workflow_file(path, runtime)
    assert sorted(a.spec.agent_id for a in runtime.agents()) == ["drafter", "finisher", "writer"]
    assert controller.name == "docsite" and controller.spec.source == str(path)
    assert controller.default_inputs == {"site": "docs"}
    result = controller.run(inputs=controller.default_inputs, timeout=30)
    assert result.status == "completed"
    assert result.results["outline"] == {"page": "docs/index.md", "got": "hello from docs"}
    assert result.results["finish"] == {"finished": True}

    again = load_workflow(path, runtime)  # loading the file again skips the agents already registered
    assert len(runtime.agents()) == 3
    assert again.run(inputs={"site": "api"}, timeout=30).results["outline"]["got"] == "hello from api"


# -- errors -------------------------------------------------------------------------------------

# Each bad file ends with this valid agent, so a half-done load would have registered it.
AGENT = """
agents:
  - agent_id: helper
    task_types: [t]
    command: echo hi
"""

BAD = [
    ("name: wf\nsteps:\n  - id: a\n    type: [t\n  - id: b\n", 5, ["invalid YAML"]),
    ("name: wf\nstep:\n  - {id: a, type: t}\n", 2, ["unknown top-level key 'step'", "Did you mean 'steps'?"]),
    ("name: wf\nfail_fast: 'yes'\nsteps: [{id: a, type: t}]\n", 2, ["fail_fast must be true or false"]),
    ("name: wf\nsteps: x\n", 2, ["steps must be a list of steps", "got a string"]),
    ("name: wf\ninputs: [1]\nsteps: [{id: a, type: t}]\n", 2, ["inputs must be a mapping", "got a list"]),
    ("name: wf\nsteps: []\n", 2, ["steps is empty"]),
    ("description: x\nsteps: [{id: a, type: t}]\n", 1, ["missing required key 'name'"]),
    ("name: wf\nname: again\nsteps: [{id: a, type: t}]\n", 2, ["'name' is written twice"]),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n    timout: 5\n",
        5,
        [
            "unknown step key 'timout'",
            "valid keys: id (or task_id, step_id), type (or task_type),",
            "Did you mean 'timeout'?",
        ],
    ),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    depends: [b]\n", 5, ["Did you mean 'depends_on'?"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    needs: [b]\n    dependencies: [c]\n", 6, ["given twice"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    duration: 5\n", 5, ["unknown step key 'duration'"]),
    ("name: wf\nsteps:\n  - id: a\n    agent: x\n", 3, ["step 'a' has no 'type'"]),
    ("name: wf\nsteps:\n  - type: t\n", 3, ["step 1 has no 'id'"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    timeout: soon\n", 5, ["timeout 'soon' is not a duration"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    priority: urgent\n", 5, ["unknown priority 'urgent'"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    retries: -1\n", 5, ["max_retries must be a whole number"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    needs: 3\n", 5, ["needs must be a step id or a list"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    inputs: [1]\n", 5, ["inputs must be a mapping, got list"]),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    skills: 5\n", 5, ["skills must be a list"]),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n    resources:\n      gpu: 1\n      cpu: lots\n",
        7,
        ["resource 'cpu'", "'lots'"],
    ),
    (
        "name: wf\nsteps:\n  - id: draft\n    type: t\n  - id: b\n    type: t\n    needs: [drafr]\n",
        7,
        ["depends on 'drafr', which is not a step", "Did you mean 'draft'?"],
    ),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n  - id: b\n    type: t\n  - id: a\n    type: u\n",
        7,
        ["already has a step 'a'", "first defined on line 3"],
    ),
    ("name: wf\nsteps:\n  a:\n    type: t\n  b: {type: t}\n  a: {type: u}\n", 6, ["step id 'a' is used twice"]),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n    needs: [c]\n  - id: b\n    type: t\n    needs: a\n"
        "  - id: c\n    type: t\n    needs: b\n",
        5,
        ["dependency cycle: a -> c -> b -> a"],
    ),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n  - id: b\n    type: t\n    when: steps.a.result.ok\n",
        7,
        ["condition reads steps.a", "does not depend on 'a'"],
    ),
    (
        "name: wf\nsteps:\n  a: {type: t}\n  b:\n    type: t\n    inputs:\n      page: x\n"
        "      text: '${{ steps.a.result }}'\n",
        8,
        ["inputs reads steps.a", "does not depend on 'a'"],
    ),
    ("name: wf\nsteps:\n  - id: a\n    type: t\n    when: 'inputs.x +'\n", 5, ["is not a valid expression"]),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n    when: __import__('os')\n",
        5,
        ["calls a function; only len(x) is allowed"],
    ),
    (
        "name: wf\nsteps:\n  - id: a\n    type: t\n    inputs:\n      cmd: '${{ inputs.x.__class__ }}'\n",
        6,
        ["names starting with '_' are not allowed"],
    ),
    (
        "name: wf\nsteps:\n  - id: a\n    approval: {timeout: 1h}\n    type: t\n",
        5,
        ["step 'a' is an approval step", "takes no task type (got 't')", "a step is one of"],
    ),
    ("name: wf\nsteps:\n  - id: a\n    approval: {timeout: 1h}\n    agent: x\n", 5, ["runs on no agent"]),
    (
        "name: wf\nsteps:\n  - id: a\n    approval: {timeout: 1h}\n    recovery: dead_letter\n",
        5,
        ["recovery strategy 'dead_letter' (in 'dead_letter') does not apply", "only skip or abort apply"],
    ),
    (
        "name: wf\nsteps:\n  - id: a\n    approval: {timeout: 1h}\n    recovery: retry(2) -> skip\n",
        5,
        ["recovery strategy 'retry' (in 'retry(max_attempts=2) -> skip') does not apply"],
    ),
    ("name: wf\nsteps:\n  - id: a\n    approval: {timeout: 1h}\n    retries: 2\n", 5, ["cannot be retried"]),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_a_bad_workflow_file_is_refused_at_its_line_and_registers_nothing(tmp_path, runtime, text, line, words):
    path = tmp_path / "wf.yaml"
    path.write_text(text + AGENT.lstrip("\n"))
    with pytest.raises(WorkflowDefinitionError) as caught:
        read_workflow_file(path, runtime)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message, message
    assert (caught.value.path, caught.value.line) == (str(path), line)
    assert runtime.agents() == []


def test_errors_name_the_step_and_field(tmp_path):
    path = write(tmp_path / "wf.yaml", "name: wf\nsteps:\n  - id: a\n    type: t\n    timeout: soon\n")
    with pytest.raises(WorkflowDefinitionError) as caught:
        parse_workflow_file(path)
    assert (caught.value.step_id, caught.value.field) == ("a", "timeout")


def test_a_missing_or_unusable_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(WorkflowDefinitionError, match="no such workflow file") as caught:
        parse_workflow_file(missing)
    assert str(caught.value).startswith(f"{missing}: ")
    empty = write(tmp_path / "empty.yaml", "")
    with pytest.raises(WorkflowDefinitionError, match=f"^{empty}:1: .*got an empty file"):
        parse_workflow_file(empty)
    listing = write(tmp_path / "list.yaml", "- id: a\n  type: t\n")
    with pytest.raises(WorkflowDefinitionError, match=f"^{listing}:1: .*must be a mapping.*got a list"):
        parse_workflow_file(listing)


def test_agents_naming_a_missing_file_is_refused_at_the_agents_line(tmp_path, runtime):
    path = write(
        tmp_path / "wf.yaml",
        """
        name: wf
        steps: [{id: a, type: t}]
        agents:
          - agent_id: helper
            task_types: [t]
            command: echo hi
          - nope.yaml
        """,
    )
    with pytest.raises(WorkflowDefinitionError) as caught:
        read_workflow_file(path, runtime)
    assert str(caught.value).startswith(f"{path}:3: agents: no such agent file or folder 'nope.yaml'")
    assert str(tmp_path / "nope.yaml") in str(caught.value)
    assert runtime.agents() == []
    write(tmp_path / "wf2.yaml", "name: wf\nsteps: [{id: a, type: t}]\nagents: 3\n")
    with pytest.raises(WorkflowDefinitionError, match=r":3: agents must be a path to an agent file"):
        parse_workflow_file(tmp_path / "wf2.yaml")


@pytest.mark.parametrize(
    ("agents", "line", "words"),
    [
        (
            "agents:\n  - agent_id: one\n    task_types: [t]\n    command: echo\n  - agent_id: two\n"
            "    task_types: [t]\n    comand: echo\n",
            9,
            ["unknown field 'comand'", "Did you mean 'command'?"],
        ),
        (
            "agents:\n  - agent_id: one\n    task_types: [t]\n    function: nowhere_at_all:fn\n",
            6,
            ["cannot import module 'nowhere_at_all'"],
        ),
        (
            "agents:\n  - agent_id: one\n    task_types: [t]\n    command: echo a\n  - agent_id: one\n"
            "    task_types: [t]\n    command: echo b\n",
            7,
            ["agent id 'one' is defined twice, differently", "first in"],
        ),
    ],
)
def test_a_bad_inline_agent_is_an_agent_error_at_its_line(tmp_path, runtime, agents, line, words):
    path = tmp_path / "wf.yaml"
    path.write_text("name: wf\nsteps: [{id: a, type: t}]\n" + agents)
    with pytest.raises(AgentDefinitionError) as caught:
        read_workflow_file(path, runtime)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    for word in words:
        assert word in message, message
    assert runtime.agents() == []


def test_a_bad_agent_file_is_named_with_its_own_line(tmp_path, runtime):
    agents = write(tmp_path / "agents.yaml", "- agent_id: one\n  task_types: [t]\n  capacity: 0\n  command: echo\n")
    path = write(
        tmp_path / "wf.yaml",
        """
        name: wf
        agents: [{agent_id: fine, task_types: [t], command: echo}, agents.yaml]
        steps: [{id: a, type: t}]
        """,
    )
    with pytest.raises(AgentDefinitionError, match="capacity must be") as caught:
        read_workflow_file(path, runtime)
    assert str(caught.value).startswith(f"{agents.resolve()}:3: ")
    assert runtime.agents() == []


def test_the_same_agent_file_twice_and_agents_already_registered_are_fine(tmp_path, runtime):
    write(tmp_path / "agents.yaml", "agent_id: one\ntask_types: [t]\ncommand: echo\n")
    path = write(
        tmp_path / "wf.yaml",
        """
        name: wf
        agents: [agents.yaml, ./agents.yaml, {agent_id: two, task_types: [t], command: echo}]
        steps: [{id: a, type: t}]
        """,
    )
    assert [a.spec.agent_id for a in parse_workflow_file(path).agents] == ["one", "two"]
    runtime.register_agent(pepper.agents.CommandAgent("two", "echo other", task_types=["t"]))
    read_workflow_file(path, runtime)
    assert sorted(a.spec.agent_id for a in runtime.agents()) == ["one", "two"]
    assert runtime.get_agent("two").command == "echo other"  # the one registered first is kept
