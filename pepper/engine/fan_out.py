"""The run driver's fan-outs: the tasks of a ``for_each`` step's items, started and followed.

When a fanned-out step is released (its dependencies completed, its condition true), ``begin`` reads its
list; an empty one completes the step at once with ``[]``, a value that is not a list fails it. Items are
started in order, at most ``max_parallel`` at once (none before the step's ``delay`` has passed since its run
started), each as one more task submitted through the engine;
``pump`` starts the next ones as items end and, once every item is final, stores the step's own task
final: completed with the items' results in order, or failed (cancelled) as its first broken item, with
that item's error and outcome (so an item whose recovery policy aborts the run aborts it). An item its
recovery policy parks is neither: the step waits for it, holding its place under ``max_parallel``, and
follows how a person settles it (replayed and completed, skipped, dropped, cancelled). After a crash the
step is released again: items already stored are not started again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pepper.engine.task_statuses import completed_results
from pepper.errors import PepperError
from pepper.model import codec
from pepper.model.events import CancelRequested
from pepper.model.fan_out import FanOut, is_item_of, item_context, item_id, item_task, items_of, parse_item_id
from pepper.model.record import TaskRecord
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from pepper.model.workflow import Step, step_task

if TYPE_CHECKING:
    from pepper.engine.shell import Engine


class FanOuts:
    """The fan-outs of the runs one driver drives, by run id then step id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.active: dict[str, dict[str, FanOut]] = {}

    def of(self, run_id: str) -> dict[str, FanOut]:
        return self.active.get(run_id, {})

    def forget(self, run_id: str) -> None:
        self.active.pop(run_id, None)

    def begin(
        self, run_id: str, run_inputs: Mapping[str, Any], step: Step, results: Mapping[str, Any],
        skipped: set[str], now: float, settled: list[TaskRecord], run_started: float | None = None,
    ) -> None:  # fmt: skip
        """Start fanning out ``step``: its list is read now; items stored before (a resumed run) are not
        started again. An empty list or a bad value settles the step (into ``settled``). The step's delay holds
        every item back until that long after ``run_started`` (default ``now``)."""
        context = item_context(run_inputs, results, skipped)
        try:
            items = items_of(step, context)
        except PepperError as exc:
            error = TaskError(type(exc).__name__, f"the step's items could not be read: {exc}")
            settled.append(_final(step, run_id, run_inputs, TaskState.FAILED, now, error=error))
            return
        if not items:
            settled.append(_final(step, run_id, run_inputs, TaskState.COMPLETED, now, result=[]))
            return
        since = now if run_started is None else run_started
        fan = FanOut(step, items, context, now, None if step.delay is None else since + step.delay)
        prefix = item_id(run_id, step.step_id, 0)[:-2]  # run/step[
        for tid, record in self.engine.store.runs.tasks(run_id).items():
            if tid.startswith(prefix) and (parsed := parse_item_id(tid)) is not None and parsed[1] == step.step_id:
                if not is_item_of(record.task, run_id, step.step_id, parsed[2]):  # not the run's: never adopted
                    what = f"item {parsed[2]} of {len(items)}"
                    error = TaskError("ConflictError", f"{what} cannot start: its task id {tid!r} is taken by a task "
                                      "this run did not create")  # fmt: skip
                    settled.append(_final(step, run_id, run_inputs, TaskState.FAILED, now, error=error))
                    return
                fan.started.add(parsed[2])
                fan.timed(record.started_at, record.finished_at if record.state.is_final else None)
                if record.state.is_final:
                    fan.settle(parsed[2], record.state)
        self.active.setdefault(run_id, {})[step.step_id] = fan

    def settled(self, task_id: str, state: TaskState) -> str | None:
        """An item's task became final or parked: note a final one; the run id to advance (None: not an item
        of ours). A parked item waits for a person and the step with it: it keeps its place among the running
        items until it is replayed (and ends), skipped, dropped or cancelled."""
        parsed = parse_item_id(task_id)
        if parsed is None:
            return None
        fan = self.of(parsed[0]).get(parsed[1])
        if fan is None:
            return None
        if not state.is_final:
            return parsed[0]
        t = self.engine.state.tasks.get(task_id)
        if t is not None:
            fan.timed(t.started_at, t.finished_at)
        fan.settle(parsed[2], state)
        if fan.broken == parsed[2] and fan.stopping is None:  # the step failed: stop its other items
            self._cancel(parsed[0], fan, f"item {parsed[2]} of step {fan.step_id!r} did not complete")
        return parsed[0]

    def stop(self, run_id: str, step_id: str, why: str) -> None:
        """Cancel a fanned-out step: no item starts any more, running ones are cancelled."""
        fan = self.of(run_id).get(step_id)
        if fan is not None and fan.stopping is None:
            fan.stopping = why
            self._cancel(run_id, fan, why)

    def _cancel(self, run_id: str, fan: FanOut, why: str) -> None:
        now = self.engine.clock.now()
        for index in fan.running:
            tid = item_id(run_id, fan.step_id, index)
            if tid in self.engine.state.tasks:
                self.engine.dispatch(CancelRequested(tid, now, why, f"cancel:run:{run_id}"))

    def pump(
        self, run_id: str, run_inputs: Mapping[str, Any], now: float, settled: list[TaskRecord], submit: list[Task]
    ) -> None:
        """Start the items that may start now (into ``submit``); settle the steps whose items are all final."""
        fans = self.of(run_id)
        for step_id, fan in list(fans.items()):
            for index in fan.to_start():
                try:
                    submit.append(
                        item_task(fan.step, run_id, index, fan.items[index], fan.context, now, fan.not_before)
                    )
                except PepperError as exc:  # its inputs cannot be read: the step fails, naming the item
                    fan.failure = TaskError(
                        type(exc).__name__, f"item {index} of {len(fan.items)} could not start: {exc}"
                    )
                    fan.settle(index, TaskState.FAILED)
                    self._cancel(run_id, fan, f"item {index} of step {fan.step_id!r} could not start")
                    break
                fan.started.add(index)
            if fan.done:
                del fans[step_id]
                settled.append(self._ending(run_id, run_inputs, fan, now))

    def _ending(self, run_id: str, run_inputs: Mapping[str, Any], fan: FanOut, now: float) -> TaskRecord:
        """The step's own task, final, from its first item's start to its last item's end."""
        began, ended = fan.span(now)
        return replace(self._outcome(run_id, run_inputs, fan, now), started_at=began, finished_at=ended)

    def _outcome(self, run_id: str, run_inputs: Mapping[str, Any], fan: FanOut, now: float) -> TaskRecord:
        step = fan.step
        state = fan.ending()
        if state is TaskState.COMPLETED:
            ids = [item_id(run_id, step.step_id, i) for i in range(len(fan.items))]
            by_id = completed_results(self.engine, ids)
            return _final(step, run_id, run_inputs, state, now, result=[by_id.get(tid) for tid in ids])
        if fan.stopping is not None:
            return _final(step, run_id, run_inputs, TaskState.CANCELLED, now, reason=fan.stopping)
        if fan.failure is not None:
            return _final(step, run_id, run_inputs, state, now, error=fan.failure)
        index = fan.broken if fan.broken is not None else 0
        broken = self._record(item_id(run_id, step.step_id, index))
        what = f"item {index} of {len(fan.items)} {state.value}"
        error = None
        if broken is not None and broken.error is not None:
            error = replace(broken.error, message=f"{what}: {broken.error.message}")
        elif state is TaskState.FAILED:
            error = TaskError("ItemFailed", what)
        reason = f"{what}" + (f": {broken.reason}" if broken is not None and broken.reason else "")
        record = _final(step, run_id, run_inputs, state, now, error=error, reason=reason)
        return replace(record, outcome=broken.outcome if broken is not None else None)

    def _record(self, task_id: str) -> TaskRecord | None:
        return self.engine.store.get_tasks([task_id]).get(task_id)


def _final(
    step: Step, run_id: str, run_inputs: Mapping[str, Any], state: TaskState, now: float, *,
    result: Sequence[Any] | None = None, error: TaskError | None = None, reason: str | None = None,
) -> TaskRecord:  # fmt: skip
    """The fanned-out step's own task, final."""
    task = step_task(step, run_id, run_inputs, now)
    value, text = (None, None) if result is None else codec.normalise(list(result), "result")
    return TaskRecord(task, state, finished_at=now, result=value, result_json=text, error=error, reason=reason)
