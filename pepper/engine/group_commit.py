"""The group commit, and what happens once it is durable.

Everything a loop turn changed is written in one transaction (``commit``, run by ``Engine.flush``).
Only then does ``after_commit`` act on it: versions are counted, submitters acknowledged, claimed attempts
started and the waiters of settled tasks woken; rows another process wrote meanwhile are read back
(``failed_commits.reread``). A batch the store refuses is stored item by item (``commit_apart``), so that
only the refused items fail.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from pepper.engine.batch import Batch
from pepper.engine.budgets import reload_leases
from pepper.engine.failed_commits import refuse, reread, retry_flush, transient, try_after_commit
from pepper.engine.hooks import tell_submitted
from pepper.engine.launch import launch
from pepper.engine.pruned import before_admitting
from pepper.model.events import ClaimRefused, EndsStored, TasksAdded
from pepper.store.protocol import CommitResult

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine")


def commit(engine: Engine, batch: Batch) -> CommitResult:
    """Write ``batch`` in one transaction."""
    writes = batch.writes(engine.state.tasks, engine.versions, engine.worker_id)
    return engine.store.commit(writes, engine.worker_id, engine.clock.now())


def after_commit(engine: Engine, batch: Batch, result: CommitResult) -> None:
    """Act on a durable batch: count versions, acknowledge submitters, start claimed attempts, wake waiters."""
    unwritten = result.conflicts | result.refused.keys() if result.refused else result.conflicts
    for tid in batch.dirty:
        if tid not in unwritten and tid in engine.versions:
            engine.versions[tid] += 1
    if batch.finals:
        finals = [replace(r, version=2) for r in batch.finals if r.task.task_id not in result.present]
        if finals:
            engine.ingest(finals, "task stored final")
    for index, (group, future) in enumerate(batch.submissions):
        for task in group:
            engine.pending.pop(task.task_id, None)
        rejected = result.rejected.get(index)
        if rejected is not None:
            if not future.done():
                future.set_exception(rejected)
            continue
        fresh = tuple(t for t in group if t.task_id not in result.existing)
        if fresh:
            before_admitting(engine, fresh)
        for task in fresh:
            engine.versions[task.task_id] = 1
        if fresh:
            engine.dispatch(TasksAdded(fresh, engine.clock.now(), f"submit:{fresh[0].task_id}"))
            tell_submitted(engine, fresh)
        if not future.done():
            future.set_result(result.existing)
    if result.existing:
        # Stored already, yet unknown here: another process's (the same spec), or this one's own from a
        # commit reported failed that went through; whichever, read them in.
        known = engine.state.tasks
        unknown = {task_id for task_id in result.existing if task_id not in known}
        if unknown:
            reread(engine, unknown, [], [])
    for start in batch.starts:
        if start.task_id not in unwritten:
            launch(engine, start)
    if result.refused:
        now = engine.clock.now()
        for start in batch.starts:
            if start.task_id in result.refused:
                engine.dispatch(ClaimRefused(start.task_id, start.attempt, now, f"refused:{start.task_id}"))
        try_after_commit(reload_leases, engine)
    for task_id in batch.settled:
        if task_id not in result.conflicts:
            engine.settled(task_id)
    unstored = engine.state.cascades_unstored
    if unstored:  # cancels and failures now stored: what depends on them is cancelled next (never in the same commit)
        stored = tuple(task_id for task_id in unstored if task_id in batch.dirty and task_id not in unwritten)
        if stored:
            engine.dispatch(EndsStored(stored, engine.clock.now(), f"stored:end:{stored[0]}"))
    for future in batch.committed:
        if not future.done():
            future.set_result(None)
    if result.conflicts:
        # Someone else wrote these rows: read all they wrote, together, before acting on any of it. Reading
        # only the lost rows would show a dependency completed without the claim of its dependent that
        # came with it, and this engine would claim that dependent too, and lose again, hop after hop.
        if engine.catch_up is not None:
            try_after_commit(engine.catch_up)
        conflicts = result.conflicts
        starts = [start for start in batch.starts if start.task_id in conflicts]
        ends = {task_id: attempt for task_id, attempt in batch.ends.items() if task_id in conflicts}
        reread(engine, conflicts, starts, [task_id for task_id in batch.settled if task_id in conflicts], ends)


def commit_apart(engine: Engine, batch: Batch, exc: Exception) -> None:
    """The store refused the batch: store its items one by one, and fail only the ones it refuses."""
    log.error("commit refused (%s: %s); storing the batch item by item to set the faulty ones apart",
              type(exc).__name__, exc)  # fmt: skip
    needs = batch.needs(engine.state.tasks)
    # the releases after the ends they stand on; one on an end that lost, or that was refused, is not written
    parts = sorted(batch.split(), key=lambda item: item[0] in needs)
    lost: set[str | None] = set()
    for index, (task_id, part) in enumerate(parts):
        if task_id in needs and not lost.isdisjoint(needs[task_id]):
            lost.add(task_id)
            after_commit(engine, part, CommitResult(0, conflicts={task_id}))  # read back, like a save that lost
            continue
        try:
            result = commit(engine, part)
        except Exception as item_exc:  # noqa: BLE001
            if transient(item_exc):  # the database went away meanwhile: keep what is left for later
                rest = Batch()
                for _, later in parts[index:]:
                    rest.absorb(later)
                rest.committed += batch.committed
                retry_flush(engine, rest, item_exc)
                return
            lost.add(task_id)
            refuse(engine, task_id, part, item_exc)
        else:
            lost |= result.conflicts
            after_commit(engine, part, result)
    engine.commit_failures = 0
    for future in batch.committed:
        if not future.done():
            future.set_result(None)
