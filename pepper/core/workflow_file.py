"""Workflow files: a workflow, its default inputs and the agents it needs, in one YAML file.

::

    name: docsite                        # required
    description: Build the docs site     # optional
    agents: agents.yaml                  # optional, see below
    inputs: {site: docs}                 # optional: default inputs of every run
    fail_fast: false                     # optional: the first failure cancels every unfinished step
    steps:                               # required: a list of steps, each with an `id` ...
      - id: draft
        type: documentation              # the task type (required)
      - id: outline
        type: documentation
        agent: writer                    # pin the step to one agent
        needs: [draft]                   # or `needs: draft`: the steps that must complete first
        inputs: {page: "${{ inputs.site }}/index.md", text: "${{ steps.draft.result.text }}"}
        priority: high                   # critical, high, normal, medium, low, or an integer
        timeout: 30s                     # seconds, or 500ms / 30s / 15m / 1h
        retries: 2                       # retries after a failure
        skills: [markdown]               # what the agent must have ...
        resources: {cpu: 1, memory: 512Mi}    # ... and reserve while it runs
        when: steps.draft.result.ok      # run only if true; a bare expression or "${{ ... }}"
        recovery: retry(2) -> dead_letter   # what a failure leads to (instead of retries)
        metadata: {owner: docs}

A step key may also be written as any alias of the task-spec schema (``pepper.model.task_spec``):
``dependencies`` or ``depends_on`` for ``needs``, ``task_type`` for ``type``, ``max_retries`` for ``retries``, ...
``steps`` may also be a mapping of step id to step (``steps: {draft: {type: documentation}}``).
``requirements: {performance_score: 0.8, availability: true}`` adds the rarer requirements.
A step's ``when`` and ``${{ ... }}`` references may read ``inputs`` and the results of the steps in
its ``needs`` (see ``pepper.model.expressions``); references are resolved when a run starts.

``agents`` is a path to an agent file or folder (relative to this file), an agent mapping written
in place (the fields of an agent file: ``agent_id``, ``task_types``, ``function``/``command``/``class``,
...), or a list mixing both. Agents written in place behave as if they were in an agent file beside
this one: ``function: helpers:fn`` finds ``helpers.py`` here, and commands get ``$PEPPER_AGENT_DIR``.

Every error names the file and line. The whole file is checked before anything is registered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepper.agents.base import BaseAgent
from pepper.agents.loader import YamlMapping, agent_entries, agent_files, build_agent, read_yaml
from pepper.core.runtime import Runtime, resolve
from pepper.core.workflow import WorkflowController
from pepper.errors import (
    AgentAlreadyRegisteredError,
    AgentDefinitionError,
    ExpressionError,
    ValidationError,
    WorkflowDefinitionError,
    suggest,
)
from pepper.model import codec, expressions
from pepper.model.task_spec import KEY_OF, STEP, merged_requirements, spec_fields
from pepper.model.workflow import Step, WorkflowSpec, make_step

TOP_KEYS = ("name", "description", "agents", "inputs", "fail_fast", "steps")


@dataclass(frozen=True)
class WorkflowFile:
    """What a workflow file defines: the workflow, its default inputs and its agents (built, not registered)."""

    path: Path
    spec: WorkflowSpec  # spec.source is str(path)
    inputs: dict[str, Any] = field(default_factory=dict)  # default inputs of every run
    agents: list[BaseAgent] = field(default_factory=list)
    agent_files: list[Path] = field(default_factory=list)  # the agent files it referenced, resolved


@dataclass(frozen=True)
class _RawStep:
    """One step as written, with where each of its keys stands."""

    step_id: Any
    fields: Mapping[str, Any]
    line: int  # where the step starts
    key_lines: Mapping[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


def parse_workflow_file(path: Path, *, with_agents: bool = True) -> WorkflowFile:
    """Read and check a workflow file; nothing is registered. Raises ``WorkflowDefinitionError`` (or
    ``AgentDefinitionError`` for its agents) whose message starts with ``file:line:``. ``with_agents=False``
    leaves its agents unread (the caller brings others)."""
    path = Path(path)
    data = _read(path)
    _check_keys(path, data, TOP_KEYS, "top-level key")
    for required in ("name", "steps"):
        if required not in data:
            raise _error(
                path,
                data.line,
                f"missing required key {required!r}; a workflow file needs at least 'name' and 'steps'",
                field=required,
            )
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise _error(path, data.key_lines["name"], f"name must be a non-empty string, got {name!r}", field="name")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise _error(
            path,
            data.key_lines["description"],
            f"description must be a string, got {description!r}",
            field="description",
        )
    fail_fast = data.get("fail_fast", False)
    if not isinstance(fail_fast, bool):
        raise _error(
            path, data.key_lines["fail_fast"], f"fail_fast must be true or false, got {fail_fast!r}", field="fail_fast"
        )
    inputs = _run_inputs(path, data)
    spec = _spec(path, data, WorkflowSpec(name, (), fail_fast, description, str(path)))
    agents, files = _agents(path, data) if with_agents else ([], [])
    return WorkflowFile(path, spec, inputs, agents, files)


def read_workflow_file(path: Path, runtime: Runtime | None = None) -> WorkflowController:
    """A ``WorkflowController`` for a workflow file, its agents registered on ``runtime`` (default: the
    default runtime). An agent id already registered there is left as it is, so a file can be loaded again
    in one process. ``controller.default_inputs`` holds the file's ``inputs``."""
    parsed = parse_workflow_file(path)
    spec = parsed.spec
    controller = WorkflowController(spec.name, runtime, fail_fast=spec.fail_fast, description=spec.description)
    controller.spec = spec
    controller.default_inputs = dict(parsed.inputs)
    target = resolve(runtime)
    registered = {a.spec.agent_id for a in target.agents()}
    done: list[BaseAgent] = []
    try:
        for agent in parsed.agents:
            if agent.spec.agent_id in registered:
                continue
            try:
                done.append(target.register_agent(agent))
            except AgentAlreadyRegisteredError:
                continue  # registered meanwhile by another thread
    except BaseException:
        for agent in done:
            target.unregister_agent(agent.spec.agent_id)
        raise
    return controller


# -- the file and its top level -------------------------------------------------------------------


def _error(path: Path, line: int | None, message: str, **where: Any) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(message, path=str(path), line=line, **where)


def _read(path: Path) -> YamlMapping:
    if path.is_dir():
        raise _error(path, None, "is a folder; give the path of a workflow's YAML file")
    if not path.exists():
        raise _error(path, None, "no such workflow file")
    try:
        data = read_yaml(path)
    except AgentDefinitionError as exc:
        message = str(exc).removeprefix(f"{exc.path}:{exc.line}: ").removeprefix(f"{exc.path}: ")
        raise _error(path, exc.line, message) from None
    if not isinstance(data, YamlMapping):
        got = "an empty file" if data is None else f"a {_kind(data)}"
        raise _error(path, 1, f"a workflow file must be a mapping with 'name' and 'steps', got {got}")
    return data


def _check_keys(path: Path, data: YamlMapping, valid: tuple[str, ...], what: str) -> None:
    """Refuse unknown and repeated keys, at their lines."""
    for key in data:
        if key not in valid:
            hint = suggest(str(key), valid)
            raise _error(
                path,
                data.key_lines.get(str(key), data.line),
                f"unknown {what} {key!r}; valid keys: {', '.join(valid)}.{hint}",
                field=str(key),
            )
    _check_repeats(path, data, f"{what} {{key!r}} is written twice; give each key once")


def _check_repeats(path: Path, data: YamlMapping, message: str) -> None:
    """Refuse a key written twice in one mapping (YAML would keep the last silently), at its second line."""
    for key, line in data.duplicate_keys.items():
        raise _error(path, line, message.format(key=key), field=key)


def _run_inputs(path: Path, data: YamlMapping) -> dict[str, Any]:
    inputs = data.get("inputs")
    if inputs is None:
        return {}
    line = data.key_lines["inputs"]
    if not isinstance(inputs, Mapping):
        raise _error(
            path, line, f"inputs must be a mapping of input name to value, got a {_kind(inputs)}", field="inputs"
        )
    try:
        value, _ = codec.normalise(inputs, "inputs")
    except ValidationError as exc:
        raise _error(path, line, str(exc), field="inputs") from None
    return dict(value)


_KINDS: dict[type, str] = {str: "string", list: "list", YamlMapping: "mapping", dict: "mapping"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return _KINDS.get(type(value), type(value).__name__)


# -- steps --------------------------------------------------------------------------------------


def _spec(path: Path, data: YamlMapping, spec: WorkflowSpec) -> WorkflowSpec:
    """The workflow's steps, each checked where it is written, then the whole DAG."""
    steps_line = data.key_lines["steps"]
    raw_steps = list(_raw_steps(path, data["steps"], steps_line))
    if not raw_steps:
        raise _error(path, steps_line, "steps is empty; a workflow needs at least one step", field="steps")
    by_id: dict[str, _RawStep] = {}
    for raw in raw_steps:
        step = _step(path, raw)
        try:
            spec = spec.with_step(step)
        except WorkflowDefinitionError as exc:
            first = by_id[step.step_id].line
            raise _error(
                path, raw.line_of("id"), f"{exc} (first defined on line {first})", step_id=step.step_id, field="step_id"
            ) from None
        by_id[step.step_id] = raw
    try:
        spec.validate()
    except WorkflowDefinitionError as exc:
        culprit = by_id.get(exc.step_id) if exc.step_id else None
        line = _field_line(culprit, exc.field) if culprit else steps_line
        raise _error(path, line, str(exc), step_id=exc.step_id, field=exc.field) from None
    return spec


def _raw_steps(path: Path, steps: Any, line: int) -> Iterator[_RawStep]:
    """The steps as written: a list of mappings with ``id``, or a mapping of step id to step."""
    if isinstance(steps, list):
        for number, item in enumerate(steps, 1):
            if not isinstance(item, YamlMapping):
                raise _error(
                    path, line, f"step {number} must be a mapping with 'id' and 'type', got {item!r}", field="steps"
                )
            item = _step_keys(path, item)
            if "id" not in item:
                raise _error(
                    path,
                    item.line,
                    f"step {number} has no 'id'; give each step a unique id "
                    "(or write steps as a mapping of id to step)",
                    field="id",
                )
            yield _RawStep(item["id"], item, item.line, item.key_lines)
    elif isinstance(steps, YamlMapping):
        _check_repeats(path, steps, "step id {key!r} is used twice; step ids must be unique")
        for step_id, item in steps.items():
            start = steps.key_lines.get(str(step_id), steps.line)
            if item is None:
                item = YamlMapping()
            if not isinstance(item, YamlMapping):
                raise _error(
                    path,
                    start,
                    f"step {step_id!r} must be a mapping of step keys (type, needs, ...), got {item!r}",
                    step_id=str(step_id),
                    field="steps",
                )
            item = _step_keys(path, item)
            if "id" in item and item["id"] != step_id:
                raise _error(
                    path,
                    item.key_lines["id"],
                    f"step {step_id!r} has a different id {item['id']!r}; leave 'id' out when steps is a mapping",
                    step_id=str(step_id),
                    field="id",
                )
            yield _RawStep(step_id, item, start, {"id": start, **item.key_lines})
    else:
        raise _error(
            path,
            line,
            "steps must be a list of steps (each with 'id' and 'type') or a mapping of step "
            f"id to step, got a {_kind(steps)}",
            field="steps",
        )


def _step_keys(path: Path, item: YamlMapping) -> YamlMapping:
    """``item`` with each key (or alias) of the task-spec schema written as the file's key (``needs`` for
    ``dependencies``, ...), its lines kept; unknown and repeated keys are refused at their lines."""
    try:
        fields = spec_fields(item, STEP, "step key")
    except ValidationError as exc:
        key = str(exc.field)
        raise _error(path, item.key_lines.get(key, item.line), str(exc), field=key) from None
    _check_repeats(path, item, "step key {key!r} is written twice; give each key once")
    written = {KEY_OF[field]: str(key) for field, key in zip(fields, item, strict=True)}
    canonical = YamlMapping({KEY_OF[field]: value for field, value in fields.items()})
    canonical.line = item.line
    canonical.key_lines = {key: item.key_lines[was] for key, was in written.items() if was in item.key_lines}
    return canonical


def _step(path: Path, raw: _RawStep) -> Step:
    """A checked step; an error points at the key that holds the bad value."""
    fields, step_id = raw.fields, raw.step_id
    if "type" not in fields:
        raise _error(
            path,
            raw.line,
            f"step {step_id!r} has no 'type'; add `type: <task type>` (the kind of task, "
            "as agents list it in task_types)",
            step_id=str(step_id),
            field="type",
        )
    needs = fields.get("needs")
    if (
        needs is not None
        and not isinstance(needs, str)
        and not (isinstance(needs, list) and all(isinstance(n, str) for n in needs))
    ):
        raise _error(
            path,
            raw.line_of("needs"),
            f"step {step_id!r}: needs must be a step id or a list of step ids, e.g. [draft, review]; got {needs!r}",
            step_id=str(step_id),
            field="dependencies",
        )
    try:
        return make_step(
            step_id,
            fields["type"],
            agent=fields.get("agent"),
            dependencies=needs or (),
            inputs=fields.get("inputs"),
            priority=fields.get("priority", "normal"),
            timeout=fields.get("timeout"),
            max_retries=fields.get("retries", 0),
            requirements=_requirements(path, raw),
            condition=fields.get("when"),
            metadata=fields.get("metadata"),
            recovery=fields.get("recovery"),
        )
    except WorkflowDefinitionError as exc:
        raise _error(
            path, _field_line(raw, exc.field), str(exc), step_id=exc.step_id or str(step_id), field=exc.field
        ) from None


def _requirements(path: Path, raw: _RawStep) -> dict[str, Any] | None:
    """``requirements`` with the ``skills`` and ``resources`` keys of the step merged in."""
    try:
        return merged_requirements(raw.fields)
    except ValidationError as exc:
        raise _error(
            path,
            raw.line_of(str(exc.field)),
            f"step {raw.step_id!r}: {exc}",
            step_id=str(raw.step_id),
            field=exc.field,
        ) from None


def _field_line(raw: _RawStep, field_name: str | None) -> int:
    """The line of the key holding ``make_step``'s ``field_name`` (resource names point inside resources)."""
    if field_name is None:
        return raw.line
    if field_name == "expression":
        return _expression_line(raw)
    key = "needs" if field_name == "dependency id" else "id" if field_name == "step_id" else KEY_OF.get(field_name)
    if key is not None and key not in ("skills", "resources"):
        return raw.line_of(key)
    if field_name in ("skills", "resources"):
        return raw.line_of(field_name if field_name in raw.fields else "requirements")
    requirements = raw.fields.get("requirements")
    if isinstance(requirements, YamlMapping) and field_name in requirements.key_lines:
        return requirements.key_lines[field_name]
    for holder in (raw.fields.get("resources"), (requirements or {}).get("resources")):
        if isinstance(holder, YamlMapping) and field_name in holder.key_lines:
            return holder.key_lines[field_name]  # a resource amount, e.g. `cpu: lots`
    return raw.line_of("requirements") if "requirements" in raw.fields else raw.line


def _expression_line(raw: _RawStep) -> int:
    """Where the bad expression is: in inputs (checked first, as ``make_step`` does) or in ``when``."""
    needs = raw.fields.get("needs") or []
    deps = {needs} if isinstance(needs, str) else set(needs)
    line = _bad_reference_line(raw.fields.get("inputs"), deps, raw.line_of("inputs"))
    return line if line is not None else raw.line_of("when")


def _bad_reference_line(value: Any, deps: set[str], line: int) -> int | None:
    """The line of the innermost key holding a ``${{ }}`` reference that is malformed or reads a step
    outside ``deps``, or None."""
    if isinstance(value, Mapping):
        lines = value.key_lines if isinstance(value, YamlMapping) else {}
        for key, item in value.items():
            found = _bad_reference_line(item, deps, lines.get(str(key), line))
            if found is not None:
                return found
        return None
    try:
        bad = any(e.steps - deps for e in expressions.references(value))
    except ExpressionError:
        bad = True
    return line if bad else None


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
            raise _error(
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
        raise _error(
            path, line, f"agents: no such agent file or folder {reference!r} (looked for {target})", field="agents"
        )
    try:
        found = agent_files(target)
    except AgentDefinitionError as exc:
        raise _error(
            path, line, f"agents: {reference!r}: {str(exc).removeprefix(f'{exc.path}: ')}", field="agents"
        ) from None
    own = path.resolve()
    return [file.resolve() for file in found if file.resolve() != own]
