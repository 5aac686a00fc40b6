"""What the next group commit will write, and what waits for it to be durable."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pepper.engine.live import LiveTask
from pepper.model.events import RecordAttempt, RecordError, Start
from pepper.model.lease import Lease
from pepper.model.record import TaskRecord, stored_values
from pepper.model.slots import new_tuple
from pepper.model.task import Task, TaskState
from pepper.model.workflow_run import RunRecord
from pepper.store.protocol import NewRun, RunEnd, TaskSave, WriteSet

_PENDING, _IN_PROGRESS = TaskState.PENDING, TaskState.IN_PROGRESS


class Batch:
    """Changes gathered during one turn of the loop, committed together.

    Saves are kept per task, so a task changed several times in one turn is
    written once, in its latest state. Starts, wake-ups of waiters and
    submitters' acknowledgements happen only after the commit.
    """

    __slots__ = (
        "attempts", "committed", "dirty", "ends", "errors", "finals", "lease_drops", "lease_takes", "run_ends",
        "runs", "settled", "starts", "submissions",
    )  # fmt: skip

    def __init__(self) -> None:
        self.submissions: list[tuple[list[Task], asyncio.Future[Any]]] = []
        self.dirty: dict[str, None] = {}
        self.attempts: list[RecordAttempt] = []
        self.errors: list[RecordError] = []
        self.starts: list[Start] = []
        self.settled: list[str] = []
        self.committed: list[asyncio.Future[None]] = []
        self.lease_takes: list[tuple[Lease, int]] = []  # with the attempt whose claim it belongs to
        self.lease_drops: list[str] = []
        self.runs: list[tuple[RunRecord, list[Task]]] = []  # a new run, with the submission group of its first steps
        self.finals: list[TaskRecord] = []  # tasks stored final from the start
        self.run_ends: list[RunEnd] = []
        self.ends: dict[str, int] = {}  # task -> its attempt of this engine that ended (kept only for hooks)

    def __bool__(self) -> bool:
        return bool(
            self.submissions or self.dirty or self.attempts or self.starts or self.settled or self.committed
            or self.lease_takes or self.lease_drops or self.errors or self.runs or self.finals or self.run_ends
        )  # fmt: skip

    def absorb(self, newer: Batch) -> None:
        """Append a later batch to this one (used when a commit must be retried)."""
        self.submissions += newer.submissions
        self.dirty.update(newer.dirty)
        self.attempts += newer.attempts
        self.errors += newer.errors
        self.starts += newer.starts
        self.settled += newer.settled
        self.committed += newer.committed
        self.lease_takes += newer.lease_takes
        self.lease_drops += newer.lease_drops
        self.runs += newer.runs
        self.finals += newer.finals
        self.run_ends += newer.run_ends
        self.ends.update(newer.ends)

    def split(self) -> list[tuple[str | None, Batch]]:
        """The batch cut into items that can be stored on their own: each submission, each task's changes
        (its row, history, lease and start together), each lease release; paired with the task id, if any.

        Used to find the one item a store refuses; ``committed`` futures are left to the caller.
        """
        parts: list[tuple[str | None, Batch]] = []
        for submission in self.submissions:
            part = Batch()
            part.submissions.append(submission)
            part.runs += [run for run in self.runs if run[1] is submission[0]]
            parts.append((None, part))
        for run_end in self.run_ends:
            part = Batch()
            part.run_ends.append(run_end)
            parts.append((None, part))
        per_task: dict[str, Batch] = {}

        def of(task_id: str) -> Batch:
            part = per_task.get(task_id)
            if part is None:
                part = per_task[task_id] = Batch()
            return part

        for task_id in self.dirty:
            of(task_id).dirty[task_id] = None
        for attempt in self.attempts:
            of(attempt.task_id).attempts.append(attempt)
        for error in self.errors:
            of(error.task_id).errors.append(error)
        for start in self.starts:
            of(start.task_id).starts.append(start)
        for task_id in self.settled:
            of(task_id).settled.append(task_id)
        for task_id, number in self.ends.items():
            of(task_id).ends[task_id] = number
        for record in self.finals:
            of(record.task.task_id).finals.append(record)
        for lease_id in self.lease_drops:  # releases first: a new claim may reuse nothing they free
            part = Batch()
            part.lease_drops.append(lease_id)
            parts.append((None, part))
        for take in self.lease_takes:
            if take[0].task_id is not None:
                of(take[0].task_id).lease_takes.append(take)
        parts += per_task.items()
        return parts

    def writes(self, tasks: Mapping[str, LiveTask], versions: Mapping[str, int], writer: str) -> WriteSet:
        """The ``WriteSet`` for the store; tasks are read in their current state, over the version last stored."""
        saves = [
            new_tuple(TaskSave, (tasks[tid].task, versions[tid], stored_values(tasks[tid])))
            for tid in self.dirty
            if tid in tasks
        ]
        runs: list[NewRun] = []
        if self.runs:
            groups = {id(group): index for index, (group, _) in enumerate(self.submissions)}
            runs = [NewRun(record, groups[id(group)]) for record, group in self.runs]
        return WriteSet(  # (the batch's own lists: the store only reads them, before this batch changes again)
            submissions=[group for group, _ in self.submissions] if self.submissions else [],
            runs=runs,
            finals=self.finals,
            run_ends=self.run_ends,
            saves=saves,
            attempts=self.attempts,
            errors=self.errors,
            lease_takes=self._standing_takes(tasks, writer) if self.lease_takes else [],
            lease_drops=self.lease_drops,
            needs=self.needs(tasks),
        )

    def needs(self, tasks: Mapping[str, LiveTask]) -> dict[str, tuple[str, ...]]:
        """The saves of this batch that stand only with the saves of their dependencies in it: a dependent released
        (and perhaps claimed) on ends of this very batch must not be stored ready if one of those ends loses to
        another process's write (its worker was presumed dead, and the task queued again): it would run on a
        result that is not kept."""
        dirty = self.dirty
        needs: dict[str, tuple[str, ...]] = {}
        for task_id in dirty:
            t = tasks.get(task_id)
            if t is None or (t.state is not _PENDING and t.state is not _IN_PROGRESS) or not t.task.dependencies:
                continue  # (it waits, or it ended: no release of this batch is written with it)
            needed: tuple[str, ...] = ()
            for dep in t.task.dependencies:
                if dep in dirty:
                    needed += (dep,)
            if needed:
                needs[task_id] = needed
        return needs

    def released_on_lost_ends(
        self, tasks: Mapping[str, LiveTask], versions: Mapping[str, int], records: Sequence[TaskRecord]
    ) -> set[str]:
        """The tasks of this batch released (and perhaps claimed) on completions of it that ``records``, rows
        another process wrote since, replace: those releases must not be written either; the tasks' own rows are
        to be read back with these (they wait for the end the rows tell, as after a commit that lost)."""
        dirty = self.dirty
        lost = set()
        for record in records:
            task_id = record.task.task_id
            held = tasks.get(task_id)
            if (held is not None and held.state is TaskState.COMPLETED and record.state is not TaskState.COMPLETED
                    and task_id in dirty and held.task.created_at == record.task.created_at
                    and record.version > versions.get(task_id, 0)):  # fmt: skip
                lost.add(task_id)
        if not lost:
            return set()
        read = {record.task.task_id for record in records}
        return {task_id for task_id in dirty if task_id not in read and (t := tasks.get(task_id)) is not None
                and t.state is not TaskState.BLOCKED and not lost.isdisjoint(t.task.dependencies)}  # fmt: skip

    def drop_starts(self, task_ids: Collection[str]) -> None:
        """Forget the claims of ``task_ids`` this batch holds (their rows were read back): no attempt of theirs
        starts, and no lease of theirs is written, with it."""
        self.starts = [start for start in self.starts if start.task_id not in task_ids]
        self.lease_takes = [take for take in self.lease_takes if take[0].task_id not in task_ids]

    def _standing_takes(self, tasks: Mapping[str, LiveTask], writer: str) -> list[Lease]:
        """The leases of claims that still stand and are written in this batch.

        A claim cancelled, aborted or re-read from another process's row before its batch committed has
        no lease to store: storing it would leak the resources (and a refused lease would drop whatever
        the task's row says now, such as its cancellation).
        """
        dropped = set(self.lease_drops)
        standing = []
        for lease, attempt in self.lease_takes:
            t = tasks.get(lease.task_id)  # type: ignore[arg-type]
            if (t is not None and t.state is TaskState.IN_PROGRESS and t.owner == writer and t.attempts == attempt
                    and lease.task_id in self.dirty and lease.lease_id not in dropped):  # fmt: skip
                standing.append(lease)
        return standing
