"""Commits that fail, and commits whose outcome is in doubt.

A commit the database is too busy for (``transient``) is kept whole and tried again later (``retry_flush``):
nothing acknowledged is lost meanwhile. A commit it refuses is stored item by item
(``group_commit.commit_apart``), and only the items it refuses fail (``refuse``). A commit reported failed
may have gone through all the same (the connection broke as the database committed): its retry then loses
to the rows it wrote itself, and ``reread`` reads those rows back and acts on them as read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pepper.engine.batch import Batch
from pepper.engine.hooks import notify, taken_over
from pepper.engine.launch import launch
from pepper.errors import StoreBusyError, StoreError
from pepper.model.events import Start, WriteRefused
from pepper.model.status import TaskError
from pepper.model.task import TaskState

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine")
#: Seconds between tries of a write (or a read back) the database would not take, growing with each failure.
RETRY_COMMIT = (0.05, 0.2, 1.0, 5.0)


def transient(exc: BaseException) -> bool:
    """A failure that may pass (the database is busy, locked, full or unreachable): retry the whole batch.

    Anything else (``WriteRefusedError``: a constraint, a value the database cannot hold) fails the same way
    every time.
    """
    return isinstance(exc, StoreBusyError)


def retry_flush(engine: Engine, batch: Batch, exc: BaseException) -> None:
    """Keep the batch and try again later; nothing acknowledged is lost meanwhile."""
    delay = RETRY_COMMIT[min(engine.commit_failures, len(RETRY_COMMIT) - 1)]
    engine.commit_failures += 1
    log.error("commit failed (%s); retrying in %.2fs", exc, delay)
    batch.absorb(engine.batch)
    engine.batch = batch
    engine.flush_handle = engine.loop.call_later(delay, engine.flush)


def refuse(engine: Engine, task_id: str | None, part: Batch, exc: Exception) -> None:
    """One item the store will not take: its submitters get the error, its task ends failed."""
    why = f"{type(exc).__name__}: {exc}"
    for group, future in part.submissions:
        for task in group:
            engine.pending.pop(task.task_id, None)
        if not future.done():
            future.set_exception(StoreError(f"the database refused to store these tasks ({why})"))
    if part.lease_drops:  # a lease not released stays counted until it expires by itself
        log.error("could not release leases %s (%s); they expire on their own", part.lease_drops, why)
    if task_id is None:
        return
    if task_id in engine.refused_tasks:
        log.critical("the database refused task %s even as a failure (%s); it is left as last stored",
                     task_id, why)  # fmt: skip
        return
    engine.refused_tasks.add(task_id)
    log.error("the database refused the changes of task %s (%s); the task fails", task_id, why)
    message = f"the database refused to store this task's changes ({why})"
    error = TaskError("StoreError", message, kind="error")
    engine.dispatch(WriteRefused(task_id, error, engine.clock.now(), f"refused:{task_id}"))


def reread(
    engine: Engine, conflicts: set[str], starts: list[Start], settled: list[str],
    ends: Mapping[str, int] | None = None, tries: int = 0,
) -> None:  # fmt: skip
    """Read back the rows of ``conflicts`` (again later, until the database answers), and act on those
    that show this worker's own write: a commit reported failed may have gone through all the same (the
    connection broke as it committed), so its retry lost to itself.

    A claim the row shows as ours, at this attempt, is ours: its attempt starts. An end the row shows
    settled wakes its waiters, as its own commit would have. A task with a change of its own waiting for
    the next commit is left to that commit. An attempt's end (of ``ends``: task -> attempt) whose row shows the
    task taken over by another worker (``hooks.taken_over``) is lost: the hooks hear it (``on_attempt_lost``)."""
    try:
        records = engine.load(conflicts, "conflict")
    except Exception as exc:  # noqa: BLE001 - the database is away: nothing is acted on before it answers
        if engine.store.closed:
            return
        delay = RETRY_COMMIT[min(tries, len(RETRY_COMMIT) - 1)]
        log.warning("could not read back tasks changed meanwhile (%s); trying again in %.2fs", exc, delay)
        engine.loop.call_later(delay, reread, engine, conflicts, starts, settled, ends, tries + 1)
        return
    rows = {record.task.task_id: record for record in records}
    waiting = engine.batch.dirty
    for start in starts:
        row = rows.get(start.task_id)
        if row is None or start.task_id in waiting:
            continue
        if row.state is TaskState.IN_PROGRESS and row.owner == engine.worker_id and row.attempts == start.attempt:
            running = engine.attempts.running.get(start.task_id)
            if running is None or running.run.attempt != start.attempt:
                launch(engine, start)
    for task_id in settled:
        row, t = rows.get(task_id), engine.state.tasks.get(task_id)
        if row is None or t is None or task_id in waiting or not row.state.is_settled or t.state is not row.state:
            continue
        engine.settled(task_id)
    for task_id, attempt in (ends or {}).items():
        row = rows.get(task_id)
        if row is not None and engine.hooks and taken_over(row, attempt, engine.worker_id):
            notify(engine.hooks, "on_attempt_lost", task_id, attempt, row)


def try_after_commit(chore: Callable[..., Any], *args: Any) -> None:
    """A read after a commit that may fail (the database is busy): logged; the next poll catches up."""
    try:
        chore(*args)
    except StoreError as exc:  # the database is away for a moment (or refuses): no traceback for that
        log.warning("%s after a commit failed (%s); the next poll of the database catches up", chore.__name__, exc)
    except Exception:
        log.exception("%s after a commit failed; the next poll of the database catches up", chore.__name__)
