"""Approvals: a workflow step that waits for a person to approve (or reject) it before the run goes on.

A step with ``approval: {timeout: 1h, approvers: [alice@example.com]}`` has no agent work: once its
dependencies completed, its driver stores a request (who may decide, until when) and the step waits.
Approved, the step completes with ``{"approved": true, "by": ..., "reason": ...}``; rejected, or not
decided by the deadline, it fails, and its recovery policy's ``skip`` or ``abort`` applies (the other
strategies retry work an agent did, so they have no meaning for a person's answer). A decision is
recorded once: the first one wins, and any later one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pepper.errors import ValidationError
from pepper.model import codec
from pepper.model.recovery import Abort, DeadLetter, Policy, Skip
from pepper.model.units import parse_duration

APPROVED, REJECTED, EXPIRED = "approved", "rejected", "expired"
#: The task type of an approval step written without one.
APPROVAL_TYPE = "approval"


@dataclass(frozen=True, slots=True)
class ApprovalSpec:
    """What an approval step asks: who may decide (empty: anyone) and how long it waits (seconds)."""

    timeout: float
    approvers: tuple[str, ...] = ()
    expected_wait: float | None = None  # how long the planner assumes a person takes (None: the timeout)

    @classmethod
    def parse(cls, value: Any) -> ApprovalSpec:
        """An approval written as ``{timeout: 1h, approvers: [...]}``; ``ValidationError`` naming the field."""
        if isinstance(value, ApprovalSpec):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError(
                f"approval must be a mapping such as {{timeout: 1h, approvers: [ops@example.com]}}, got {value!r}",
                field="approval",
            )
        unknown = sorted(set(map(str, value)) - {"timeout", "approvers", "expected_wait"})
        if unknown:
            raise ValidationError(
                f"unknown approval key {unknown[0]!r}; valid keys: timeout, approvers, expected_wait", field="approval"
            )
        if "timeout" not in value:
            raise ValidationError("approval needs a timeout, e.g. {timeout: 1h}: how long it waits", field="approval")
        timeout = parse_duration(value["timeout"], "approval timeout")
        if timeout <= 0:
            raise ValidationError(f"approval timeout must be above zero, got {value['timeout']!r}", field="approval")
        approvers = value.get("approvers") or []
        if isinstance(approvers, str):
            approvers = [approvers]
        if not isinstance(approvers, list) or not all(isinstance(a, str) and a.strip() for a in approvers):
            raise ValidationError(
                f"approval approvers must be a list of names (e.g. [ops@example.com]), got {approvers!r}",
                field="approval",
            )
        wait = value.get("expected_wait")
        expected = None if wait is None else parse_duration(wait, "approval expected_wait")
        return cls(timeout, tuple(a.strip() for a in approvers), expected)

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"timeout": self.timeout}
        if self.approvers:
            data["approvers"] = list(self.approvers)
        if self.expected_wait is not None:
            data["expected_wait"] = self.expected_wait
        return data


@dataclass(frozen=True, slots=True)
class Approval:
    """A stored request for approval of one step of one run, and its decision once there is one."""

    task_id: str
    run_id: str
    step_id: str
    approvers: tuple[str, ...]
    requested_at: float
    deadline: float
    decision: str | None = None  # approved, rejected or expired
    decided_by: str | None = None
    reason: str | None = None
    decided_at: float | None = None

    @property
    def waiting(self) -> bool:
        return self.decision is None

    @classmethod
    def from_row(cls, row: codec.Row) -> Approval:
        return cls(
            row["task_id"], row["run_id"], row["step_id"], tuple(codec.decode(row["approvers"]) or ()),
            row["requested_at"], row["deadline"], row["decision"], row["decided_by"], row["reason"],
            row["decided_at"],
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id, "run_id": self.run_id, "step_id": self.step_id,
            "approvers": list(self.approvers), "requested_at": self.requested_at, "deadline": self.deadline,
            "decision": self.decision, "decided_by": self.decided_by, "reason": self.reason,
            "decided_at": self.decided_at,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Approval:
        """The approval ``to_dict`` gave (an HTTP answer's)."""
        return cls(
            data["task_id"], data["run_id"], data["step_id"], tuple(data.get("approvers") or ()),
            data["requested_at"], data["deadline"], data.get("decision"), data.get("decided_by"),
            data.get("reason"), data.get("decided_at"),
        )  # fmt: skip

    def who(self) -> str:
        """``alice@example.com or ops@example.com``, or ``anyone``."""
        return " or ".join(self.approvers) if self.approvers else "anyone"


def ending(policy: Policy | None) -> str:
    """What a rejected or expired approval leads to under the step's recovery ``policy``: ``skip``, ``abort``
    or ``fail`` (the first of those strategies in the chain; none: ``fail``)."""
    for strategy in policy.strategies if policy is not None else ():
        if isinstance(strategy, Skip):
            return "skip"
        if isinstance(strategy, Abort):
            return "abort"
        if isinstance(strategy, DeadLetter):
            return "fail"
    return "fail"
