"""The SQLite store (``Store``, see store.protocol): the only place pepper runs SQL against its tasks.

One connection guarded by a lock, WAL mode, short ``BEGIN IMMEDIATE``
transactions. Writes arrive as a ``WriteSet`` (everything an engine changed
since its last commit) and go in as one transaction: group commit. The typed
records of the write set become statement parameters (``store.params``), and SQLite's
exceptions become ``StoreBusyError`` or ``WriteRefusedError``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pepper.errors import DuplicateTaskError
from pepper.model import codec
from pepper.model.record import TaskRecord
from pepper.model.recovery import RecoveryState
from pepper.model.requirements import Requirements
from pepper.model.submission import Submission, prepare
from pepper.model.task import Task, TaskState
from pepper.store.connection import connect, damaged, expand, migrate, queries, transaction
from pepper.store.errors import ErrorLog
from pepper.store.feedback import AttemptLog, FeedbackLog
from pepper.store.leases import AlertLog, LeaseLedger, UsageLog
from pepper.store.params import attempt_params, error_params, insert_params, save_params, typed_errors
from pepper.store.protocol import CommitResult, SubmissionGroup, TaskSave, WriteSet
from pepper.store.runs import RunLog
from pepper.store.workers import WorkerRegistry

_CHUNK = 500  # ids per IN (...) list; SQLite allows 32766 parameters


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StoredTaskView:
    """``StoredTasks`` (see model.submission) answered from the database."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        return {tid: rec.task for tid, rec in self._store.get_tasks(task_ids).items()}

    def awaited(self, task_ids: Collection[str]) -> bool:
        return self._store.awaited(task_ids)

    def deps_of(self, task_id: str) -> Iterable[str]:
        record = self._store.get_tasks([task_id]).get(task_id)
        return record.task.dependencies if record else ()


class SQLiteStore:
    """Durable state in one SQLite file (or ``:memory:``)."""

    def __init__(
        self, path: str, *, busy_timeout: float = 10.0, synchronous: str = "normal", create: bool = True
    ) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = connect(
            path, busy_timeout=busy_timeout, synchronous=synchronous, create=create
        )
        self._q = queries()
        migrate(self._conn)
        self._conn.execute(self._q["create_tx_table"])
        self._conn.execute(self._q["init_tx_seq"])
        self.workers = WorkerRegistry(self)
        self.leases = LeaseLedger(self)
        self.usage = UsageLog(self)
        self.alerts = AlertLog(self)
        self.feedback = FeedbackLog(self)
        self.history = AttemptLog(self)
        self.runs = RunLog(self)
        self.errors = ErrorLog(self)

    # -- plumbing ---------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return self._conn

    def probe_write(self) -> str | None:
        """Try to take the write lock (and let it go at once): None if the database is writable, else why not."""
        try:
            with self.lock:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            return str(exc)
        return None

    def file_sizes_mb(self) -> tuple[float | None, float | None]:
        """The database file's size and its write-ahead log's, in MB (None for ``:memory:`` or a missing file)."""
        if self.path == ":memory:":
            return None, None
        sizes: list[float | None] = []
        for suffix in ("", "-wal"):
            try:
                sizes.append(os.path.getsize(self.path + suffix) / 2**20)
            except OSError:
                sizes.append(0.0 if suffix else None)
        return sizes[0], sizes[1]

    def statement(self, name: str) -> str:
        """The SQL of a named query (for the store's helpers that write inside their own transaction)."""
        return self._q[name]

    @contextmanager
    def checked(self) -> Iterator[None]:
        """Turn SQLite's word that the file is damaged into ``DatabaseDamagedError`` (naming the file)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = damaged(exc, self.path)
            if error is None:
                raise
            raise error from None

    def query(self, name: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of the named query."""
        with self.checked(), self.lock:
            return self.conn.execute(self._q[name], params).fetchall()

    def execute(self, name: str, params: Sequence[Any] = ()) -> int:
        """Run a named write in its own transaction; the number of rows changed."""
        with self.checked(), self.lock, transaction(self.conn):
            return self.conn.execute(self._q[name], params).rowcount

    def write_returning(self, name: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a named ``... RETURNING`` write in its own transaction; the rows it returned."""
        with self.checked(), self.lock, transaction(self.conn) as conn:
            return conn.execute(self._q[name], params).fetchall()

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                try:
                    if self.path != ":memory:":
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    self._conn.close()
                    self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def data_version(self) -> int:
        """Changes when another connection commits (cheap check before polling)."""
        with self.lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    # -- writes -----------------------------------------------------------------------

    def commit(self, writes: WriteSet, writer: str, now: float = 0.0) -> CommitResult:
        """Apply ``writes`` in one transaction (group commit); ``now`` decides which leases still count.

        Raises ``StoreBusyError`` when the same writes may pass later, ``WriteRefusedError`` when they will not.
        """
        with typed_errors(), self.lock, transaction(self.conn) as conn:
            return self._commit_in(conn, writes, writer, now)

    def _commit_in(self, conn: sqlite3.Connection, writes: WriteSet, writer: str, now: float) -> CommitResult:
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
        if saves:
            cursor = conn.executemany(q["save_task"], [save_params(save, writer) for save in saves])
            if cursor.rowcount != len(saves):
                ids = [save.task.task_id for save in saves]
                result.conflicts = set(ids) - self._written(conn, ids, writer)
        if takes:  # only claims written here take their lease (a lost claim holds nothing)
            written = {save.task.task_id for save in saves} - result.conflicts
            self.leases.insert_in(
                conn, [lease for lease in takes if lease.lease_id not in refused and lease.task_id in written]
            )
        if writes.attempts:
            conn.executemany(q["record_attempt"], [attempt_params(a, writer) for a in writes.attempts])
        if writes.errors:
            conn.executemany(q["record_error"], [error_params(e, writer) for e in writes.errors])
        if writes.run_ends:
            self.runs.finish_in(conn, writes.run_ends)
        return result

    def begin_change(self, conn: sqlite3.Connection) -> int:
        """Number this write transaction (called right after BEGIN IMMEDIATE)."""
        seq = int(conn.execute(self._q["next_change_seq"]).fetchone()[0])
        conn.execute(self._q["set_tx_seq"], (seq,))
        return seq

    def insert_tasks(self, conn: sqlite3.Connection, tasks: Sequence[Task], writer: str) -> set[str]:
        """Within an open write transaction: the one way tasks enter the ``tasks`` table. Returns the ids that
        were already stored (those rows are left as they are)."""
        cursor = conn.executemany(self._q["insert_task"], [insert_params(t, writer) for t in tasks])
        if cursor.rowcount == len(tasks):
            return set()
        ids = [t.task_id for t in tasks]
        return set(ids) - self._written(conn, ids, writer)

    def save_in(self, conn: sqlite3.Connection, saves: Sequence[TaskSave], writer: str) -> int:
        """Within an open write transaction: write task rows over their expected versions; rows written."""
        return conn.executemany(self._q["save_task"], [save_params(save, writer) for save in saves]).rowcount

    def _submit_group(
        self, conn: sqlite3.Connection, index: int, group: SubmissionGroup, writer: str, result: CommitResult
    ) -> None:
        conn.execute("SAVEPOINT submission")
        clashing = self.insert_tasks(conn, group, writer)
        if clashing:
            stored = self.get_tasks(sorted(clashing))
            for task in group:
                if task.task_id not in clashing:
                    continue
                diffs = stored[task.task_id].task.spec_differences(task)
                if diffs:
                    conn.execute("ROLLBACK TO submission")
                    result.rejected[index] = DuplicateTaskError(task.task_id, diffs)
                    break
                result.existing[task.task_id] = stored[task.task_id].task
        conn.execute("RELEASE submission")

    def _written(self, conn: sqlite3.Connection, ids: Sequence[str], writer: str) -> set[str]:
        written: set[str] = set()
        for chunk in _chunks(ids):
            sql = expand(self._q["written_in_this_transaction"], len(chunk))
            written.update(row[0] for row in conn.execute(sql, (*chunk, writer)))
        return written

    def submit(self, tasks: Sequence[Task], writer: str) -> Submission:
        """Check and store new tasks in one transaction (used when no engine runs here)."""
        with self.lock, transaction(self.conn) as conn:
            return self.submit_in(conn, tasks, writer)

    def submit_in(self, conn: sqlite3.Connection, tasks: Sequence[Task], writer: str) -> Submission:
        """Within an open write transaction: check new tasks against the stored ones and store them."""
        submission = prepare(tasks, StoredTaskView(self), self.leases.largest() or None)
        self.begin_change(conn)
        self.insert_tasks(conn, submission.new, writer)
        return submission

    def set_placements(self, placements: Mapping[str, str | None], writer: str) -> int:
        """Place waiting tasks on agents (as a workload plan decided); tasks already running are left alone."""
        with self.lock, transaction(self.conn) as conn:
            self.begin_change(conn)
            rows = [(agent, writer, task_id) for task_id, agent in placements.items()]
            return conn.executemany(self._q["set_placement"], rows).rowcount

    # -- reads ------------------------------------------------------------------------

    def get_tasks(self, task_ids: Collection[str]) -> dict[str, TaskRecord]:
        """The stored records among ``task_ids`` (unknown ids are left out)."""
        ids = [tid for tid in task_ids if tid.isascii() or _valid_text(tid)]  # others cannot have been stored
        found: dict[str, TaskRecord] = {}
        with self.checked(), self.lock:
            for chunk in _chunks(ids):
                sql = expand(self._q["tasks_by_id"], len(chunk))
                for row in self.conn.execute(sql, chunk):
                    found[row["task_id"]] = TaskRecord.from_row(row)
        return found

    def unfinished(self) -> list[TaskRecord]:
        """Every task not yet completed, failed or cancelled, oldest first."""
        return [TaskRecord.from_row(r) for r in self.query("unfinished_tasks")]

    def changes_since(self, change_seq: int, writer: str) -> tuple[list[TaskRecord], int]:
        """Tasks written by others after ``change_seq``, and the counter's value now."""
        with self.lock:
            now = self.conn.execute(self._q["current_change_seq"]).fetchone()[0]
            rows = self.conn.execute(self._q["changed_tasks"], (change_seq, writer)).fetchall()
        return [TaskRecord.from_row(r) for r in rows], now

    def current_change_seq(self) -> int:
        return int(self.query("current_change_seq")[0][0])

    def list_tasks(self, state: TaskState | None = None, limit: int = 1000) -> list[TaskRecord]:
        """Most recently submitted first."""
        if state is None:
            rows = self.query("list_tasks", (limit,))
        else:
            rows = self.query("list_tasks_in_state", (state.value, limit))
        return [TaskRecord.from_row(r) for r in rows]

    def counts_by_state_and_type(self) -> list[tuple[str, str, int]]:
        return [(r["state"], r["task_type"], r["n"]) for r in self.query("count_by_state_and_type")]

    def count_by_state(self) -> dict[str, int]:
        return {row["state"]: row["n"] for row in self.query("count_by_state")}

    def awaited(self, task_ids: Collection[str]) -> bool:
        """True if a blocked task lists one of ``task_ids`` among its dependencies."""
        ids = list(task_ids)
        with self.lock:
            for chunk in _chunks(ids):
                sql = expand(self._q["awaited_by_blocked"], len(chunk))
                if self.conn.execute(sql, chunk).fetchone():
                    return True
        return False

    def blocked_dependents(self, task_ids: Collection[str]) -> list[TaskRecord]:
        """The blocked tasks that list one of ``task_ids`` among their dependencies."""
        found: dict[str, TaskRecord] = {}
        with self.checked(), self.lock:
            for chunk in _chunks(list(task_ids)):
                sql = expand(self._q["blocked_dependents"], len(chunk))
                for row in self.conn.execute(sql, chunk):
                    found[row["task_id"]] = TaskRecord.from_row(row)
        return list(found.values())

    def ready_ahead(
        self, task_id: str, key: float, rate: float, now: float
    ) -> list[tuple[str, str | None, frozenset[str], int]]:
        """``(task type, pinned agent, skills, how many)`` of the ready tasks served before ``task_id``, whose
        ageing key (``rate * ready time - priority``) is ``key``: one row per route, not per task."""
        with self.checked(), self.lock:
            row = self.conn.execute(self._q["task_seq"], (task_id,)).fetchone()
            if row is None:
                return []
            params = {"now": now, "task_id": task_id, "rate": rate, "key": key, "seq": row["seq"]}
            rows = self.conn.execute(self._q["ready_ahead_routes"], params).fetchall()
        return [
            (r["task_type"], r["placement"] or r["agent"], Requirements.parse(codec.decode(r["requirements"])).skills,
             r["n"])
            for r in rows
        ]  # fmt: skip

    def ready_tasks(self, now: float) -> list[TaskRecord]:
        """Tasks waiting for an agent (pending, not waiting out a retry back-off), in submission order."""
        return [TaskRecord.from_row(r) for r in self.query("ready_tasks", (now,))]

    def ready_routes(self, now: float) -> list[tuple[str, str | None, frozenset[str], int]]:
        """``(task type it runs as, pinned agent, skills, how many)`` of the tasks waiting for an agent."""
        out = []
        for r in self.query("ready_routes", (now,)):
            recovery = RecoveryState.from_data(codec.decode(r["recovery"]))
            skills = Requirements.parse(codec.decode(r["requirements"])).skills
            out.append((recovery.run_as or r["task_type"], r["placement"] or r["agent"], skills, r["n"]))
        return out

    def unfinished_count(self) -> int:
        """Tasks not yet ended, parked ones left out."""
        return int(self.query("unfinished_count")[0][0])

    def running_tasks(self) -> list[tuple[str, str, float]]:
        """``(agent_id, task_type, started_at)`` of every running task."""
        return [(r["agent_id"], r["task_type"], r["started_at"]) for r in self.query("running_tasks")]

    def running_by_agent(self) -> dict[str, int]:
        return {row["agent_id"]: row["n"] for row in self.query("running_by_agent")}

    def attempts(self, task_id: str) -> list[dict[str, Any]]:
        """Every ended attempt of a task, first to last."""
        return [dict(row) for row in self.query("attempts_of_task", (task_id,))]
