"""Statuses of tasks on an engine: one task's now, with the reasons it waits, or many once they settle; and the
results of completed ones.

A wait for many tasks is one ``WaitGroup`` (``engine.waiting``) that keeps each task's status as it settles,
so the engine may forget finished tasks meanwhile; only the tasks not in memory when the wait begins are
read from the store, a chunk at a time, keeping their statuses alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pepper.engine.inspection import wait_facts
from pepper.engine.live import LiveTask
from pepper.engine.waiting import WaitGroup
from pepper.errors import TaskNotFoundError, WaitTimeoutError
from pepper.model.status import TaskStatus
from pepper.model.task import TaskState
from pepper.scheduling.explain import explain

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

#: Tasks a wait reads from the store at a time (their records are dropped once their statuses are made).
_READ_CHUNK = 10_000


async def task_status(engine: Engine, task_id: str) -> TaskStatus:
    """The task's current status, with the reasons it waits; loads it into memory if it is unfinished."""
    t = engine.state.tasks.get(task_id)
    if t is None:
        if task_id in engine.pending:
            await engine.committed()
            return await task_status(engine, task_id)
        records = engine.load([task_id], cause="status request")
        if not records:
            raise TaskNotFoundError(task_id)
        t = engine.state.tasks.get(task_id)
        if t is None:
            return records[0].to_status()
    facts = wait_facts(engine.state, task_id, engine.clock.now())
    waiting = explain(facts) if facts is not None else ()
    return t.to_status(waiting)


async def wait_for_tasks(engine: Engine, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
    """Wait until every task is final or parked (and durable); their statuses, in order.

    One group waits for all the open tasks and keeps the status of each as it settles, so a task the
    engine forgets meanwhile is not read back; only tasks not in memory when the wait begins are read, in
    bulk, and only their statuses are kept."""
    tasks = engine.state.tasks
    if any(tid in engine.pending for tid in task_ids):
        await engine.committed()
    unknown = list(dict.fromkeys(tid for tid in task_ids if tid not in tasks))
    known: dict[str, TaskStatus] = {}
    if unknown:  # read in bulk; only those still to wait for are loaded into memory
        unsettled = []
        for first in range(0, len(unknown), _READ_CHUNK):  # a chunk at a time: statuses, and records of the open
            chunk = unknown[first : first + _READ_CHUNK]
            statuses = _all_found(chunk, engine.store.get_statuses(chunk))
            known.update((tid, status) for tid, status in statuses.items() if status.state.is_settled)
            still = [tid for tid, status in statuses.items() if not status.state.is_settled]
            records = _all_found(still, engine.store.get_tasks(still)) if still else {}  # (pruned since: not found)
            for tid, record in records.items():
                if record.state.is_settled:  # settled since (by another worker)
                    known[tid] = record.to_status()
                else:
                    unsettled.append(record)
        if unsettled:
            engine.ingest(unsettled, cause="wait")
    dirty = engine.batch.dirty
    if any(tid in dirty for tid in task_ids):
        _keep_settled(task_ids, tasks, known, dirty)  # the engine may forget them during the await
        await engine.committed()
    # Decided after that await: a task settling meanwhile must not be waited for (nobody would wake us).
    open_ids = [tid for tid in task_ids if tid in tasks and not tasks[tid].state.is_settled]
    if open_ids:
        _keep_settled(task_ids, tasks, known)  # the engine may forget them while we wait
        group = WaitGroup(len(open_ids), engine.loop.create_future())
        group.ended = known
        engine.waiters.add(group, open_ids)
        try:
            await asyncio.wait_for(asyncio.shield(group.future), timeout)
        except TimeoutError:
            engine.waiters.remove(group, open_ids)
            still = [tid for tid in open_ids if tid in tasks and not tasks[tid].state.is_settled]
            raise WaitTimeoutError(still, timeout or 0.0) from None
    return settled_statuses(engine, task_ids, known)


_Read = TypeVar("_Read")


def _all_found(asked: Sequence[str], found: dict[str, _Read]) -> dict[str, _Read]:
    """``found``, once sure it holds every id ``asked`` for (else the first missing one is not found)."""
    if len(found) < len(asked):
        raise TaskNotFoundError(next(tid for tid in asked if tid not in found))
    return found


def settled_statuses(
    engine: Engine, task_ids: Sequence[str], known: Mapping[str, TaskStatus] | None = None
) -> list[TaskStatus]:
    """Statuses of settled tasks: ``known`` (statuses kept as they settled) unless the task changed in memory
    since, else from memory, else (trimmed from memory before anyone asked) the store; no waiting reasons."""
    tasks = engine.state.tasks
    known = known or {}
    missing = [tid for tid in task_ids if tid not in tasks and tid not in known]
    stored = engine.store.get_statuses(missing) if missing else {}
    out = []
    for tid in task_ids:
        t = tasks.get(tid)
        status = known.get(tid)
        if t is not None and (status is None or status.state is not t.state or status.attempts != t.attempts):
            status = t.to_status()  # changed since it settled (a replay, a re-run): as it is now
        out.append(status if status is not None else stored[tid])
    return out


def _keep_settled(
    task_ids: Sequence[str], tasks: Mapping[str, LiveTask], known: dict[str, TaskStatus], unsaved: Collection[str] = ()
) -> None:
    """Add to ``known`` the statuses of the tasks of ``task_ids`` settled in memory, but for ``unsaved`` ones."""
    for tid in task_ids:
        t = tasks.get(tid)
        if t is not None and t.state.is_settled and tid not in known and tid not in unsaved:
            known[tid] = t.to_status()


def completed_results(engine: Engine, task_ids: Iterable[str]) -> dict[str, Any]:
    """Results of the completed tasks among ``task_ids`` (an attempt's dependencies, a run's steps), by id: from
    memory or, for those trimmed from it, the store."""
    results: dict[str, Any] = {}
    missing = []
    for task_id in task_ids:
        t = engine.state.tasks.get(task_id)
        if t is not None and t.state is TaskState.COMPLETED:
            results[task_id] = t.result
        else:
            missing.append(task_id)
    if missing:
        for task_id, record in engine.store.get_tasks(missing).items():
            results[task_id] = record.result
    return results
