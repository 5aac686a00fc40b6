"""What pepper's two SQL stores share: the write set applied as one transaction, and every read of tasks.

``SqlStore`` runs the named statements of ``sql/queries.sql`` (the same text on SQLite and PostgreSQL,
with a few statements a database spells its own way); a subclass says how to open a write transaction,
read rows, number a transaction's changes and notice other processes' writes. Write transactions are
serialised across processes on both databases, so a lease grant or a change number never races.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

from pepper.errors import DuplicateTaskError
from pepper.model import codec
from pepper.model.record import TaskRecord
from pepper.model.recovery import RecoveryState
from pepper.model.requirements import Requirements
from pepper.model.submission import Submission, prepare
from pepper.model.task import Task, TaskState
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
from pepper.store.task_logs import TaskLogStore
from pepper.store.tokens import TokenLog
from pepper.store.workers import WorkerRegistry

_CHUNK = 500  # ids per IN (...) list, well under either database's limit on parameters


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Cursor(Protocol):
    """What pepper reads from a statement it ran (sqlite3's and psycopg's cursors both have it)."""

    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside an open write transaction."""

    def execute(self, sql: str, params: Any = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Any]) -> Cursor: ...


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


class _Ready(NamedTuple):
    """A commit's rows made ready before its transaction: its task saves (by statement) and its attempts."""

    saves: Groups
    attempts: list[tuple[Any, ...]]


class SqlStore:
    """The ``Store`` protocol over named SQL statements; subclasses bring the database."""

    #: a short name for people: "SQLite", "PostgreSQL"
    kind = "SQL"

    def __init__(self, statements: Mapping[str, str]) -> None:
        self._q = dict(statements)
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

    # -- what a database brings ---------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction, serialised with every other writer of the database (all processes)."""
        raise NotImplementedError

    def fetch(self, sql: str, params: Any = ()) -> list[Any]:
        """Rows of one read statement, outside any write transaction."""
        raise NotImplementedError

    def begin_change(self, conn: Connection) -> int:
        """Number this write transaction's task changes (called first thing in it)."""
        raise NotImplementedError

    def typed_errors(self) -> AbstractContextManager[None]:
        """The database's exceptions as ``StoreBusyError`` (may pass later) or ``WriteRefusedError`` (will not)."""
        raise NotImplementedError

    def expand(self, sql: str, count: int) -> str:
        """``sql`` with its ``{ids}`` marker replaced by ``count`` placeholders."""
        raise NotImplementedError

    def data_version(self) -> int:
        """Changes when another process commits (cheap check before polling)."""
        raise NotImplementedError

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Have ``callback`` called (from any thread) soon after another process commits; returns the way to
        stop. None: this database does not tell (SQLite), so callers poll ``data_version``."""
        return None

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def probe_write(self) -> str | None:
        """Take the write lock and let it go at once: None if the database takes writes, else why not."""
        raise NotImplementedError

    def file_sizes_mb(self) -> tuple[float | None, float | None]:
        """The database's size and its write-ahead log's in MB, where the database has such figures."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def reclaim_space(self) -> None:
        """Give the space of deleted rows back (after a prune): to the file system, or for reuse."""
        raise NotImplementedError

    def prune(self, horizon: float, *, dry_run: bool = False) -> dict[str, int]:
        """Remove finished work that ended before ``horizon`` (see ``store.retention``); counts by kind. The
        space is given back afterwards, unless it was a dry run or nothing went."""
        counts = Pruner(self).prune(horizon, dry_run=dry_run)
        if not dry_run and any(counts.values()):
            self.reclaim_space()
        return counts

    def write_rows(self, conn: Connection, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Within an open write transaction: run a named write once per row; the number of rows it changed."""
        return int(conn.executemany(self._q[name], rows).rowcount)

    def prepare_rows(self, name: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows of a later ``write_rows`` of ``name``, made ready before its transaction begins (so that a
        database whose writers take turns holds its turn for the writing alone); as they are, by default."""
        return rows

    def shaped_bulk(self, bulk: str, keep: Sequence[int]) -> str | None:
        """``bulk`` (a ``save_task_bulk``) taking only the parameters at ``keep``; None: this database has none."""
        return None

    # -- named statements ---------------------------------------------------------------

    @property
    def statements(self) -> Mapping[str, str]:
        """Every named statement, as this database runs it."""
        return self._q

    def statement(self, name: str) -> str:
        """The SQL of a named statement (for helpers that write inside their own transaction)."""
        return self._q[name]

    def query(self, name: str, params: Any = ()) -> list[Any]:
        """Rows of the named query."""
        return self.fetch(self._q[name], params)

    def execute(self, name: str, params: Sequence[Any] = ()) -> int:
        """Run a named write in its own transaction; the number of rows changed."""
        with self.transaction() as conn:
            return int(conn.execute(self._q[name], params).rowcount)

    def write_alone(self, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run a named write once per row, on rows that only their writer touches and that no other process waits
        to hear of (a heartbeat, a usage sample): a database whose writers take turns lets it skip the turn. The
        number of rows changed."""
        with self.transaction() as conn:
            return int(conn.executemany(self._q[name], rows).rowcount)

    def write_returning(self, name: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a named ``... RETURNING`` write in its own transaction; the rows it returned."""
        with self.transaction() as conn:
            return conn.execute(self._q[name], params).fetchall()

    # -- writes -----------------------------------------------------------------------

    def commit(self, writes: WriteSet, writer: str, now: float = 0.0) -> CommitResult:
        """Apply ``writes`` in one transaction (group commit); ``now`` decides which leases still count.

        Raises ``StoreBusyError`` when the same writes may pass later, ``WriteRefusedError`` when they will not.
        """
        # the rows are made ready before the transaction: the write lock is held for the writing only
        rows = [save_params(save, writer) for save in writes.saves]
        ready = _Ready(
            self.narrow.groups(writes.saves, rows),
            self.prepare_rows("record_attempt", [attempt_params(a, writer) for a in writes.attempts]),
        )
        with self.typed_errors(), self.transaction() as conn:
            result = self._commit_in(conn, writes, writer, now, ready)
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

    # -- reads ------------------------------------------------------------------------

    def _records(self, name: str, ids: Collection[str], *extra: Any) -> list[TaskRecord]:
        """Task records of a named query over an ``{ids}`` list, read in chunks."""
        found: dict[str, TaskRecord] = {}
        for chunk in chunks(list(ids)):
            for row in self.fetch(self.expand(self._q[name], len(chunk)), (*chunk, *extra)):
                found[row["task_id"]] = TaskRecord.from_row(row)
        return list(found.values())

    def get_tasks(self, task_ids: Collection[str]) -> dict[str, TaskRecord]:
        """The stored records among ``task_ids`` (unknown ids are left out)."""
        ids = [tid for tid in task_ids if (tid.isascii() or _valid_text(tid)) and "\x00" not in tid]
        return {record.task.task_id: record for record in self._records("tasks_by_id", ids)}

    def unfinished(self) -> list[TaskRecord]:
        """Every task not yet completed, failed or cancelled, oldest first."""
        return [TaskRecord.from_row(r) for r in self.query("unfinished_tasks")]

    def changes_since(
        self, change_seq: int, writer: str, known: Callable[[str], Task | None] | None = None
    ) -> tuple[list[TaskRecord], int]:
        """Tasks written by others after ``change_seq``, and the counter's value now. ``known`` gives the spec of a
        task the caller has already (it is reused, not decoded again: specs never change)."""
        rows = self.query("changed_tasks", (change_seq, writer))
        now = int(rows[0]["change_seq_now"])
        if rows[0]["task_id"] is None:
            return [], now
        if known is None:
            return [TaskRecord.from_row(r) for r in rows], now
        return [TaskRecord.from_row(r, known(r["task_id"])) for r in rows], now

    def current_change_seq(self) -> int:
        return int(self.query("current_change_seq")[0][0])

    def list_tasks(
        self,
        state: TaskState | None = None,
        limit: int = 1000,
        *,
        task_type: str | None = None,
        after: str | None = None,
    ) -> list[TaskRecord]:
        """Most recently submitted first; ``after`` a task id: only the tasks submitted before it (a page's
        cursor)."""
        if task_type is not None or after is not None:
            params = {"state": None if state is None else state.value, "task_type": task_type, "after": after,
                      "limit": limit}  # fmt: skip
            rows = self.query("list_tasks_page", params)
        elif state is None:
            rows = self.query("list_tasks", (limit,))
        else:
            rows = self.query("list_tasks_in_state", (state.value, limit))
        return [TaskRecord.from_row(r) for r in rows]

    def counts_by_state_and_type(self) -> list[tuple[str, str, int]]:
        return [(r["state"], r["task_type"], int(r["n"])) for r in self.query("count_by_state_and_type")]

    def count_by_state(self) -> dict[str, int]:
        return {row["state"]: int(row["n"]) for row in self.query("count_by_state")}

    def awaited(self, task_ids: Collection[str]) -> bool:
        """True if a blocked task lists one of ``task_ids`` among its dependencies."""
        return any(self.fetch(self.expand(self._q["awaited_by_blocked"], len(c)), c) for c in chunks(list(task_ids)))

    def blocked_dependents(self, task_ids: Collection[str]) -> list[TaskRecord]:
        """The blocked tasks that list one of ``task_ids`` among their dependencies."""
        return self._records("blocked_dependents", task_ids)

    def ready_ahead(
        self, task_id: str, key: float, rate: float, now: float
    ) -> list[tuple[str, str | None, frozenset[str], int]]:
        """``(task type, pinned agent, skills, how many)`` of the ready tasks served before ``task_id``, whose
        ageing key (``rate * ready time - priority``) is ``key``: one row per route, not per task."""
        found = self.query("task_seq", (task_id,))
        if not found:
            return []
        params = {"now": now, "task_id": task_id, "rate": rate, "key": key, "seq": found[0]["seq"]}
        return [
            (r["task_type"], r["placement"] or r["agent"], Requirements.parse(codec.decode(r["requirements"])).skills,
             int(r["n"]))
            for r in self.query("ready_ahead_routes", params)
        ]  # fmt: skip

    def ready_tasks(self, now: float) -> list[TaskRecord]:
        """Tasks waiting for an agent (pending, not waiting out a retry back-off), in submission order."""
        return [TaskRecord.from_row(r) for r in self.query("ready_tasks", {"now": now})]

    def ready_routes(self, now: float) -> list[tuple[str, str | None, frozenset[str], int]]:
        """``(task type it runs as, pinned agent, skills, how many)`` of the tasks waiting for an agent."""
        out = []
        for r in self.query("ready_routes", {"now": now}):
            recovery = RecoveryState.from_data(codec.decode(r["recovery"]))
            skills = Requirements.parse(codec.decode(r["requirements"])).skills
            out.append((recovery.run_as or r["task_type"], r["placement"] or r["agent"], skills, int(r["n"])))
        return out

    def unfinished_count(self) -> int:
        """Tasks not yet ended, parked ones left out."""
        return int(self.query("unfinished_count")[0][0])

    def running_tasks(self) -> list[tuple[str, str, float]]:
        """``(agent_id, task_type, started_at)`` of every running task."""
        return [(r["agent_id"], r["task_type"], r["started_at"]) for r in self.query("running_tasks")]

    def running_by_agent(self) -> dict[str, int]:
        return {row["agent_id"]: int(row["n"]) for row in self.query("running_by_agent")}

    def attempts(self, task_id: str) -> list[dict[str, Any]]:
        """Every ended attempt of a task, first to last."""
        return [dict(row) for row in self.query("attempts_of_task", (task_id,))]
