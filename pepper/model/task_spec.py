"""The task-spec schema: the keys a task is written with, and their aliases, declared once.

``submit_tasks`` mappings, workflow-file steps, ``TaskSequencer`` tasks and plan tasks are all read
through ``spec_fields``, so each accepts the same keys and aliases and refuses an unknown key with
the same message (the valid keys and the likely fix). Each place accepts the fields that mean
something to it (``SUBMIT``, ``STEP``, ``PLAN``): a step's ``when`` has no meaning for a lone task,
a plan's ``duration`` none for a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pepper.errors import ValidationError, suggest


@dataclass(frozen=True, slots=True)
class SpecKey:
    """One field of a task spec: ``field`` (the argument of ``build_task``), ``key`` (how workflow files
    write it, and how messages name it) and the ``aliases`` also accepted for it."""

    field: str
    key: str
    aliases: tuple[str, ...] = ()


SPEC_KEYS: tuple[SpecKey, ...] = (
    SpecKey("task_id", "id", ("task_id", "step_id")),
    SpecKey("task_type", "type", ("task_type",)),
    SpecKey("agent", "agent"),
    SpecKey("dependencies", "needs", ("dependencies", "depends_on")),
    SpecKey("inputs", "inputs"),
    SpecKey("priority", "priority"),
    SpecKey("timeout", "timeout"),
    SpecKey("max_retries", "retries", ("max_retries",)),
    SpecKey("skills", "skills"),
    SpecKey("resources", "resources"),
    SpecKey("requirements", "requirements"),
    SpecKey("condition", "when", ("condition", "if")),
    SpecKey("metadata", "metadata"),
    SpecKey("policy", "recovery", ("policy",)),
    SpecKey("duration", "duration"),
    SpecKey("delay", "delay"),
    SpecKey("not_before", "not_before"),
    SpecKey("for_each", "for_each"),
    SpecKey("max_parallel", "max_parallel"),
    SpecKey("expected_items", "expected_items"),
    SpecKey("approval", "approval"),
    SpecKey("workflow", "workflow"),
)

#: Every written key or alias -> its field.
FIELD_OF: Mapping[str, str] = {name: k.field for k in SPEC_KEYS for name in (k.key, *k.aliases)}
#: Each field -> the key that names it in messages and workflow files.
KEY_OF: Mapping[str, str] = {k.field: k.key for k in SPEC_KEYS}

_ALL = frozenset(KEY_OF)
#: The fields each reader accepts.
_FAN_OUT = frozenset({"for_each", "max_parallel", "expected_items", "approval", "workflow"})
SUBMIT = _ALL - {"condition", "duration"} - _FAN_OUT
STEP = _ALL - {"duration", "not_before"}
PLAN = _ALL - {"condition", "not_before"} - _FAN_OUT


def accepted_spellings(accepted: frozenset[str]) -> tuple[str, ...]:
    """Each ``accepted`` field as it may be written, in the schema's order: ``needs (or dependencies,
    depends_on)``."""
    return tuple(f"{k.key} (or {', '.join(k.aliases)})" if k.aliases else k.key
                 for k in SPEC_KEYS if k.field in accepted)  # fmt: skip


def unknown_key(key: Any, accepted: frozenset[str], what: str = "task field") -> ValidationError:
    """The error for a key that names none of the ``accepted`` fields: every accepted spelling and the likely
    fix."""
    keys = accepted_spellings(accepted)
    names = [name for name, f in FIELD_OF.items() if f in accepted]
    known = isinstance(key, str) and key in FIELD_OF  # a real field, but not one this reader takes
    hint = f" {key!r} has no meaning here." if known else suggest(str(key), names)
    return ValidationError(f"unknown {what} {key!r}; valid keys: {', '.join(keys)}.{hint}", field=str(key))


def spec_fields(spec: Mapping[Any, Any], accepted: frozenset[str], what: str = "task field") -> dict[str, Any]:
    """``spec``'s values by field (aliases resolved); raises ``ValidationError`` for an unknown key or
    a field given twice (as a key and its alias)."""
    fields: dict[str, Any] = {}
    given: dict[str, Any] = {}
    for key, value in spec.items():
        name = FIELD_OF.get(key) if isinstance(key, str) else None
        if name is None or name not in accepted:
            raise unknown_key(key, accepted, what)
        if name in fields:
            raise ValidationError(
                f"{what} {KEY_OF[name]!r} is given twice (as {given[name]!r} and {key!r}); give it once", field=key
            )
        fields[name] = value
        given[name] = key
    return fields


def merged_requirements(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    """``requirements`` with the ``skills`` and ``resources`` shorthands merged in (None: none given)."""
    requirements = fields.get("requirements")
    if requirements is not None and not isinstance(requirements, Mapping):
        raise ValidationError(
            f"requirements must be a mapping such as {{performance_score: 0.8}}, got {requirements!r}",
            field="requirements",
        )
    merged = dict(requirements or {})
    for key in ("skills", "resources"):
        if key in fields:
            if key in merged:
                raise ValidationError(
                    f"{key} is given twice (as a key of its own and inside requirements); keep one", field=key
                )
            merged[key] = fields[key]
    return merged if requirements is not None or merged else None


def missing_type(task_id: Any) -> ValidationError:
    """The error for a spec without a task type."""
    return ValidationError(
        f"task {task_id!r} needs a type: add 'type' (or 'task_type'), the kind of task as agents list it in task_types",
        field="task_type",
    )


def task_arguments(spec: Mapping[Any, Any], accepted: frozenset[str], what: str = "task field") -> dict[str, Any]:
    """``spec`` as ``build_task``'s arguments: aliases resolved, a type required, and ``skills`` and
    ``resources`` merged into ``requirements``."""
    fields = spec_fields(spec, accepted, what)
    if "task_type" not in fields and "approval" not in fields and "workflow" not in fields:
        raise missing_type(fields.get("task_id"))
    if "skills" in fields or "resources" in fields:
        fields["requirements"] = merged_requirements(fields)
        fields.pop("skills", None)
        fields.pop("resources", None)
    return fields
