"""Fan-out: a step with ``for_each`` becomes one task per item of a list when its dependencies complete.

The task of item ``i`` of step ``s`` in run ``r`` has the id ``r/s[i]``; its inputs are the step's, with
``${{ item }}`` and ``${{ index }}`` (and references to the run's inputs and dependencies' results)
resolved. ``FanOut`` keeps where one fanned-out step stands: which items have a task, which are final,
and which may start now under ``max_parallel``. Once every item completed, the step's own task (``r/s``)
is stored completed with the items' results, in item order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pepper.errors import ExpressionError, ValidationError
from pepper.model import codec, expressions
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from pepper.model.workflow import MAX_EXPECTED_ITEMS, RUN_KEY, STEP_KEY, Step, step_context_values, task_id_of

#: Metadata key of an item's task: its index in the list.
ITEM_KEY = "pepper.item"

_ITEM_ID = re.compile(r"(?P<step>.+)\[(?P<index>\d+)\]")


def item_id(run_id: str, step_id: str, index: int) -> str:
    """``run/step[3]``: the task of item 3 of a fanned-out step."""
    return f"{task_id_of(run_id, step_id)}[{index}]"


def parse_item_id(task_id: str) -> tuple[str, str, int] | None:
    """``(run id, step id, index)`` for an item's task id, else None."""
    run_id, _, last = task_id.rpartition("/")
    match = _ITEM_ID.fullmatch(last)
    if not run_id or match is None:
        return None
    return run_id, match.group("step"), int(match.group("index"))


def is_item_of(task: Task, run_id: str, step_id: str, index: int) -> bool:
    """Whether ``task`` is the task ``item_task`` made of item ``index`` of step ``step_id`` in run ``run_id``
    (its metadata says so), not another task under that id."""
    meta = task.metadata
    return meta.get(RUN_KEY) == run_id and meta.get(STEP_KEY) == step_id and meta.get(ITEM_KEY) == index


def items_of(step: Step, context: Mapping[str, Any]) -> list[Any]:
    """The list ``step`` fans out over, read against ``context`` (``inputs`` and ``steps``). Raises
    ``ExpressionError`` when it cannot be read or is not a list (naming the value's type), ``ValidationError``
    when it has more than ``MAX_EXPECTED_ITEMS`` items (naming how many it has)."""
    value = step.for_each
    if isinstance(value, str):
        value = expressions.parse(value).evaluate(context)
    if not isinstance(value, (list, tuple)):
        kind = "null" if value is None else type(value).__name__
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ExpressionError(
            f"for_each of step {step.step_id!r} must give a list, but {step.for_each!r} gave a {kind} ({shown})",
            expression=step.for_each if isinstance(step.for_each, str) else None,
        )
    if len(value) > MAX_EXPECTED_ITEMS:
        where = f" ({step.for_each})" if isinstance(step.for_each, str) else ""
        raise ValidationError(
            f"for_each of step {step.step_id!r}{where} gave {len(value):,} items, but a step fans out over at most "
            f"{MAX_EXPECTED_ITEMS:,}; no item was started. Split the list over several steps or runs",
            field="for_each",
        )
    return list(value)


def item_task(
    step: Step, run_id: str, index: int, item: Any, context: Mapping[str, Any], now: float,
    not_before: float | None = None,
) -> Task:  # fmt: skip
    """The task of item ``index`` (``item``) of ``step``: the step's task with every reference in its inputs
    resolved against ``context`` (``inputs``, ``steps``) plus ``item`` and ``index``; it starts no sooner than
    ``not_before`` (the step's delay, counted from its run's start)."""
    t = step.template
    full = {**context, "item": item, "index": index}
    own = expressions.resolve(dict(t.inputs or {}), full)
    inputs, inputs_json = codec.normalise({**context.get("inputs", {}), **own}, "inputs")
    metadata = {**t.metadata, RUN_KEY: run_id, STEP_KEY: step.step_id, ITEM_KEY: index}
    return replace(
        t,
        task_id=item_id(run_id, step.step_id, index),
        dependencies=tuple(task_id_of(run_id, d) for d in t.dependencies),
        inputs=inputs,
        inputs_json=inputs_json,
        metadata=metadata,
        created_at=now,
        not_before=not_before,
    )


def item_context(run_inputs: Mapping[str, Any], results: Mapping[str, Any], skipped: Iterable[str]) -> dict[str, Any]:
    """What ``for_each`` and an item's inputs read: the run's inputs and the dependencies' results."""
    return {"inputs": dict(run_inputs), "steps": step_context_values(results, skipped)}


@dataclass(eq=False)
class FanOut:
    """Where one fanned-out step of a run stands."""

    step: Step
    items: list[Any]
    context: dict[str, Any]
    began: float  # when its items were read (the step's start)
    not_before: float | None = None  # no item starts before (the step's delay)
    started: set[int] = field(default_factory=set)  # items with a task (stored, or queued for the next commit)
    final: dict[int, TaskState] = field(default_factory=dict)
    broken: int | None = None  # the first item that failed or was cancelled: no more start
    stopping: str | None = None  # the step is cancelled (the run stopped): why
    failure: TaskError | None = None  # an item that could not even be made (its inputs cannot be read)
    first_start: float | None = None  # the earliest start of an item, whoever drove the run then
    last_end: float | None = None  # the latest end of a final item
    _cursor: int = 0  # every item before it has a task

    @property
    def step_id(self) -> str:
        return self.step.step_id

    @property
    def running(self) -> list[int]:
        """Items with a task that is not final yet."""
        return sorted(self.started - self.final.keys())

    def settle(self, index: int, state: TaskState) -> None:
        """Item ``index`` became final in ``state`` (a parked item is not: it still holds its place)."""
        if not 0 <= index < len(self.items) or index in self.final or not state.is_final:
            return
        self.started.add(index)
        self.final[index] = state
        if state is not TaskState.COMPLETED and self.broken is None:
            self.broken = index

    def timed(self, started_at: float | None, finished_at: float | None) -> None:
        """An item started at ``started_at`` and ended at ``finished_at`` (None: not known, or not yet)."""
        if started_at is not None and (self.first_start is None or started_at < self.first_start):
            self.first_start = started_at
        if finished_at is not None and (self.last_end is None or finished_at > self.last_end):
            self.last_end = finished_at

    def span(self, now: float) -> tuple[float, float]:
        """The step's start and end: its first item's start and its last item's end, whoever drove its run then
        (when its items were read, and ``now``, where no item tells: none started, or none ended)."""
        start = self.began if self.first_start is None else self.first_start
        return start, now if self.last_end is None else max(self.last_end, start)

    def to_start(self) -> list[int]:
        """The items to start now: the first ones without a task, as many as ``max_parallel`` leaves room for."""
        if self.broken is not None or self.stopping is not None:
            return []
        limit = self.step.max_parallel
        room = len(self.items) if limit is None else limit - (len(self.started) - len(self.final))
        while self._cursor < len(self.items) and self._cursor in self.started:
            self._cursor += 1
        chosen: list[int] = []
        index = self._cursor
        while len(chosen) < room and index < len(self.items):
            if index not in self.started:
                chosen.append(index)
            index += 1
        return chosen

    @property
    def done(self) -> bool:
        """Every item is final, or the step broke or stopped and no item still runs."""
        if len(self.started) > len(self.final):
            return False
        return len(self.final) == len(self.items) or self.broken is not None or self.stopping is not None

    def ending(self) -> TaskState:
        """The step's state once ``done``."""
        if self.stopping is not None:
            return TaskState.CANCELLED
        if self.broken is not None:
            return self.final[self.broken]
        return TaskState.COMPLETED
