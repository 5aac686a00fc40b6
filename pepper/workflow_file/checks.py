"""The schema of a workflow file's steps: the keys allowed, and each step checked where it is written, every
error pointing at the line of the key that holds the bad value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pepper.agents.loader import YamlMapping
from pepper.errors import ExpressionError, ValidationError, WorkflowDefinitionError, suggest
from pepper.model import expressions
from pepper.model.task_spec import KEY_OF, STEP, merged_requirements, spec_fields
from pepper.model.workflow import Step, WorkflowSpec, make_step

TOP_KEYS = ("name", "description", "agents", "inputs", "fail_fast", "schedule", "steps")
#: The keys of a workflow file's ``schedule:``.
SCHEDULE_KEYS = ("cron", "every", "timezone", "catch_up")


@dataclass(frozen=True)
class RawStep:
    """One step as written, with where each of its keys stands."""

    step_id: Any
    fields: Mapping[str, Any]
    line: int  # where the step starts
    key_lines: Mapping[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


def error(path: Path, line: int | None, message: str, **where: Any) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(message, path=str(path), line=line, **where)


def check_keys(path: Path, data: YamlMapping, valid: tuple[str, ...], what: str) -> None:
    """Refuse unknown and repeated keys, at their lines."""
    for key in data:
        if key not in valid:
            hint = suggest(str(key), valid)
            raise error(
                path,
                data.key_lines.get(str(key), data.line),
                f"unknown {what} {key!r}; valid keys: {', '.join(valid)}.{hint}",
                field=str(key),
            )
    check_repeats(path, data, f"{what} {{key!r}} is written twice; give each key once")


def check_repeats(path: Path, data: YamlMapping, message: str) -> None:
    """Refuse a key written twice in one mapping (YAML would keep the last silently), at its second line."""
    for key, line in data.duplicate_keys.items():
        raise error(path, line, message.format(key=key), field=key)


_KINDS: dict[type, str] = {str: "string", list: "list", YamlMapping: "mapping", dict: "mapping"}


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return _KINDS.get(type(value), type(value).__name__)


def check_step(path: Path, raw: RawStep, child: WorkflowSpec | None = None) -> Step:
    """A checked step; an error points at the key that holds the bad value. ``child``: the workflow its
    ``workflow`` key names, read by the caller."""
    fields, step_id = raw.fields, raw.step_id
    if "type" not in fields and "approval" not in fields and "workflow" not in fields:
        raise error(
            path,
            raw.line,
            f"step {step_id!r} has no 'type'; add `type: <task type>` (the kind of task, "
            "as agents list it in task_types), or make it an approval or a sub-workflow (workflow)",
            step_id=str(step_id),
            field="type",
        )
    needs = fields.get("needs")
    if (
        needs is not None
        and not isinstance(needs, str)
        and not (isinstance(needs, list) and all(isinstance(n, str) for n in needs))
    ):
        raise error(
            path,
            raw.line_of("needs"),
            f"step {step_id!r}: needs must be a step id or a list of step ids, e.g. [draft, review]; got {needs!r}",
            step_id=str(step_id),
            field="dependencies",
        )
    try:
        return make_step(
            step_id,
            fields.get("type"),
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
            delay=fields.get("delay"),
            for_each=fields.get("for_each"),
            max_parallel=fields.get("max_parallel"),
            expected_items=fields.get("expected_items"),
            approval=fields.get("approval"),
            workflow=child,
        )
    except WorkflowDefinitionError as exc:
        raise error(
            path, field_line(raw, exc.field), str(exc), step_id=exc.step_id or str(step_id), field=exc.field
        ) from None


def step_keys(path: Path, item: YamlMapping) -> YamlMapping:
    """``item`` with each key (or alias) of the task-spec schema written as the file's key (``needs`` for
    ``dependencies``, ...), its lines kept; unknown and repeated keys are refused at their lines."""
    try:
        fields = spec_fields(item, STEP, "step key")
    except ValidationError as exc:
        key = str(exc.field)
        raise error(path, item.key_lines.get(key, item.line), str(exc), field=key) from None
    check_repeats(path, item, "step key {key!r} is written twice; give each key once")
    written = {KEY_OF[field]: str(key) for field, key in zip(fields, item, strict=True)}
    canonical = YamlMapping({KEY_OF[field]: value for field, value in fields.items()})
    canonical.line = item.line
    canonical.key_lines = {key: item.key_lines[was] for key, was in written.items() if was in item.key_lines}
    return canonical


def _requirements(path: Path, raw: RawStep) -> dict[str, Any] | None:
    """``requirements`` with the ``skills`` and ``resources`` keys of the step merged in."""
    try:
        return merged_requirements(raw.fields)
    except ValidationError as exc:
        raise error(
            path,
            raw.line_of(str(exc.field)),
            f"step {raw.step_id!r}: {exc}",
            step_id=str(raw.step_id),
            field=exc.field,
        ) from None


def field_line(raw: RawStep, field_name: str | None) -> int:
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


def _expression_line(raw: RawStep) -> int:
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
