"""Pruning finished work older than a horizon, and giving the space back.

What goes: tasks that ended (completed, failed, cancelled) before the horizon, with their earlier attempts,
errors and logs; workflow runs that ended before it, with their approvals; alerts that ended before it (a
configured rule's alert ends when the rule resolves: one still firing stays).
What stays, whatever its age: unfinished tasks (parked ones included), every task an unfinished task
depends on, every step of a run that still has unfinished steps, a run while any of its steps stays, and
a run's whole family of sub-workflows (parent and child runs) while any run of it stays. All of it is
decided and deleted in one write transaction, so a task finishing meanwhile is seen either before or after.

The ids of the tasks deleted are recorded (``pruned_tasks``) under the prune's change number: other processes
read them as they catch up, and forget those tasks; the change counter counts them, so a prune of the newest
rows never makes it go back (a row written after the prune always has a number above any seen before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.model.record import TaskRecord

if TYPE_CHECKING:
    from pepper.store.sql_store import Connection, SqlStore

#: The kinds of rows pruned, in the order they are reported.
KINDS = ("tasks", "runs", "attempts", "errors", "logs", "approvals", "alerts")
#: Every table a prune deletes from (the ones whose space is given back afterwards).
TABLES = ("tasks", "attempts", "errors", "task_logs", "approvals", "runs", "alerts")
_CHUNK = 500


class Pruner:
    """Removes finished work older than a horizon from one store."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.removed: list[tuple[str, float]] = []  # the tasks the latest prune deleted: (id, created_at)

    def prune(self, horizon: float, *, dry_run: bool = False) -> dict[str, int]:
        """Remove (or with ``dry_run`` only count) what ended before ``horizon``; the count of each kind."""
        store = self._store
        with store.typed_errors(), store.transaction() as conn:
            tasks, runs = self._chosen(conn, horizon)
            ids = [task_id for task_id, _ in tasks]
            alerts = [row[0] for row in conn.execute(store.statement("prunable_alerts"), {"horizon": horizon})]
            counts = {
                "tasks": len(tasks),
                "runs": len(runs),
                "attempts": self._count(conn, "count_attempts_of", ids),
                "errors": self._count(conn, "count_errors_of", ids),
                "logs": self._count(conn, "count_logs_of", ids),
                "approvals": self._count(conn, "count_approvals_of_runs", runs),
                "alerts": len(alerts),
            }
            if not dry_run:
                if tasks:  # other processes learn which tasks went (``pruned_tasks``) as they catch up
                    store.begin_change(conn)
                    conn.execute(store.statement("mark_forgotten_prunes"))
                    conn.execute(store.statement("forget_older_prunes"))
                    conn.executemany(store.statement("record_pruned"), tasks)
                for name in ("delete_attempts_of", "delete_errors_of", "delete_logs_of", "delete_tasks"):
                    self._delete(conn, name, ids)
                self._delete(conn, "delete_approvals_of_runs", runs)
                self._delete(conn, "delete_runs", runs)
                self._delete(conn, "delete_alerts_of", alerts)
                self.removed = tasks
        return counts

    def _chosen(self, conn: Connection, horizon: float) -> tuple[list[tuple[str, float]], list[str]]:
        """The tasks (id, created_at) and the ids of the runs to prune."""
        q = self._store.statement
        unfinished = [TaskRecord.from_row(r) for r in conn.execute(q("unfinished_tasks"))]
        needed = {dep for record in unfinished for dep in record.task.dependencies}
        busy_runs = {r.task.metadata.get("pepper.run") for r in unfinished} - {None}
        runs = {row[0] for row in conn.execute(q("prunable_runs"), (horizon,))} - busy_runs
        candidates = set(runs)
        tasks: dict[str, str | None] = {}  # task id -> its run
        created: dict[str, float] = {}
        steps: dict[str, int] = {}
        for row in conn.execute(q("prunable_tasks"), (horizon,)):
            record = TaskRecord.from_row(row)
            task_id = record.task.task_id
            run = record.task.metadata.get("pepper.run")
            if task_id in needed or (run is not None and run not in runs):
                continue
            tasks[task_id] = run
            created[task_id] = record.task.created_at
            if run is not None:
                steps[run] = steps.get(run, 0) + 1
        for run in sorted(runs):  # a run goes only with all of its steps
            stored = int(conn.execute(q("count_run_steps"), (f"{run}/", f"{run}0")).fetchone()[0])
            if stored != steps.get(run, 0):
                runs.discard(run)
        keep_families(runs, [(row[0], row[1]) for row in conn.execute(q("run_parents"))])
        kept = {f"{run}/" for run in candidates - runs}  # their steps stay, whether or not they name their run
        chosen = [(t, created[t]) for t, run in tasks.items()
                  if (run is None or run in runs) and t[: t.find("/") + 1] not in kept]  # fmt: skip
        return chosen, sorted(runs)

    def _count(self, conn: Connection, name: str, ids: Sequence[str]) -> int:
        total = 0
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            total += int(conn.execute(self._store.expand(self._store.statement(name), len(chunk)), chunk).fetchone()[0])
        return total

    def _delete(self, conn: Connection, name: str, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            conn.execute(self._store.expand(self._store.statement(name), len(chunk)), chunk)


def keep_families(runs: set[str], links: Sequence[tuple[str, str | None]]) -> None:
    """Take out of ``runs`` every run linked (as parent or child) to a stored run that stays: a child run
    (a sub-workflow) stays while the run of its parent step does, and that run stays while a child does."""
    stored = {run for run, _ in links}
    pairs = [(child, parent.partition("/")[0]) for child, parent in links if parent]
    pairs = [(child, parent) for child, parent in pairs if parent in stored]
    changed = True
    while changed:
        changed = False
        for child, parent in pairs:
            if (child in runs) != (parent in runs):
                runs.discard(child)
                runs.discard(parent)
                changed = True
