"""A task's error history: each error with what its recovery policy did about it, and the outcome of
handling one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pepper.model import codec
from pepper.model.status import TaskError


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One error in a task's history, and what was done about it."""

    error_id: int
    task_id: str
    attempt: int
    agent_id: str | None
    worker_id: str | None
    task_type: str
    at: float
    error: TaskError
    strategy: str | None  # the strategy that decided (None when the policy was exhausted)
    action: str  # one of ACTIONS
    detail: str | None  # e.g. "retry 2 of 3 in 4.00s"

    @classmethod
    def from_row(cls, row: codec.Row) -> ErrorRecord:
        error = TaskError(row["type"], row["message"], row["traceback"], row["kind"])
        return cls(row["error_id"], row["task_id"], row["attempt"], row["agent_id"], row["worker_id"],
                   row["task_type"], row["at"], error, row["strategy"], row["action"], row["detail"])  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_id": self.error_id, "task_id": self.task_id, "attempt": self.attempt, "agent_id": self.agent_id,
            "worker_id": self.worker_id, "task_type": self.task_type, "at": self.at, "type": self.error.type,
            "message": self.error.message, "traceback": self.error.traceback, "kind": self.error.kind,
            "strategy": self.strategy, "action": self.action, "detail": self.detail,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorRecord:
        """The record ``to_dict`` gave (an HTTP answer's)."""
        error = TaskError(data["type"], data["message"], data.get("traceback"), data.get("kind", "error"))
        return cls(data["error_id"], data["task_id"], data["attempt"], data.get("agent_id"), data.get("worker_id"),
                   data["task_type"], data["at"], error, data.get("strategy"), data["action"],
                   data.get("detail"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    """What handling an error did: the decision, where the task stands now, when and where it runs next."""

    task_id: str
    action: str  # one of ACTIONS
    strategy: str
    message: str
    state: str  # the task's state afterwards
    next_attempt_at: float | None = None
    agent_id: str | None = None  # the agent it is placed on, if a strategy chose one
    parked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "action": self.action, "strategy": self.strategy, "message": self.message,
                "state": self.state, "next_attempt_at": self.next_attempt_at, "agent_id": self.agent_id,
                "parked": self.parked}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecoveryOutcome:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
