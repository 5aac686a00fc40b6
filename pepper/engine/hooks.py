"""Hooks: how metrics, alerts and audit follow the engine without living in it.

Subclass ``EngineHook`` and override what you need; every method is a no-op
here. Hooks run on the engine loop, so they must be quick and must not block.
The engine calls them through ``notify``: a hook that raises is logged and
skipped; it never stops the engine. An engine with no hooks pays nothing for them.
The ``tell_*`` functions tell the engine's own metrics and its hooks of an event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pepper.model.events import AttemptEnded, RecordError
from pepper.model.record import TaskRecord
from pepper.model.task import Task, TaskState

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine")
_COMPLETED = TaskState.COMPLETED  # (read from the class, a member costs a look-up through its metaclass)
#: The error a task's running attempt is left with when the worker running it is found gone.
WORKER_LOST = "WorkerLost"


class EngineHook:
    """Base class of engine hooks; every method does nothing by default."""

    def on_submitted(self, tasks: Sequence[Task]) -> None:
        """New tasks were stored by this engine."""

    def on_started(self, task: Task, attempt: int, agent_id: str, at: float) -> None:
        """An attempt started running on an agent."""

    def on_attempt_ended(self, event: AttemptEnded, task: Task | None) -> None:
        """An attempt ended (``event.ok`` tells how); the task may be retried."""

    def on_attempt_lost(self, task_id: str, attempt: int, record: TaskRecord) -> None:
        """What attempt ``attempt`` of this engine did is not kept: another worker took the task over (it had
        presumed this one dead) before the attempt's end was written. Comes once per attempt: when the engine
        learns it, which may be before the attempt ends (it is stopped, and ``on_attempt_ended`` may follow for
        it) or after (``on_attempt_ended`` came first). ``record`` is the task as stored now."""

    def on_recovery(self, record: RecordError) -> None:
        """A failed attempt (or an error handled by hand) was answered by a recovery policy: ``record.action``
        says what it decided (retry, reassign, fallback, skip, abort, dead_letter, fail)."""

    def on_settled(self, task_id: str, state: TaskState) -> None:
        """A task reached a final state (completed, failed or cancelled), now durable."""


def notify(hooks: Sequence[EngineHook], method: str, *args: Any) -> None:
    """Call ``method`` on every hook; a hook that raises is logged, never fatal."""
    for hook in hooks:
        try:
            getattr(hook, method)(*args)
        except Exception:
            log.exception("engine hook %s.%s failed", type(hook).__name__, method)


# The engine tells its own metrics (``Engine.metrics``) of each event directly, and its hooks through ``notify``:
# the metrics follow every attempt, and looking their methods up by name cost 3 % of a no-op task's time. Like a
# hook, metrics that fail are logged and never stop the engine.


def tell_submitted(engine: Engine, tasks: Sequence[Task]) -> None:
    """Tell the engine's metrics and hooks of ``tasks``, new and stored."""
    _tell(engine, "on_submitted", "a submission", tasks)


def tell_started(engine: Engine, task: Task, attempt: int, agent_id: str, at: float) -> None:
    """Tell the engine's metrics and hooks that an attempt started at ``at``."""
    if engine.metrics is not None:
        try:
            engine.metrics.on_started(task, attempt, agent_id, at)
        except Exception:
            log.exception("the engine's metrics failed to count an attempt's start")
    if engine.hooks:
        notify(engine.hooks, "on_started", task, attempt, agent_id, at)


def tell_attempt_ended(engine: Engine, event: AttemptEnded, taken: bool) -> None:
    """Tell the engine's metrics and hooks that an attempt ended; ``taken``: the state machine took the end (a
    late report of an attempt stopped here takes nothing), so it is written with the next commit."""
    t = engine.state.tasks.get(event.task_id)
    task = t.task if t else None
    if engine.metrics is not None:
        try:
            engine.metrics.on_attempt_ended(event, task)
        except Exception:
            log.exception("the engine's metrics failed to count an attempt's end")
    if engine.hooks:
        if taken:  # (kept for ``on_attempt_lost``, should the write lose)
            engine.batch.ends[event.task_id] = event.attempt
        notify(engine.hooks, "on_attempt_ended", event, task)


def tell_recovery(engine: Engine, record: RecordError) -> None:
    """Tell the engine's metrics and hooks what a recovery policy decided."""
    _tell(engine, "on_recovery", "a recovery", record)


def _tell(engine: Engine, method: str, what: str, *args: Any) -> None:
    """An event told seldom (not at every attempt): to the engine's metrics, then its hooks."""
    if engine.metrics is not None:
        try:
            getattr(engine.metrics, method)(*args)
        except Exception:
            log.exception("the engine's metrics failed to count %s", what)
    if engine.hooks:
        notify(engine.hooks, method, *args)


def tell_settled(engine: Engine, task_id: str, state: TaskState) -> None:
    """Tell the engine's metrics and hooks that ``task_id`` reached ``state``, final and now durable (the metrics
    only of a failure or a cancel: a completion was counted at the attempt's end)."""
    metrics = engine.metrics
    if metrics is not None and state is not _COMPLETED:
        try:
            metrics.on_settled(task_id, state)
        except Exception:
            log.exception("the engine's metrics failed to count a settled task")
    if engine.hooks:
        notify(engine.hooks, "on_settled", task_id, state)


def taken_over(record: TaskRecord, attempt: int, worker_id: str) -> bool:
    """Whether the stored ``record`` shows that attempt ``attempt``, which ``worker_id`` ran, will not be kept:
    another worker presumed it dead and queued the task again (``WORKER_LOST``), or the task has been claimed
    since (a later attempt). A row that shows the same attempt running is no take-over: it is this worker's own
    claim, or a claim of another worker that won over this one's (which never started)."""
    if record.attempts != attempt:
        return True
    if record.state is TaskState.IN_PROGRESS:
        return False
    # Queued again by another worker and not claimed since: the row is pending, with the error of the take-over. (A
    # later end of the same attempt number, a cancel of this worker's own claim say, keeps that older error.)
    lost = record.error is not None and record.error.type == WORKER_LOST
    return record.state is TaskState.PENDING and record.owner != worker_id and lost
