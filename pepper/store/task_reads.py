"""Every read of tasks a SQL store makes, over its named statements."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pepper.model import codec
from pepper.model.record import STATUS_COLUMNS, TaskRecord, status_from_row
from pepper.model.recovery import RecoveryState
from pepper.model.requirements import Requirements
from pepper.model.status import TaskStatus
from pepper.model.task import Task, TaskState
from pepper.store.protocol import TaskPlace
from pepper.store.sql_database import SqlDatabase, chunks


def _valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def id_pattern(text: str) -> str:
    """The ``LIKE`` pattern (escape ``\\``) of the lowered ids holding ``text``: its ASCII letters lowered, as
    ``LOWER`` lowers an id in both databases, and its wildcards taken as themselves."""
    escaped = text.translate(_ASCII_LOWER).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: The columns of tasks among ``{ids}`` that their statuses show (the same SQL in every database pepper uses).
_STATUSES_BY_ID = f"SELECT {', '.join(STATUS_COLUMNS)} FROM tasks WHERE task_id IN ({{ids}})"


class TaskReads(SqlDatabase):
    """The task reads of the ``Store`` protocol (``get_tasks``, ``list_tasks``, the ready queue...)."""

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

    def get_statuses(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        """The statuses of the stored tasks among ``task_ids`` (unknown ids are left out; no waiting reasons),
        read from the columns they show, without building the tasks' records."""
        ids = [tid for tid in task_ids if (tid.isascii() or _valid_text(tid)) and "\x00" not in tid]
        found: dict[str, TaskStatus] = {}
        for chunk in chunks(ids):
            for row in self.fetch(self.expand(_STATUSES_BY_ID, len(chunk)), chunk):
                status = status_from_row(*row)
                found[status.task_id] = status
        return found

    def unfinished(self) -> list[TaskRecord]:
        """Every task not yet completed, failed or cancelled, oldest first."""
        return [TaskRecord.from_row(r) for r in self.query("unfinished_tasks")]

    def changes_since(
        self, change_seq: int, writer: str, known: Callable[[str], Task | None] | None = None
    ) -> tuple[list[TaskRecord], int]:
        """Tasks written by others after ``change_seq``, and the counter's value now. ``known`` gives the spec of a
        task the caller has already (it is reused, not decoded again, for the row it came from: specs never
        change). The values this store remembers of those rows (``NarrowSaves``) are let go: others wrote them."""
        rows = self.query("changed_tasks", (change_seq, writer))
        now = int(rows[0]["change_seq_now"])
        if rows[0]["task_id"] is None:
            return [], now
        self.forget_written([r["task_id"] for r in rows])
        if known is None:
            return [TaskRecord.from_row(r) for r in rows], now
        return [TaskRecord.from_row(r, known(r["task_id"])) for r in rows], now

    def pruned_since(self, change_seq: int) -> list[tuple[str, float]]:
        """The tasks prunes deleted after ``change_seq``: ``(id, created_at)``, recorded for the latest prunes
        only. Where older records were let go since, a mark ``("", n)`` says the newest change number among them:
        whoever read fewer changes than ``n`` may have missed some, and must check what it holds."""
        return [(row[0], float(row[1])) for row in self.query("pruned_since", (change_seq,))]

    def forget_written(self, task_ids: Collection[str]) -> None:
        """Rows another process wrote: nothing this store remembers of them holds any more (see ``SqlStore``)."""

    def current_change_seq(self) -> int:
        return int(self.query("current_change_seq")[0][0])

    def list_tasks(
        self,
        state: TaskState | None = None,
        limit: int = 1000,
        *,
        task_type: str | None = None,
        after: str | TaskPlace | None = None,
        id_contains: str | None = None,
    ) -> list[TaskRecord]:
        """Most recently submitted first; ``id_contains``: only the tasks whose id holds that text (ASCII letters
        in either case); ``after`` a stored task's id, or a task's place: only the tasks submitted before it (a
        page's cursor; a place says where the task was even once it is no longer stored)."""
        if task_type is not None or after is not None or id_contains is not None:
            named: tuple[str | None, float | None, int | None] = (
                (after, None, None) if after is None or isinstance(after, str) else after
            )
            params = {"state": None if state is None else state.value, "task_type": task_type,
                      "after": named[0], "after_at": named[1], "after_seq": named[2],
                      "id_like": None if id_contains is None else id_pattern(id_contains), "limit": limit}  # fmt: skip
            rows = self.query("list_tasks_page", params)
        elif state is None:
            rows = self.query("list_tasks", (limit,))
        else:
            rows = self.query("list_tasks_in_state", (state.value, limit))
        return [TaskRecord.from_row(r) for r in rows]

    def task_place(self, task_id: str, created_at: float) -> TaskPlace | None:
        """Where the task ``task_id`` submitted at ``created_at`` stands in the list of tasks; None if it is not
        stored (any more)."""
        found = self.query("task_place", (task_id, created_at))
        return TaskPlace(task_id, created_at, int(found[0]["seq"])) if found else None

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

    def cancelled_dependents(self, task_ids: Collection[str]) -> list[TaskRecord]:
        """The cancelled tasks that list one of ``task_ids`` among their dependencies."""
        return self._records("cancelled_dependents", task_ids)

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
