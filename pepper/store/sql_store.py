"""What pepper's two SQL stores share: the write set applied as one transaction, and every read of tasks.

``SqlStore`` runs the named statements of ``sql/queries.sql`` (the same text on SQLite and PostgreSQL,
with a few statements a database spells its own way); a subclass says how to open a write transaction,
read rows, number a transaction's changes and notice other processes' writes. Write transactions are
serialised across processes on both databases, so a lease grant or a change number never races.

The database's part is in ``sql_database`` (``SqlDatabase``), the reads of tasks in ``task_reads``
(``TaskReads``); ``SqlStore`` adds its logs and the writes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from pepper.errors import DuplicateTaskError
from pepper.model.record import TaskRecord
from pepper.model.submission import Submission, prepare
from pepper.model.task import Task
from pepper.store.alert_states import AlertStateLog
from pepper.store.approvals import ApprovalLog
from pepper.store.errors import ErrorLog
from pepper.store.feedback import AttemptLog, FeedbackLog
from pepper.store.leases import AlertLog, LeaseLedger, UsageLog
from pepper.store.params import attempt_params, error_params, insert_params, save_params
from pepper.store.protocol import CommitResult, SubmissionGroup, TaskSave, WriteSet
from pepper.store.retention import Pruner
from pepper.store.runs import RunLog
from pepper.store.saves import Groups, NarrowSaves
from pepper.store.schedules import ScheduleLog
from pepper.store.sql_database import Connection, Cursor, SqlDatabase, chunks
from pepper.store.task_logs import TaskLogStore
from pepper.store.task_reads import TaskReads
from pepper.store.tokens import TokenLog
from pepper.store.workers import WorkerRegistry

__all__ = ["Connection", "Cursor", "SqlDatabase", "SqlStore", "StoredTaskView", "TaskReads", "chunks"]


class _Unfounded(Exception):
    """Saves of a commit that stand only with others that were conflicts (``WriteSet.needs``): the transaction
    is rolled back, and written again without them."""

    def __init__(self, task_ids: set[str]) -> None:
        super().__init__(f"{len(task_ids)} saves lost what they stood on")
        self.task_ids = task_ids


class StoredTaskView:
    """``StoredTasks`` (see model.submission) answered from the database."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        return {tid: rec.task for tid, rec in self._store.get_tasks(task_ids).items()}

    def awaited(self, task_ids: Collection[str]) -> bool:
        return self._store.awaited(task_ids)

    def deps_of(self, task_id: str) -> Iterable[str]:
        record = self._store.get_tasks([task_id]).get(task_id)
        return record.task.dependencies if record else ()

    def runs_among(self, run_ids: Collection[str]) -> Collection[str]:
        return self._store.runs.among(run_ids)


class _Ready(NamedTuple):
    """A commit's rows made ready before its transaction: its task saves (by statement) and its attempts."""

    saves: Groups
    attempts: list[tuple[Any, ...]]


class SqlStore(TaskReads):
    """The ``Store`` protocol over named SQL statements; subclasses bring the database."""

    def __init__(self, statements: Mapping[str, str]) -> None:
        super().__init__(statements)
        self.workers = WorkerRegistry(self)
        self.leases = LeaseLedger(self)
        self.usage = UsageLog(self)
        self.alerts = AlertLog(self)
        self.feedback = FeedbackLog(self)
        self.history = AttemptLog(self)
        self.runs = RunLog(self)
        self.errors = ErrorLog(self)
        self.tokens = TokenLog(self)
        self.schedules = ScheduleLog(self)
        self.approvals = ApprovalLog(self)
        self.logs = TaskLogStore(self)
        self.alert_states = AlertStateLog(self)
        self.narrow = NarrowSaves(self, self._q)
        self._pruned_listeners: list[Callable[[Sequence[tuple[str, float]]], None]] = []

    def prune(self, horizon: float, *, dry_run: bool = False) -> dict[str, int]:
        """Remove finished work that ended before ``horizon`` (see ``store.retention``); counts by kind. The
        space is given back afterwards, unless it was a dry run or nothing went. Whoever listens
        (``on_pruned``) is told which tasks were deleted, once they are."""
        pruner = Pruner(self)
        counts = pruner.prune(horizon, dry_run=dry_run)
        if pruner.removed:
            self.narrow.forget(task_id for task_id, _ in pruner.removed)
            for listener in list(self._pruned_listeners):
                listener(pruner.removed)
        if not dry_run and any(counts.values()):
            self.reclaim_space()
        return counts

    def on_pruned(self, listener: Callable[[Sequence[tuple[str, float]]], None]) -> Callable[[], None]:
        """Have ``listener`` called (on the thread that pruned) with the tasks each prune through this store
        deletes, as ``(id, created_at)``; returns the way to stop."""
        self._pruned_listeners.append(listener)

        def stop() -> None:
            if listener in self._pruned_listeners:
                self._pruned_listeners.remove(listener)

        return stop

    def forget_written(self, task_ids: Collection[str]) -> None:
        self.narrow.forget(task_ids)

    # -- writes -----------------------------------------------------------------------

    def commit(self, writes: WriteSet, writer: str, now: float = 0.0) -> CommitResult:
        """Apply ``writes`` in one transaction (group commit); ``now`` decides which leases still count.

        Raises ``StoreBusyError`` when the same writes may pass later, ``WriteRefusedError`` when they will not.
        """
        # the rows are made ready before the transaction: the write lock is held for the writing only
        rows = [save_params(save, writer) for save in writes.saves]
        attempts = writes.attempts
        ready = _Ready(
            self.narrow.groups(writes.saves, rows),
            self.prepare_rows("record_attempt", [attempt_params(a, writer) for a in attempts]) if attempts else [],
        )
        try:
            with self.write_transaction() as conn:
                result = self._commit_in(conn, writes, writer, now, ready)
        except _Unfounded as unfounded:  # rolled back: written again without the saves that lost their ground
            return self._commit_without(writes, unfounded.task_ids, writer, now)
        if rows:
            unwritten = result.conflicts | result.refused.keys() if result.refused else result.conflicts
            self.narrow.remember(writes.saves, rows, unwritten)
        return result

    def _commit_in(self, conn: Connection, writes: WriteSet, writer: str, now: float, ready: _Ready) -> CommitResult:
        q = self._q
        result = CommitResult(self.begin_change(conn))
        for index, group in enumerate(writes.submissions):
            self._submit_group(conn, index, group, writer, result)
        if writes.runs:  # a run is stored with its first steps, or not at all
            self.runs.insert_in(conn, [run.record for run in writes.runs if run.group not in result.rejected])
        if writes.finals:
            result.present = self.runs.finals_in(conn, writes.finals, writer)
        saves = writes.saves
        if writes.lease_drops:
            self.leases.release_in(conn, writes.lease_drops, now)
        takes = writes.lease_takes
        refused: dict[str, dict[str, float]] = {}
        if takes:
            refused = self.leases.refused_in(conn, takes, now)
            for lease in takes:
                if lease.lease_id in refused and lease.task_id is not None:
                    result.refused[lease.task_id] = refused[lease.lease_id]
            if result.refused:  # a claim whose lease was refused is not written
                saves = [save for save in saves if save.task.task_id not in result.refused]
                ready = _Ready(self.narrow.groups(saves, [save_params(s, writer) for s in saves]), ready.attempts)
        if saves and sum(self.write_rows(conn, name, rows) for name, rows in ready.saves) != len(saves):
            ids = [save.task.task_id for save in saves]
            result.conflicts = set(ids) - self._written(conn, ids, writer)
            if writes.needs:
                lost = result.conflicts
                unfounded = {task_id for task_id, needed in writes.needs.items()
                             if task_id not in lost and not lost.isdisjoint(needed)}  # fmt: skip
                if unfounded:
                    raise _Unfounded(unfounded)
        if takes or writes.attempts or writes.errors:
            saved = {save.task.task_id for save in saves} - result.conflicts
            if takes:  # only claims written here take their lease (a lost claim holds nothing)
                self.leases.insert_in(
                    conn, [lease for lease in takes if lease.lease_id not in refused and lease.task_id in saved]
                )
            # history is kept only beside a write of its task that went through
            if writes.attempts:
                if all(a.task_id in saved for a in writes.attempts):
                    self.write_rows(conn, "record_attempt", ready.attempts)
                else:
                    attempts = [attempt_params(a, writer) for a in writes.attempts if a.task_id in saved]
                    if attempts:
                        self.write_rows(conn, "record_attempt", attempts)
            errors = [e for e in writes.errors if e.task_id in saved]
            if errors:
                conn.executemany(q["record_error"], [error_params(e, writer) for e in errors])
        if writes.run_ends:
            self.runs.finish_in(conn, writes.run_ends)
        return result

    def _commit_without(self, writes: WriteSet, unfounded: set[str], writer: str, now: float) -> CommitResult:
        """``commit`` of ``writes`` less the saves (and leases, history) of ``unfounded``: claims made on ends that
        lost to another process's writes. They are reported as conflicts, to be read back."""
        kept = replace(
            writes,
            saves=[save for save in writes.saves if save.task.task_id not in unfounded],
            lease_takes=[lease for lease in writes.lease_takes if lease.task_id not in unfounded],
            attempts=[a for a in writes.attempts if a.task_id not in unfounded],
            errors=[e for e in writes.errors if e.task_id not in unfounded],
            needs={task_id: needed for task_id, needed in writes.needs.items() if task_id not in unfounded},
        )
        result = self.commit(kept, writer, now)
        result.conflicts = result.conflicts | unfounded
        return result

    def insert_tasks(self, conn: Connection, tasks: Sequence[Task], writer: str) -> set[str]:
        """Within an open write transaction: the one way tasks enter the ``tasks`` table. Returns the ids that
        were already stored (those rows are left as they are)."""
        if self.write_rows(conn, "insert_task", [insert_params(t, writer) for t in tasks]) == len(tasks):
            return set()
        ids = [t.task_id for t in tasks]
        return set(ids) - self._written(conn, ids, writer)

    def save_in(self, conn: Connection, saves: Sequence[TaskSave], writer: str) -> int:
        """Within an open write transaction: write task rows over their expected versions; rows written."""
        self.narrow.forget([save.task.task_id for save in saves])
        return self.write_rows(conn, "save_task", [save_params(save, writer) for save in saves])

    def _submit_group(
        self, conn: Connection, index: int, group: SubmissionGroup, writer: str, result: CommitResult
    ) -> None:
        conn.execute("SAVEPOINT submission")
        clashing = self.insert_tasks(conn, group, writer)
        if clashing:
            stored = self._read_in(conn, sorted(clashing))
            for task in group:
                if task.task_id not in clashing:
                    continue
                diffs = stored[task.task_id].task.spec_differences(task)
                if diffs:
                    conn.execute("ROLLBACK TO SAVEPOINT submission")
                    result.rejected[index] = DuplicateTaskError(task.task_id, diffs)
                    break
                result.existing[task.task_id] = stored[task.task_id].task
        conn.execute("RELEASE SAVEPOINT submission")

    def _read_in(self, conn: Connection, ids: Sequence[str]) -> dict[str, TaskRecord]:
        found: dict[str, TaskRecord] = {}
        for chunk in chunks(ids):
            for row in conn.execute(self.expand(self._q["tasks_by_id"], len(chunk)), chunk):
                found[row["task_id"]] = TaskRecord.from_row(row)
        return found

    def _written(self, conn: Connection, ids: Sequence[str], writer: str) -> set[str]:
        written: set[str] = set()
        for chunk in chunks(ids):
            sql = self.expand(self._q["written_in_this_transaction"], len(chunk))
            written.update(row[0] for row in conn.execute(sql, (*chunk, writer)))
        return written

    def submit(self, tasks: Sequence[Task], writer: str) -> Submission:
        """Check and store new tasks in one transaction (used when no engine runs here)."""
        with self.transaction() as conn:
            return self.submit_in(conn, tasks, writer)

    def submit_in(self, conn: Connection, tasks: Sequence[Task], writer: str) -> Submission:
        """Within an open write transaction: check new tasks against the stored ones and store them."""
        submission = prepare(tasks, StoredTaskView(self), self.leases.largest() or None)
        self.begin_change(conn)
        self.insert_tasks(conn, submission.new, writer)
        return submission

    def set_placements(self, placements: Mapping[str, str | None], writer: str) -> int:
        """Place waiting tasks on agents (as a workload plan decided); tasks already running are left alone."""
        with self.transaction() as conn:
            self.begin_change(conn)
            rows = [(agent, writer, task_id) for task_id, agent in placements.items()]
            return int(conn.executemany(self._q["set_placement"], rows).rowcount)
