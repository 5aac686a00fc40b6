"""``TaskOrchestrator``: submit tasks, follow them, wait for them, cancel them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence, Sized
from datetime import datetime, timedelta
from typing import Any

from pepper.core.component import Component
from pepper.engine.collector import bulk
from pepper.engine.portal import blocking, on_engine_loop
from pepper.errors import TaskCancelledError, TaskFailedError, TaskParkedError, ValidationError, shown, suggest
from pepper.model import codec
from pepper.model.feedback import TaskFeedback
from pepper.model.status import TaskStatus
from pepper.model.submission import TASK_FIELDS, build_task, tasks_from_specs
from pepper.model.task import Task, TaskState
from pepper.model.units import check_limit
from pepper.store.protocol import TaskPlace


def parse_state(state: Any) -> TaskState | None:
    """A ``TaskState`` from a name (``"pending"``) or ``None``; bad names are a ``ValidationError``."""
    if state is None or isinstance(state, TaskState):
        return state
    try:
        return TaskState(state)
    except ValueError:
        names = [s.value for s in TaskState]
        raise ValidationError(
            f"unknown task state {state!r}; valid states: {', '.join(names)}.{suggest(str(state), names)}",
            field="state",
        ) from None


class TaskOrchestrator(Component):
    """Submits tasks to a runtime and reports on them.

    Every blocking method has an ``_async`` twin for async code, e.g.
    ``wait`` / ``await wait_async``.
    """

    @on_engine_loop
    async def submit_task_async(
        self,
        task_id: str | None = None,
        task_type: str | None = None,
        priority: str | int = "normal",
        dependencies: Iterable[str] = (),
        inputs: Any = None,
        agent: str | None = None,
        requirements: Mapping[str, Any] | None = None,
        timeout: float | str | None = None,
        max_retries: int = 0,
        metadata: Mapping[str, Any] | None = None,
        policy: Any = None,
        delay: float | str | timedelta | None = None,
        not_before: datetime | str | float | None = None,
        **unknown: Any,
    ) -> Task:
        """Store a task durably and return it; it runs once its dependencies completed.

        ``delay`` (seconds, ``"30s"``, ``"15m"`` or a ``timedelta``) holds it back that long after now (the
        runtime's clock); ``not_before`` until a fixed time (a timezone-aware ``datetime``, an ISO 8601 text
        with its offset, or seconds since the epoch; a time without a zone is refused). Give one of them at most.

        ``policy`` is its recovery policy (e.g. ``"retry(3) -> reassign -> dead_letter"``; see
        ``pepper.model.recovery``); without one, a failure is retried ``max_retries`` times.
        Re-submitting the same ``task_id`` with the same spec returns the stored
        task; with a different spec it raises ``DuplicateTaskError``.
        """
        if unknown:
            name = next(iter(unknown))
            raise ValidationError(
                f"submit_task() got an unknown argument {name!r}; valid: {', '.join(TASK_FIELDS)}."
                f"{suggest(name, TASK_FIELDS)}",
                field=name,
            )
        if task_type is None:
            raise ValidationError("submit_task() needs a task_type, e.g. task_type='documentation'", field="task_type")
        runtime = self.runtime
        task = build_task(
            task_id=task_id,
            task_type=task_type,
            priority=priority,
            dependencies=dependencies,
            inputs=inputs,
            agent=agent,
            requirements=requirements,
            timeout=timeout,
            max_retries=max_retries,
            metadata=metadata,
            policy=policy,
            delay=delay,
            not_before=not_before,
            now=runtime.clock.now(),
        )
        backend = await runtime.backend()
        return (await backend.submit([task]))[0]

    @on_engine_loop
    async def submit_tasks_async(self, tasks: Iterable[Mapping[str, Any] | Task]) -> list[Task]:
        """Store many tasks in one transaction: all of them, or (on any error) none."""
        runtime = self.runtime
        now = runtime.clock.now()
        with bulk(len(tasks) if isinstance(tasks, Sized) else 0):
            built = tasks_from_specs(tasks, now)
            if not built:
                return []
            backend = await runtime.backend()
            return await backend.submit(built)

    @on_engine_loop
    async def get_task_status_async(self, task_id: str) -> TaskStatus:
        """State, agent, attempts, timestamps, result or error, and ``waiting_on``: why it is not running."""
        backend = await self.runtime.backend()
        return await backend.status(_check_id(task_id))

    @on_engine_loop
    async def cancel_task_async(self, task_id: str, reason: str | None = None) -> bool:
        """Cancel a task and everything that depends on it; False if it had already finished.

        True once the cancel is stored: the task is cancelled with its dependents, or, when a worker is running
        it, the request to stop it is recorded. That worker stops the task when it next reads the database; if
        the attempt ends first, the task keeps that outcome and its dependents go on as after any end (they run
        once it completed). ``wait`` tells how it ended.
        """
        task_id = _check_id(task_id)
        if reason is not None and not isinstance(reason, str):
            raise ValidationError(f"a cancel's reason must be text, got {shown(reason)}", field="reason")
        if reason is not None:
            codec.check_utf8(reason, reason, "reason")  # stored with the task: text the database can hold
        backend = await self.runtime.backend()
        return await backend.cancel(task_id, reason or "cancelled on request")

    @on_engine_loop
    async def wait_async(
        self, task_ids: str | Sequence[str], timeout: float | None = None
    ) -> TaskStatus | list[TaskStatus]:
        """Await the end of one task (its status) or several (their statuses, in order).

        A task ends when it is final (completed, failed, cancelled) or parked in
        the dead-letter queue: a parked task waits for a person, so waiting for
        it any longer would not end. Raises ``WaitTimeoutError`` if ``timeout``
        seconds pass first. A failed or parked task does not raise here; look at
        its ``state`` and ``error``.
        """
        single = isinstance(task_ids, str)
        if not single and not isinstance(task_ids, Iterable):
            raise ValidationError(
                f"wait takes a task id or a list of task ids, got {shown(task_ids)}", field="task_ids"
            )
        ids = [_check_id(task_ids)] if single else [_check_id(t) for t in task_ids]
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < float("inf")
        ):
            raise ValidationError(f"timeout must be a number of seconds >= 0, got {shown(timeout)}", field="timeout")
        backend = await self.runtime.backend()
        statuses = await backend.wait(ids, timeout)
        return statuses[0] if single else statuses

    async def get_result_async(self, task_id: str, timeout: float | None = None) -> Any:
        """Await the task and return its result; raises ``TaskFailedError`` (``TaskParkedError`` when it is
        parked in the dead-letter queue) or ``TaskCancelledError``."""
        status = await self.wait_async(_check_id(task_id), timeout)
        assert isinstance(status, TaskStatus)
        if status.state is TaskState.PARKED:
            raise TaskParkedError(task_id, status.error)
        if status.state is TaskState.FAILED:
            raise TaskFailedError(task_id, status.error)
        if status.state is TaskState.CANCELLED:
            raise TaskCancelledError(task_id, status.reason)
        return status.result

    @on_engine_loop
    async def list_tasks_async(
        self,
        state: str | TaskState | None = None,
        limit: int = 1000,
        *,
        task_type: str | None = None,
        after: str | TaskStatus | TaskPlace | None = None,
        id_contains: str | None = None,
    ) -> list[TaskStatus]:
        """Tasks, most recently submitted first, optionally only those in ``state``, of ``task_type``, or whose id
        holds ``id_contains`` (ASCII letters in either case; ``%`` and ``_`` are themselves).

        ``after``, the last status of a page, gives the tasks submitted before it: the next page, which goes on
        from where that task was even if it was pruned since. Given as a task id alone, that task must be stored
        (else ``TaskNotFoundError``)."""
        wanted = parse_state(state)
        if task_type is not None and (not isinstance(task_type, str) or not task_type):
            raise ValidationError(f"task_type must be a non-empty string, got {shown(task_type)}", field="task_type")
        check_limit(limit)
        contains = _check_contains(id_contains)
        place = _place(after)
        backend = await self.runtime.backend()
        if isinstance(place, str):
            await backend.status(place)  # an unknown task raises TaskNotFoundError, not an empty page
        return await backend.list_tasks(wanted, limit, task_type=task_type, after=place, id_contains=contains)

    @on_engine_loop
    async def add_feedback_async(
        self, task_id: str, rating: int, comment: str | None = None, metrics: Mapping[str, Any] | None = None
    ) -> TaskFeedback:
        """Rate a finished task from 1 (poor) to 5 (excellent); the agent that ran it learns from it."""
        feedback = TaskFeedback.build(_check_id(task_id), rating, comment, metrics)
        backend = await self.runtime.backend()
        return await backend.add_feedback(feedback)

    def get_feedback(self, task_id: str) -> list[TaskFeedback]:
        """The feedback given on a task, oldest first."""
        return self.runtime.store.feedback.of_task(_check_id(task_id))

    submit_task = blocking(submit_task_async)
    add_feedback = blocking(add_feedback_async)
    submit_tasks = blocking(submit_tasks_async)
    get_task_status = blocking(get_task_status_async)
    cancel_task = blocking(cancel_task_async)
    wait = blocking(wait_async)
    get_result = blocking(get_result_async)
    list_tasks = blocking(list_tasks_async)


#: The longest text a task id is searched for (no id is longer).
MAX_ID_SEARCH = 200


def _check_contains(text: Any) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str) or not text or len(text) > MAX_ID_SEARCH or "\x00" in text:
        raise ValidationError(
            f"id_contains must be text of 1 to {MAX_ID_SEARCH} characters (no NUL), got {shown(text)}",
            field="id_contains",
        )
    codec.check_utf8(text, text, "id_contains")
    return text


def _place(after: Any) -> str | TaskPlace | None:
    """Where a page ended: a stored task's id, or a task's place (from its status, or given so)."""
    if after is None:
        return None
    if isinstance(after, str):
        return _check_id(after)
    if isinstance(after, TaskStatus):
        return after.task_id if after.created_at is None else TaskPlace(after.task_id, float(after.created_at))
    if isinstance(after, tuple) and len(after) in (2, 3):
        task_id, at, *seq = after
        if not isinstance(at, (int, float)) or isinstance(at, bool) or not math.isfinite(at):
            raise ValidationError(
                f"a task's place holds its created_at, a finite number; got {shown(at)}", field="after"
            )
        if (
            seq
            and seq[0] is not None
            and (not isinstance(seq[0], int) or isinstance(seq[0], bool) or not 0 <= seq[0] < 2**63)
        ):
            raise ValidationError(
                f"a task's place holds its seq, a whole number >= 0; got {shown(seq[0])}", field="after"
            )
        return TaskPlace(_check_id(task_id), float(at), *seq)
    raise ValidationError(
        f"after is the last status of a page, its task id, or its place (TaskPlace); got {shown(after)}", field="after"
    )


def _check_id(task_id: Any) -> str:
    if not isinstance(task_id, str) or not task_id:
        raise ValidationError(f"a task id must be a non-empty string, got {shown(task_id)}", field="task_id")
    if not task_id.isascii():
        try:
            task_id.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"task id {shown(task_id)} is not valid text (no stored task has such an id)", field="task_id"
            ) from None
    return task_id
