"""Reading a workflow file: the YAML, its top level, its steps as written and the agents it names or defines.

Each step is checked by ``pepper.workflow_file.checks``; the whole file is checked before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pepper.agents.base import BaseAgent
from pepper.agents.loader import YamlMapping, agent_entries, agent_files, build_agent, parse_yaml, read_yaml
from pepper.errors import AgentDefinitionError, ValidationError, WorkflowDefinitionError
from pepper.model import codec
from pepper.model.schedule import check_timing
from pepper.model.workflow import WorkflowSpec
from pepper.workflow_file.checks import (
    SCHEDULE_KEYS,
    TOP_KEYS,
    RawStep,
    check_keys,
    check_repeats,
    check_step,
    error,
    field_line,
    kind,
    step_keys,
)


@dataclass(frozen=True)
class WorkflowFile:
    """What a workflow file defines: the workflow, its default inputs and its agents (built, not registered)."""

    path: Path
    spec: WorkflowSpec  # spec.source is str(path)
    inputs: dict[str, Any] = field(default_factory=dict)  # default inputs of every run
    agents: list[BaseAgent] = field(default_factory=list)
    agent_files: list[Path] = field(default_factory=list)  # the agent files it referenced, resolved
    defines_agents: bool = False  # it has an `agents:` section (read or not)
    #: Its `schedule:` (cron or every, timezone, catch_up), checked; None: it has none.
    schedule: dict[str, Any] | None = None


def parse_workflow_file(path: Path, *, with_agents: bool = True, _within: tuple[Path, ...] = ()) -> WorkflowFile:
    """Read and check a workflow file (and the files of its sub-workflows); nothing is registered. Raises
    ``WorkflowDefinitionError`` (or ``AgentDefinitionError`` for its agents) whose message starts with
    ``file:line:``. ``with_agents=False`` leaves its agents unread (the caller brings others)."""
    path = Path(path)
    return _parse(path, _read(path), with_agents, (*_within, path.resolve()))


def parse_workflow_text(text: str, source: str) -> WorkflowFile:
    """Read and check a workflow document given as YAML (or JSON) text, named ``source`` in errors. Its agents
    are never read: a document that is not a file on this machine has no folder to find them in (and may
    come from elsewhere); ``defines_agents`` says whether it has an `agents:` section."""
    path = Path(source)
    data = _document(path, lambda: parse_yaml(text, path), "document", "a workflow")
    return _parse(path, data, with_agents=False, within=None)


def _parse(path: Path, data: YamlMapping, with_agents: bool, within: tuple[Path, ...] | None) -> WorkflowFile:
    """``within``: the files being read, this one last (a cycle of sub-workflows is refused); None for a
    document that is not a file (it cannot name sub-workflow files)."""
    check_keys(path, data, TOP_KEYS, "top-level key")
    for required in ("name", "steps"):
        if required not in data:
            raise error(
                path,
                data.line,
                f"missing required key {required!r}; a workflow file needs at least 'name' and 'steps'",
                field=required,
            )
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise error(path, data.key_lines["name"], f"name must be a non-empty string, got {name!r}", field="name")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise error(
            path,
            data.key_lines["description"],
            f"description must be a string, got {description!r}",
            field="description",
        )
    fail_fast = data.get("fail_fast", False)
    if not isinstance(fail_fast, bool):
        raise error(
            path, data.key_lines["fail_fast"], f"fail_fast must be true or false, got {fail_fast!r}", field="fail_fast"
        )
    inputs = _run_inputs(path, data)
    children: list[WorkflowFile] = []
    spec = _spec(path, data, WorkflowSpec(name, (), fail_fast, description, str(path)), within, with_agents, children)
    agents, files = _agents(path, data) if with_agents else ([], [])
    for child in children:  # the sub-workflows' agents, each id once
        known = {a.spec.agent_id for a in agents}
        agents += [a for a in child.agents if a.spec.agent_id not in known]
        files += [f for f in child.agent_files if f not in files]
    defines_agents = "agents" in data or any(c.defines_agents for c in children)
    return WorkflowFile(path, spec, inputs, agents, files, defines_agents, _schedule(path, data))


# -- the file and its top level -------------------------------------------------------------------


def _read(path: Path) -> YamlMapping:
    if path.is_dir():
        raise error(path, None, "is a folder; give the path of a workflow's YAML file")
    if not path.exists():
        raise error(path, None, "no such workflow file")
    return _document(path, lambda: read_yaml(path), "file", "a workflow file")


def _document(path: Path, load: Callable[[], object], empty: str, what: str) -> YamlMapping:
    """The YAML mapping ``load`` reads, its syntax errors as workflow errors with their line."""
    try:
        data = load()
    except AgentDefinitionError as exc:
        message = str(exc).removeprefix(f"{exc.path}:{exc.line}: ").removeprefix(f"{exc.path}: ")
        raise error(path, exc.line, message) from None
    if not isinstance(data, YamlMapping):
        got = f"an empty {empty}" if data is None else f"a {kind(data)}"
        raise error(path, 1, f"{what} must be a mapping with 'name' and 'steps', got {got}")
    return data


def _run_inputs(path: Path, data: YamlMapping) -> dict[str, Any]:
    inputs = data.get("inputs")
    if inputs is None:
        return {}
    line = data.key_lines["inputs"]
    if not isinstance(inputs, Mapping):
        raise error(
            path, line, f"inputs must be a mapping of input name to value, got a {kind(inputs)}", field="inputs"
        )
    try:
        value, _ = codec.normalise(inputs, "inputs")
    except ValidationError as exc:
        raise error(path, line, str(exc), field="inputs") from None
    return dict(value)


def _schedule(path: Path, data: YamlMapping) -> dict[str, Any] | None:
    """The file's ``schedule:`` checked: ``cron`` or ``every``, ``timezone`` (default UTC), ``catch_up``."""
    schedule = data.get("schedule")
    if schedule is None:
        return None
    line = data.key_lines["schedule"]
    if not isinstance(schedule, YamlMapping):
        raise error(path, line, f"schedule must be a mapping such as {{cron: '0 2 * * *'}}, got a {kind(schedule)}",
                    field="schedule")  # fmt: skip
    check_keys(path, schedule, SCHEDULE_KEYS, "schedule key")
    catch_up = schedule.get("catch_up", False)
    if not isinstance(catch_up, bool):
        raise error(path, schedule.key_lines["catch_up"], f"catch_up must be true or false, got {catch_up!r}",
                    field="catch_up")  # fmt: skip
    try:
        cron, every, zone = check_timing(schedule.get("cron"), schedule.get("every"), schedule.get("timezone", "UTC"))
    except ValidationError as exc:
        raise error(path, schedule.key_lines.get(str(exc.field), line), str(exc), field=exc.field) from None
    return {"cron": cron, "every": every, "timezone": zone, "catch_up": catch_up}


# -- steps --------------------------------------------------------------------------------------


def _spec(
    path: Path, data: YamlMapping, spec: WorkflowSpec, within: tuple[Path, ...] | None, with_agents: bool,
    children: list[WorkflowFile],
) -> WorkflowSpec:  # fmt: skip
    """The workflow's steps, each checked where it is written, then the whole DAG."""
    steps_line = data.key_lines["steps"]
    raw_steps = list(_raw_steps(path, data["steps"], steps_line))
    if not raw_steps:
        raise error(path, steps_line, "steps is empty; a workflow needs at least one step", field="steps")
    by_id: dict[str, RawStep] = {}
    for raw in raw_steps:
        child = _child(path, raw, within, with_agents) if "workflow" in raw.fields else None
        if child is not None:
            children.append(child)
        step = check_step(path, raw, None if child is None else replace(child.spec, inputs=child.inputs))
        try:
            spec = spec.with_step(step)
        except WorkflowDefinitionError as exc:
            first = by_id[step.step_id].line
            raise error(
                path, raw.line_of("id"), f"{exc} (first defined on line {first})", step_id=step.step_id, field="step_id"
            ) from None
        by_id[step.step_id] = raw
    try:
        spec.validate()
    except WorkflowDefinitionError as exc:
        culprit = by_id.get(exc.step_id) if exc.step_id else None
        line = field_line(culprit, exc.field) if culprit else steps_line
        raise error(path, line, str(exc), step_id=exc.step_id, field=exc.field) from None
    return spec


def _child(path: Path, raw: RawStep, within: tuple[Path, ...] | None, with_agents: bool) -> WorkflowFile:
    """The workflow file a step's ``workflow`` key names (relative to this file), read and checked."""
    reference, line = raw.fields["workflow"], raw.line_of("workflow")
    where = {"step_id": str(raw.step_id), "field": "workflow"}
    if not isinstance(reference, str) or not reference.strip():
        raise error(path, line, f"workflow must be the path of a workflow file (relative to this one), got "
                    f"{reference!r}", **where)  # fmt: skip
    if within is None:
        raise error(path, line, "a workflow sent as a document cannot name sub-workflow files; send the "
                    "sub-workflow's steps as a workflow of their own", **where)  # fmt: skip
    target = (path.parent / Path(reference).expanduser()).resolve()
    if target in within:
        loop = " -> ".join(p.name for p in (*within[within.index(target) :], target))
        raise error(path, line, f"sub-workflows form a cycle: {loop}; a workflow cannot run itself", **where)
    if not target.is_file():
        raise error(path, line, f"workflow: no such workflow file {reference!r} (looked for {target})", **where)
    return parse_workflow_file(target, with_agents=with_agents, _within=within)


def _raw_steps(path: Path, steps: Any, line: int) -> Iterator[RawStep]:
    """The steps as written: a list of mappings with ``id``, or a mapping of step id to step."""
    if isinstance(steps, list):
        for number, item in enumerate(steps, 1):
            if not isinstance(item, YamlMapping):
                raise error(
                    path, line, f"step {number} must be a mapping with 'id' and 'type', got {item!r}", field="steps"
                )
            item = step_keys(path, item)
            if "id" not in item:
                raise error(
                    path,
                    item.line,
                    f"step {number} has no 'id'; give each step a unique id "
                    "(or write steps as a mapping of id to step)",
                    field="id",
                )
            yield RawStep(item["id"], item, item.line, item.key_lines)
    elif isinstance(steps, YamlMapping):
        check_repeats(path, steps, "step id {key!r} is used twice; step ids must be unique")
        for step_id, item in steps.items():
            start = steps.key_lines.get(str(step_id), steps.line)
            if item is None:
                item = YamlMapping()
            if not isinstance(item, YamlMapping):
                raise error(
                    path,
                    start,
                    f"step {step_id!r} must be a mapping of step keys (type, needs, ...), got {item!r}",
                    step_id=str(step_id),
                    field="steps",
                )
            item = step_keys(path, item)
            if "id" in item and item["id"] != step_id:
                raise error(
                    path,
                    item.key_lines["id"],
                    f"step {step_id!r} has a different id {item['id']!r}; leave 'id' out when steps is a mapping",
                    step_id=str(step_id),
                    field="id",
                )
            yield RawStep(step_id, item, start, {"id": start, **item.key_lines})
    else:
        raise error(
            path,
            line,
            "steps must be a list of steps (each with 'id' and 'type') or a mapping of step "
            f"id to step, got a {kind(steps)}",
            field="steps",
        )


# -- agents -------------------------------------------------------------------------------------


def _agents(path: Path, data: YamlMapping) -> tuple[list[BaseAgent], list[Path]]:
    """The agents the file names or defines, built; an id defined twice (differently) is an error."""
    value = data.get("agents")
    if value is None:
        return [], []
    line = data.key_lines["agents"]
    items = value if isinstance(value, list) else [value]
    entries: list[tuple[Path, YamlMapping]] = []  # (the file that defines it, its mapping)
    files: list[Path] = []
    for item in items:
        if isinstance(item, YamlMapping):
            entries.append((path, item))
        elif isinstance(item, str) and item.strip():
            for file in _agent_paths(path, item, line):
                if file not in files:
                    files.append(file)
                    entries.extend((file, entry) for entry in agent_entries(read_yaml(file), file))
        else:
            raise error(
                path,
                line,
                "agents must be a path to an agent file (relative to this file), an agent "
                f"mapping, or a list of them; got {item!r}",
                field="agents",
            )
    agents: list[BaseAgent] = []
    seen: dict[str, tuple[YamlMapping, Path]] = {}
    for file, entry in entries:
        agent = build_agent(entry, file)
        agent_id = agent.spec.agent_id
        if agent_id in seen:
            first, first_file = seen[agent_id]
            if first == entry and first_file.resolve().parent == file.resolve().parent:
                continue  # the same definition twice
            raise AgentDefinitionError(
                f"agent id {agent_id!r} is defined twice, differently (first in {first_file}:{first.line})",
                path=str(file),
                line=entry.line,
            )
        seen[agent_id] = (entry, file)
        agents.append(agent)
    return agents, files


def _agent_paths(path: Path, reference: str, line: int) -> list[Path]:
    """The agent files at ``reference`` (a file, or a folder's YAML files but this one), resolved."""
    target = (path.parent / Path(reference).expanduser()).resolve()
    if not target.exists():
        raise error(
            path, line, f"agents: no such agent file or folder {reference!r} (looked for {target})", field="agents"
        )
    try:
        found = agent_files(target)
    except AgentDefinitionError as exc:
        raise error(
            path, line, f"agents: {reference!r}: {str(exc).removeprefix(f'{exc.path}: ')}", field="agents"
        ) from None
    own = path.resolve()
    return [file.resolve() for file in found if file.resolve() != own]
