"""Turning what a caller submits into validated ``Task`` records.

``build_task`` checks each argument; ``prepare`` checks a batch against what is
already stored (same id with another spec, dependency cycles) before anything is
written, so a rejected submission changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pepper.errors import DuplicateTaskError, ValidationError, shown
from pepper.model import codec
from pepper.model.dag import check_acyclic
from pepper.model.recovery import Policy
from pepper.model.requirements import NO_REQUIREMENTS, Requirements
from pepper.model.resources import describe
from pepper.model.retry import MAX_RETRIES
from pepper.model.slots import quick_init
from pepper.model.step_tasks import run_namespace
from pepper.model.task import SPEC_COLUMNS, Priority, Task
from pepper.model.task_spec import FIELD_OF, SUBMIT, task_arguments
from pepper.model.timing import start_time
from pepper.model.units import parse_duration

#: The fields a task is submitted with: its id and its specification.
TASK_FIELDS = ("task_id", *Task.SPEC_FIELDS, "delay", "not_before")
_MAX_ID = 200
#: Upper bounds of fields with a natural one (and well inside what SQLite stores).
MAX_TIMEOUT = 366 * 86400.0
_INT64 = range(-(2**63), 2**63)


def new_task_id() -> str:
    """A fresh, unique task id such as ``task-3f2a9c1e0b7d``."""
    return f"task-{uuid.uuid4().hex[:12]}"


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}", field=what)
    if len(value) > _MAX_ID or not value.isprintable() or value != value.strip():
        raise ValidationError(
            f"{what} {value!r} must have no surrounding spaces or unprintable characters "
            f"and at most {_MAX_ID} characters",
            field=what,
        )
    if value in (".", ".."):  # a path segment no browser sends as it is: the dashboard could never open it
        raise ValidationError(f"{what} cannot be {value!r} (a path segment of its own); give a name", field=what)
    return value


def _check_dependencies(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if type(value) not in (list, tuple) and (isinstance(value, (str, bytes)) or not isinstance(value, Iterable)):
        raise ValidationError(
            f"dependencies must be a list of task ids, e.g. ['task_122']; got {value!r}",
            field="dependencies",
        )
    deps: dict[str, None] = {}
    for dep in value:
        deps[_check_name(dep, "dependency id")] = None
    return tuple(deps)


def build_task(
    *,
    task_type: Any,
    task_id: Any = None,
    priority: Any = "normal",
    dependencies: Any = (),
    inputs: Any = None,
    agent: Any = None,
    requirements: Any = None,
    timeout: Any = None,
    max_retries: Any = 0,
    metadata: Any = None,
    policy: Any = None,
    delay: Any = None,
    not_before: Any = None,
    now: float = 0.0,
) -> Task:
    """A validated ``Task``; raises a ``ValidationError`` subclass naming the bad field.

    ``delay`` (after ``now``) or ``not_before`` (a fixed, timezone-aware time) hold its start back."""
    task_id = new_task_id() if task_id is None else _check_name(task_id, "task_id")
    starts = start_time(delay, not_before, now)
    if timeout is not None:
        timeout = parse_duration(timeout, "timeout")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ValidationError(
                f"timeout must be positive and at most 366 days ({MAX_TIMEOUT:.0f}s), got {timeout!r}; "
                "leave it out for no timeout",
                field="timeout",
            )
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= MAX_RETRIES:
        raise ValidationError(
            f"max_retries must be a whole number from 0 to {MAX_RETRIES}, got {shown(max_retries)}",
            field="max_retries",
        )
    if policy is not None:
        policy = Policy.parse(policy)
        if max_retries:
            raise ValidationError(
                f"give max_retries or a recovery policy, not both (max_retries={max_retries} is "
                f"the policy 'retry({max_retries})')",
                field="policy",
            )
    if metadata is not None:
        metadata = codec.mapping(metadata, "metadata", "of names to values, e.g. {'team': 'docs'}")
    inputs, inputs_json = ({}, "{}") if inputs is None else codec.normalise(inputs, "inputs", depth=codec.MAX_DEPTH)
    metadata = codec.normalise(dict(metadata), "metadata", depth=codec.MAX_DEPTH)[0] if metadata else {}
    task = Task(
        task_id=task_id,
        task_type=_check_name(task_type, "task_type"),
        priority=Priority.parse(priority),
        dependencies=_check_dependencies(dependencies),
        inputs=inputs,
        agent=None if agent is None else _check_name(agent, "agent"),
        requirements=NO_REQUIREMENTS if requirements is None else Requirements.parse(requirements),
        timeout=timeout,
        max_retries=max_retries,
        metadata=metadata,
        created_at=now,
        inputs_json=inputs_json,
        policy=policy,
        not_before=starts,
    )
    _check_storable(task)
    return task


def _check_storable(task: Task) -> None:
    """Refuse what SQLite would refuse when it binds the row: text that is not valid UTF-8 (a lone
    surrogate in a policy, say) and integers beyond 64 bits. The fields were checked one by one;
    this covers what they build, so a bad value never reaches a shared commit."""
    for column, value in zip(SPEC_COLUMNS, task.to_row(), strict=True):
        if isinstance(value, str):
            codec.check_utf8(value, value, column)
        elif isinstance(value, int) and value not in _INT64:
            raise ValidationError(f"{column} is out of range: {shown(value)} does not fit in 64 bits", field=column)


def tasks_from_specs(specs: Any, now: float) -> list[Task]:
    """``task_from_mapping`` for each item of a list such as ``[{"id": "t1", "type": "review"}, ...]``.

    Specs that differ only in their id (a bulk of tasks of one kind) are checked once: the others take the
    first one's checked fields, and only their ids are checked."""
    if specs is None or isinstance(specs, (str, bytes, Mapping, Task)) or not isinstance(specs, Iterable):
        raise ValidationError(
            "submit_tasks() expects a list of tasks (mappings such as {'id': 't1', 'type': 'review'}, or Task "
            f"objects); got {type(specs).__name__}",
            field="tasks",
        )
    tasks = []
    checked: dict[tuple[Any, ...], Task] = {}  # the task built from each shape of spec seen, by that shape
    #: the latest spec whose shape was found, the task of that shape, and its id and dependencies keys
    last: tuple[Mapping[str, Any], Task, str | None, str | None] | None = None
    for index, spec in enumerate(specs):
        if last is not None and _alike(spec, *last):  # as a bulk goes: the shape of the one before
            tasks.append(_like(last[1], spec, last[2], last[3]))
            continue
        if isinstance(spec, Task):  # built by hand, perhaps: at least make sure it can be stored
            _check_storable(spec)
        elif type(spec) is not dict and not isinstance(spec, Mapping):
            raise ValidationError(
                f"tasks[{index}] must be a mapping of task fields such as {{'id': 't1', 'type': 'review'}} "
                f"or a Task, got {type(spec).__name__}",
                field="tasks",
            )
        else:
            shape = _shape(spec)
            if shape is not None:
                like = checked.get(shape)
                if like is not None:
                    tasks.append(_like(like, spec, shape[0], shape[1]))
                else:
                    like = checked[shape] = task_from_mapping(spec, now)
                    tasks.append(like)
                last = (spec, like, shape[0], shape[1])
                continue
        tasks.append(task_from_mapping(spec, now))
    return tasks


#: The keys a spec may give its id with, and its dependencies.
_ID_KEYS = frozenset(key for key, name in FIELD_OF.items() if name == "task_id")
_DEPENDENCY_KEYS = frozenset(key for key, name in FIELD_OF.items() if name == "dependencies")
#: Values whose equal copies check alike (a container could hold different things; an object could change).
_PLAIN = frozenset({str, int, float, bool, type(None)})
_ABSENT: Any = object()
_new_task = quick_init(Task)


def _shape(spec: Any) -> tuple[Any, ...] | None:
    """What a spec gives besides its id and its dependencies, as a key: ``(id key, dependencies key, (key, type,
    value)...)``; None when some value is not plain (only plain values are known to check alike when equal), the
    dependencies are not a list or tuple, or the spec is not a dict. Each task's id and dependencies are its own:
    they are checked per task."""
    if type(spec) is not dict:
        return None
    id_key = deps_key = None
    shape: list[Any] = []
    for key, value in spec.items():
        if type(key) is not str:
            return None
        if key in _ID_KEYS:
            if id_key is not None:  # given twice: the full check says so
                return None
            id_key = key
        elif key in _DEPENDENCY_KEYS:
            if deps_key is not None or type(value) not in (list, tuple):  # the full check says what is wrong
                return None
            deps_key = key
        elif type(value) in _PLAIN:
            shape.append((key, type(value), value))  # the type too: 1 == 1.0 == True
        else:
            return None
    return (id_key, deps_key, *shape)


def _alike(spec: Any, last: Mapping[str, Any], like: Task, id_key: str | None, deps_key: str | None) -> bool:
    """Whether ``spec`` has the ``_shape`` of ``last`` (a spec whose shape was found, with these id and
    dependencies keys; ``like`` is its task): the same keys, holding equal plain values of the same types, its id
    and dependencies aside. Found without building the shape: most specs of a bulk are alike."""
    if type(spec) is not dict or len(spec) != len(last):
        return False
    for key, value in spec.items():
        if type(key) is not str:
            return False
        if key == id_key:
            continue
        if key == deps_key:
            if type(value) not in (list, tuple):
                return False
            continue
        other = last.get(key, _ABSENT)
        if type(value) is not type(other) or type(value) not in _PLAIN or value != other:
            return False
    return True  # every key of ``spec`` is one of ``last``'s, and there are as many: the same keys


def _like(like: Task, spec: Mapping[str, Any], id_key: str | None, deps_key: str | None) -> Task:
    """A task with the fields of ``like`` (built from a spec of the same shape) and the id and dependencies
    ``spec`` gives."""
    # The ids need no check of their own that they can be stored as UTF-8 (``_check_storable``): ``_check_name``
    # takes printable text only, and the only characters UTF-8 cannot write, lone surrogates, are not printable.
    task_id = None if id_key is None else spec[id_key]
    task_id = new_task_id() if task_id is None else _check_name(task_id, "task_id")
    dependencies: tuple[str, ...] = ()
    if deps_key is not None:
        dependencies = _check_dependencies(spec[deps_key])
    # Mappings are each task's own (an agent may change its task's inputs); plain inputs are shared as they are.
    inputs = {} if type(like.inputs) is dict else like.inputs
    metadata = dict(like.metadata) if like.metadata else {}
    return _new_task(
        task_id, like.task_type, like.priority, dependencies, inputs, like.agent, like.requirements,
        like.timeout, like.max_retries, metadata, like.created_at, like.inputs_json, like.policy, like.not_before,
    )  # fmt: skip


def task_from_mapping(spec: Any, now: float) -> Task:
    """``build_task`` from a dict such as ``{"id": "t1", "type": "review", "dependencies": [...]}``."""
    if isinstance(spec, Task):
        return spec
    if type(spec) is not dict and not isinstance(spec, Mapping):  # (ABC checks are slow; dicts are common)
        raise ValidationError(f"each task must be a mapping of task fields, got {type(spec).__name__}")
    fields = task_arguments(spec, SUBMIT)
    return build_task(now=now, **fields)


def unique_tasks(tasks: Iterable[Task], batch: str = "this submission") -> dict[str, Task]:
    """``tasks`` by id, in order: an id given again with the same spec is the same task; with another spec it is
    a ``DuplicateTaskError`` naming what differs (and ``batch``, what the tasks were given as)."""
    by_id: dict[str, Task] = {}
    for task in tasks:
        earlier = by_id.get(task.task_id)
        if earlier is not None:
            diffs = earlier.spec_differences(task)
            if diffs:
                raise DuplicateTaskError(task.task_id, diffs, in_batch=True, batch=batch)
        else:
            by_id[task.task_id] = task
    return by_id


def _points_backwards(new: Mapping[str, Task]) -> bool:
    """True when every dependency inside the batch names an earlier task: no cycle is possible."""
    earlier: set[str] = set()
    for task_id, task in new.items():
        for dep in task.dependencies:
            if dep in new and dep not in earlier:
                return False
        earlier.add(task_id)
    return True


class StoredTasks(Protocol):
    """What ``prepare`` needs to know about tasks submitted earlier."""

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        """The stored specs of those of ``task_ids`` that exist."""

    def awaited(self, task_ids: Collection[str]) -> bool:
        """True if a stored task depends on one of ``task_ids`` (submitted before them)."""

    def deps_of(self, task_id: str) -> Iterable[str]:
        """Dependencies of a stored task (empty if unknown)."""

    def runs_among(self, run_ids: Collection[str]) -> Collection[str]:
        """Those of ``run_ids`` that are ids of workflow runs."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A checked batch: ``new`` tasks to store, and ``tasks`` in the caller's order."""

    new: tuple[Task, ...]
    tasks: tuple[Task, ...]


def _check_outside_runs(new: Mapping[str, Task], stored: StoredTasks) -> None:
    """Refuse a new task whose id lies in a workflow run's namespace (``<run id>/...``): those ids are the
    run's steps and items, and a task there would be taken for one of them."""
    candidates = {run for tid in new if (run := run_namespace(tid)) is not None}
    runs = stored.runs_among(candidates) if candidates else ()
    if not runs:
        return
    for task_id in new:
        run_id = run_namespace(task_id)
        if run_id in runs:
            raise ValidationError(
                f"task id {task_id!r} lies in the namespace of workflow run {run_id!r}: ids beginning with "
                f"'{run_id}/' belong to that run's steps and items; give the task an id outside it (one not "
                f"beginning with '{run_id}/'), and depend on the run's steps by their ids if it needs them",
                field="task_id",
            )


def prepare(
    tasks: Sequence[Task], stored: StoredTasks, capacity: Mapping[str, float] | None = None,
    holder: str = "the whole pool",
) -> Submission:  # fmt: skip
    """Check a batch against itself and ``stored``; raise before anything is written.

    A task re-submitted with the same spec is returned as stored (idempotent);
    with another spec it is a ``DuplicateTaskError``. A new id inside a workflow run's namespace
    (``<run id>/...``) is refused: it belongs to the run. Cycles, including ones
    closed through earlier tasks that were waiting for these ids, raise ``CycleError``.
    A task needing more resources than the whole pool (``capacity``; ``holder`` names it) could
    never run and is refused.
    """
    batch = unique_tasks(tasks)
    found = stored.existing(list(batch))
    for task_id, old in found.items():
        diffs = old.spec_differences(batch[task_id])
        if diffs:
            raise DuplicateTaskError(task_id, diffs)
    new = {tid: t for tid, t in batch.items() if tid not in found}
    _check_outside_runs(new, stored)
    if capacity is not None:
        for task in new.values():
            needs = task.requirements.resources
            if needs and needs.shortfall(capacity):
                beyond = needs.shortfall(capacity)
                raise ValidationError(
                    f"task {task.task_id!r} needs {describe({n: needs[n] for n in beyond})} but {holder} has "
                    f"{describe({n: capacity.get(n, 0.0) for n in beyond})}, so it could never run; lower its "
                    "requirements or give the pool more (pepper.init(resources=...))",
                    field="requirements",
                )
    # A cycle through stored tasks needs a stored task that waits on a new id; within
    # the batch, it needs a dependency on a later task. Usually neither: skip the search.
    through_stored = bool(new) and stored.awaited(list(new))
    if through_stored or not _points_backwards(new):

        def deps_of(task_id: str) -> Iterable[str]:
            task = new.get(task_id)
            if task is not None:
                return task.dependencies
            return stored.deps_of(task_id) if through_stored else ()

        check_acyclic(new, deps_of)
    resolved = tuple(found.get(t.task_id) or batch[t.task_id] for t in tasks)
    return Submission(new=tuple(new.values()), tasks=resolved)
