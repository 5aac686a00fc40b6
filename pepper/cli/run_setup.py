"""Before a run starts or resumes: its controller, agents and ``--timeout``, and the refusal of a run that
could never finish because a step has no agent to take it (pointing at the step's line in the workflow file)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

import pepper
from pepper.agents.loader import load_yaml
from pepper.cli.common import left_out_held, open_runtime
from pepper.cli.render import make_console
from pepper.core import WorkflowController
from pepper.errors import (
    AgentStartError,
    ExpressionError,
    ForbiddenWorkflowError,
    PepperError,
    ValidationError,
    WorkflowDefinitionError,
)
from pepper.model import expressions
from pepper.model.agent import AgentSpec
from pepper.model.units import parse_duration
from pepper.model.workflow import Step
from pepper.model.workflow_run import RunRecord
from pepper.scheduling.eligibility import unrunnable_steps
from pepper.workflow_file import WorkflowFile, parse_workflow_file


def parse_timeout(text: str | None) -> float | None:
    """A run's ``--timeout`` (None: none): a duration above 0, or a usage error naming the option."""
    if text is None:
        return None
    seconds = parse_duration(text, "--timeout")
    if seconds <= 0:
        raise click.BadParameter(f"must be more than 0, got {text!r}", param_hint="'--timeout'")
    return seconds


def controller_for(parsed: WorkflowFile, runtime: pepper.Runtime) -> WorkflowController:
    """A controller for the file's workflow with its agents registered; the run remembers the file's full
    path, so that `pepper resume` finds it from any folder. A server refuses a file that defines agents."""
    if runtime.server and parsed.defines_agents:
        raise ForbiddenWorkflowError(
            f"{parsed.path} defines agents (`agents:`), and a server runs no code it is sent: only agents its "
            f"workers run may take the steps. Remove `agents:` from the file and start a worker with them next to "
            f"the server (`pepper worker --agents agents.yaml`, or `pepper serve --agents agents.yaml`); or run "
            f"the file here without --server."
        )
    if not runtime.server:
        _ = runtime.store  # open the database now, so that one that cannot be used is reported plainly
    spec = dataclasses.replace(parsed.spec, source=str(parsed.path.resolve()))
    controller = WorkflowController(spec.name, runtime, fail_fast=spec.fail_fast, description=spec.description)
    controller.spec = spec
    controller.default_inputs = dict(parsed.inputs)
    controller.predict = not runtime.server  # `pepper show` compares the run with its predicted timeline
    for agent in parsed.agents:
        runtime.register_agent(agent)
    return controller


def resume_agents(runtime: pepper.Runtime, record: RunRecord, agents_path: str | None) -> str:
    """Register the agents for a run's steps (from ``agents_path``, else its workflow file); where they came from.

    Refuses (exit 2) when there are none to be found, or a step left has no agent that could take it.
    """
    source = Path(record.spec.source) if record.spec.source else None
    if agents_path is not None:
        path = Path(agents_path)
    elif source is not None and source.is_file():
        path = source
    else:
        told = f"its workflow file {source} is not there any more" if source else "it was not started from a file"
        raise ValidationError(
            f"no agents to resume run {record.run_id} with: {told}. Give them with --agents PATH "
            "(an agents YAML file, or the workflow file)"
        )
    if _is_workflow_file(path):
        agents = parse_workflow_file(path).agents
        for agent in agents:
            runtime.register_agent(agent)
    else:
        agents = pepper.load_agents(path, runtime=runtime)
    stored = runtime.store.runs.tasks(record.run_id)
    ended = {task_id for task_id, task in stored.items() if task.state.is_final}
    left = [s for s in record.spec.steps if f"{record.run_id}/{s.step_id}" not in ended]
    own = [a.spec for a in agents]
    online = [a.spec for a in runtime.store.workers.agents() if a.spec.agent_id not in {o.agent_id for o in own}]
    problems = unrunnable_steps(left, own + online)
    if problems:
        raise ValidationError("\n".join([*(m for _, _, m in problems), _agents_sentence(own, online, None)]))
    start_agents(runtime, left, "resumed")
    return str(path)


def start_agents(runtime: pepper.Runtime, steps: Iterable[Step], verb: str = "started") -> None:
    """Start the engine with the agents registered here before the run starts (``verb``: or resumes).

    An agent whose start-up failed is told in one line on stderr, the others run; when that leaves a step with
    no agent to take it (here or on an online worker), the run is refused (exit 2): it could never finish.
    """
    with left_out_held():
        try:
            runtime.start()
        except AgentStartError as exc:
            failed = exc.failures
        else:
            return
    told = "; ".join(f"agent {agent_id!r} could not start ({why})" for agent_id, why in failed.items())
    agents = [a.spec for a in runtime.store.workers.agents()]  # those that started here, and online workers'
    stuck = sorted({step_id for step_id, _, _ in unrunnable_steps(steps, agents)})
    if stuck:
        named = ", ".join(repr(s) for s in stuck)
        raise ValidationError(
            f"{told}, and no other agent takes step{'s' if len(stuck) > 1 else ''} {named}: the run was not "
            f"{verb}, as it could never finish. Fix the cause, or start a `pepper worker` with an agent for "
            f"{'them' if len(stuck) > 1 else 'it'}"
        )
    make_console(stderr=True).print(f"{told}; left out, the run goes on with the other agents", markup=False)


def _is_workflow_file(path: Path) -> bool:
    """True for a YAML file whose top level has ``steps`` (agents files do not)."""
    if not path.is_file():
        return False
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))  # bounded: a file of nested aliases is refused
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "steps" in data


# --- no run that could never finish ---------------------------------------------------------------


def refuse_unrunnable(parsed: WorkflowFile, db: str | None) -> None:
    """Refuse (exit 2) a workflow with a step that none of its agents, nor any online agent, can take."""
    own = [a.spec for a in parsed.agents]
    if not unrunnable_steps(parsed.spec.steps, own):
        return
    online = _online_agents(db)
    problems = unrunnable_steps(
        parsed.spec.steps, own + [a for a in online if a.agent_id not in {o.agent_id for o in own}]
    )
    if not problems:
        return
    lines = _step_lines(parsed.path)
    located = []
    for step_id, key, message in problems:
        where = lines.get(step_id, {})
        line = where.get(key) or (where.get("requirements") if key == "skills" else None) or where.get("", 1)
        located.append(f"{parsed.path}:{line}: {message}")
    raise WorkflowDefinitionError("\n".join([*located, _agents_sentence(own, online, parsed.path)]))


def refuse_missing_inputs(parsed: WorkflowFile, inputs: Mapping[str, Any]) -> None:
    """Refuse (exit 2) a run whose first steps read ``${{ inputs.X }}`` that ``inputs`` (the file's defaults and
    --input) lack, at the step's line, before anything is stored."""
    for step in parsed.spec.steps:
        if step.deferred:  # resolved when it starts, with what the run has by then
            continue
        try:
            expressions.resolve(dict(step.template.inputs or {}), {"inputs": dict(inputs)}, only=("inputs",))
        except ExpressionError as exc:
            where = _step_lines(parsed.path).get(step.step_id, {})
            line = where.get("inputs") or where.get("", 1)
            raise WorkflowDefinitionError(
                f"{parsed.path}:{line}: step {step.step_id!r}: {exc}; give the run that input with "
                "--input KEY=VALUE, or a default under the file's `inputs:`"
            ) from None


def _types(agent: AgentSpec) -> str:
    return ", ".join(sorted(agent.task_types))


def _agents_sentence(own: Sequence[AgentSpec], online: Sequence[AgentSpec], path: Path | None) -> str:
    """Which agents there are, and how to add one; for a refusal (``path``: of the workflow file, when the run
    would start from it; else it would resume)."""
    parts = []
    if path is not None:
        parts.append(f"agents of {path.name}: {_listed(own)}" if own else f"{path.name} defines no agents")
    elif own:
        parts.append(f"agents given: {_listed(own)}")
    parts.append(f"online (`pepper worker`): {_listed(online)}" if online else "no `pepper worker` is online")
    where = "to the workflow file's `agents`" if path is not None else "with --agents"
    verb = "started" if path is not None else "resumed"
    return (f"Agents: {'; '.join(parts)}.\nAdd the agent it needs {where}, or start a `pepper worker` with it; "
            f"the run was not {verb}, as it could never finish.")  # fmt: skip


def _listed(agents: Sequence[AgentSpec]) -> str:
    return ", ".join(f"{a.agent_id} ({_types(a)})" for a in agents)


def _online_agents(db: str | None) -> list[AgentSpec]:
    """Agents of the workers on the database (none when there is no database yet)."""
    try:
        with open_runtime(db) as runtime:
            return [a.spec for a in runtime.store.workers.agents()]
    except PepperError:
        return []


def _step_lines(path: Path) -> dict[str, dict[str, int]]:
    """For each step of a workflow file: the line of each of its keys (and ``""``: where it starts)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}

    def keys(node: yaml.Node) -> dict[str, int]:
        if not isinstance(node, yaml.MappingNode):
            return {}
        return {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}

    def value(node: yaml.Node, key: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        return None

    steps = value(root, "steps") if root is not None else None
    found: dict[str, dict[str, int]] = {}
    if isinstance(steps, yaml.SequenceNode):
        for item in steps.value:
            step_id = value(item, "id")
            if isinstance(step_id, yaml.ScalarNode):
                found[str(step_id.value)] = {"": item.start_mark.line + 1, **keys(item)}
    elif isinstance(steps, yaml.MappingNode):
        for key, item in steps.value:
            found[str(key.value)] = {"": key.start_mark.line + 1, "id": key.start_mark.line + 1, **keys(item)}
    return found
