"""A lease: resources granted from the pool to an agent (its budget) or to one running task."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pepper.model import codec
from pepper.model.resources import Resources


class LeaseKind(StrEnum):
    """``budget``: an agent's allocation, the room its tasks run within.
    ``task``: what one running task took from the pool (its agent has no budget)."""

    BUDGET = "budget"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class Lease:
    """Resources held by ``holder`` (an agent id) from ``granted_at`` until released or expired.

    ``worker_id`` is the process that took it for an agent's registration or a
    running task (it is given back if that process dies); manual allocations
    have none, or name who took them (``token:<name>`` over the HTTP API).
    ``expires_at`` of ``None`` means until released.
    """

    lease_id: str
    holder: str
    kind: LeaseKind
    resources: Resources
    granted_at: float
    expires_at: float | None = None
    released_at: float | None = None
    worker_id: str | None = None
    task_id: str | None = None

    def live(self, now: float) -> bool:
        """Held at ``now``: not released, not expired."""
        return self.released_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def allocation_id(self) -> str:
        return self.lease_id

    @property
    def agent_id(self) -> str:
        return self.holder

    def to_row(self) -> tuple[Any, ...]:
        return (
            self.lease_id, self.holder, self.kind.value, codec.encode(self.resources.to_dict()), self.granted_at,
            self.expires_at, self.released_at, self.worker_id, self.task_id,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: codec.Row) -> Lease:
        return cls(
            lease_id=row["lease_id"],
            holder=row["holder"],
            kind=LeaseKind(row["kind"]),
            resources=Resources(codec.decode(row["resources"])),
            granted_at=row["granted_at"],
            expires_at=row["expires_at"],
            released_at=row["released_at"],
            worker_id=row["worker_id"],
            task_id=row["task_id"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "lease_id": self.lease_id,
            "agent_id": self.holder,
            "kind": self.kind.value,
            "resources": self.resources.to_dict(),
            "granted_at": self.granted_at,
            "expires_at": self.expires_at,
            "released_at": self.released_at,
            "worker_id": self.worker_id,
            "task_id": self.task_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lease:
        """The lease ``to_dict`` gave."""
        return cls(data["lease_id"], data["agent_id"], LeaseKind(data["kind"]), Resources(data["resources"]),
                   data["granted_at"], data.get("expires_at"), data.get("released_at"), data.get("worker_id"),
                   data.get("task_id"))  # fmt: skip


#: What ``ResourceAllocator.allocate`` returns: the lease itself.
Allocation = Lease


def total_held(leases: Iterable[Lease], now: float) -> dict[str, float]:
    """The sum of every live lease, per resource."""
    total: dict[str, float] = {}
    for lease in leases:
        if lease.live(now):
            for name, amount in lease.resources.items():
                total[name] = total.get(name, 0.0) + amount
    return total


def room(capacity: Mapping[str, float], leases: Iterable[Lease], now: float) -> dict[str, float]:
    """What the pool still has free at ``now``."""
    used = total_held(leases, now)
    return {name: max(0.0, amount - used.get(name, 0.0)) for name, amount in capacity.items()}
