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
    ``task``: what one running task holds: from the pool, or inside its agent's budget (``Lease.in_budget``)."""

    BUDGET = "budget"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class Lease:
    """Resources held by ``holder`` (an agent id) from ``granted_at`` until released or expired.

    ``worker_id`` is the process that took it for an agent's registration or a
    running task (it is given back if that process dies); manual allocations
    have none, or name who took them (``token:<name>`` over the HTTP API).
    ``expires_at`` of ``None`` means until released. ``in_budget``: a task lease drawn from its agent's
    budget rather than from the pool (see ``Tally``).
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
    in_budget: bool = False

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
            self.expires_at, self.released_at, self.worker_id, self.task_id, int(self.in_budget),
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
            in_budget=bool(row["in_budget"]),
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
            "in_budget": self.in_budget,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lease:
        """The lease ``to_dict`` gave."""
        return cls(data["lease_id"], data["agent_id"], LeaseKind(data["kind"]), Resources(data["resources"]),
                   data["granted_at"], data.get("expires_at"), data.get("released_at"), data.get("worker_id"),
                   data.get("task_id"), bool(data.get("in_budget", False)))  # fmt: skip


#: What ``ResourceAllocator.allocate`` returns: the lease itself.
Allocation = Lease


def total_held(leases: Iterable[Lease], now: float) -> dict[str, float]:
    """What the live leases hold of the pool, per resource (``Tally.held``)."""
    return Tally(leases, now).held()


def room(capacity: Mapping[str, float], leases: Iterable[Lease], now: float) -> dict[str, float]:
    """What the pool still has free at ``now``."""
    used = total_held(leases, now)
    return {name: max(0.0, amount - used.get(name, 0.0)) for name, amount in capacity.items()}


def _add(total: dict[str, float], amounts: Mapping[str, float], sign: float = 1.0) -> None:
    for name, amount in amounts.items():
        total[name] = total.get(name, 0.0) + sign * amount


class Tally:
    """What a set of live leases holds of the pool, kept as leases are added and taken away.

    Every lease holds its resources in full, except the leases of tasks running inside their agent's budget
    (``in_budget``): per agent and resource, its budget leases and those hold the larger of the two together.
    The budget is held whether its tasks use it or not, and what they hold beyond it (once the budget expired,
    was released or shrank while they ran) counts against the pool too, until they end. An agent's budget
    has room for what its tasks do not hold of it (``budget_room``)."""

    __slots__ = ("_held", "budgets", "inside", "outside")

    def __init__(self, leases: Iterable[Lease] = (), now: float | None = None) -> None:
        self.outside: dict[str, float] = {}  # every lease that is neither a budget nor inside one
        self.budgets: dict[str, dict[str, float]] = {}  # agent -> its budget leases
        self.inside: dict[str, dict[str, float]] = {}  # agent -> its tasks' leases inside its budget
        self._held: dict[str, float] | None = None
        for lease in leases:
            if now is None or lease.live(now):
                self.add(lease)

    def add(self, lease: Lease, sign: float = 1.0) -> None:
        """Count ``lease`` (``sign=-1``: stop counting it)."""
        if lease.kind is LeaseKind.BUDGET:
            _add(self.budgets.setdefault(lease.holder, {}), lease.resources, sign)
        elif lease.in_budget:
            _add(self.inside.setdefault(lease.holder, {}), lease.resources, sign)
        else:
            _add(self.outside, lease.resources, sign)
        self._held = None

    def held(self) -> dict[str, float]:
        """What the leases hold of the pool, per resource."""
        if self._held is None:
            total = dict(self.outside)
            for agent in self.budgets.keys() | self.inside.keys():
                _add(total, self._agent_held(agent))
            self._held = total
        return self._held

    def _agent_held(self, agent_id: str) -> dict[str, float]:
        budget, inside = self.budgets.get(agent_id, {}), self.inside.get(agent_id, {})
        return {name: max(budget.get(name, 0.0), inside.get(name, 0.0)) for name in budget.keys() | inside.keys()}

    def budget_room(self, agent_id: str) -> dict[str, float]:
        """What ``agent_id``'s budget still has for its tasks (empty: it has none)."""
        budget, inside = self.budgets.get(agent_id, {}), self.inside.get(agent_id, {})
        return {name: max(0.0, amount - inside.get(name, 0.0)) for name, amount in budget.items()}

    def available(self, agent_id: str, capacity: Mapping[str, float]) -> tuple[dict[str, float], str]:
        """What a task of ``agent_id`` may still use of a pool of ``capacity``, and where it comes from: the
        room of the agent's budget if it has one, else what the pool has free."""
        if self.budgets.get(agent_id):
            return self.budget_room(agent_id), f"the budget of agent {agent_id!r}"
        held = self.held()
        return {name: max(0.0, amount - held.get(name, 0.0)) for name, amount in capacity.items()}, "the pool"

    def growth(self, lease: Lease) -> dict[str, float]:
        """How much more the leases would hold of the pool with ``lease`` added."""
        if lease.kind is not LeaseKind.BUDGET and not lease.in_budget:
            return dict(lease.resources)
        budget, inside = self.budgets.get(lease.holder, {}), self.inside.get(lease.holder, {})
        grows, stays = (budget, inside) if lease.kind is LeaseKind.BUDGET else (inside, budget)
        return {
            name: max(0.0, grows.get(name, 0.0) + amount - max(grows.get(name, 0.0), stays.get(name, 0.0)))
            for name, amount in lease.resources.items()
        }
