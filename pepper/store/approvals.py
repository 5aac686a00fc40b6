"""Reads and writes of the ``approvals`` table: steps waiting for a person, and their decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.model import codec
from pepper.model.approval import Approval

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore


class ApprovalLog:
    """Requests for approval, one per step's task; a decision is written once (the first one wins)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def request(self, approval: Approval) -> Approval:
        """Store a request unless one is stored for the same task already; the stored one."""
        a = approval
        self._store.execute(
            "request_approval",
            (a.task_id, a.run_id, a.step_id, codec.encode(list(a.approvers)), a.requested_at, a.deadline),
        )
        stored = self.get(a.task_id)
        return stored if stored is not None else approval

    def get(self, task_id: str) -> Approval | None:
        rows = self._store.query("approval_by_task", (task_id,))
        return Approval.from_row(rows[0]) if rows else None

    def of_run(self, run_id: str) -> list[Approval]:
        return [Approval.from_row(r) for r in self._store.query("approvals_of_run", (run_id,))]

    def decide(self, task_id: str, decision: str, by: str | None, reason: str | None, now: float) -> bool:
        """Record a decision; False if the request was decided already (or there is none)."""
        return self._store.execute("decide_approval", (decision, by, reason, now, task_id)) == 1
