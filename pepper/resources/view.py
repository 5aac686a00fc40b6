"""The scheduler's view of resources: the pool, every lease, and what local tasks hold.

An agent with a budget (live budget leases it holds) runs tasks within that
budget, like a pod's requests on a node: each running task holds a lease inside
it, so every process sees how much of the budget is in use; an agent without one
makes each running task lease its resources from the pool. What tasks hold inside
a budget that ended (or shrank) while they ran counts against the pool until they
end (``model.lease.Tally``). An agent whose machine resources another system places
(an agent on Ray, ``OffHost``) runs its tasks' needs of them within the budget it
declared to that system, and takes from pepper's pool (or its granted budget) only
their needs of shared pools. Pure bookkeeping: the state machine asks ``shortfall``
before starting a task, calls ``take`` when it starts and ``give_back`` when it
ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pepper.model.lease import Lease, LeaseKind, Tally
from pepper.model.resources import OffHost, Resources
from pepper.resources.ledger import free, next_expiry, shortfall


def _add(total: dict[str, float], amounts: Mapping[str, float], sign: float = 1.0) -> None:
    for name, amount in amounts.items():
        total[name] = total.get(name, 0.0) + sign * amount


class ResourceView:
    """What is held and free, for one engine. ``worker_id`` names the engine's own task leases."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.capacity: dict[str, float] = {}
        self.external: dict[str, Lease] = {}  # every live lease this engine did not take for a task
        self.own: dict[str, Lease] = {}  # task id -> the lease a local task holds (of the pool or of its budget)
        self._tally = Tally()  # what the external and own leases hold
        self._off_host: dict[str, OffHost] = {}  # agent id -> how an agent placed elsewhere finds resources
        self._placed_used: dict[str, dict[str, float]] = {}  # agent id -> what its tasks use of its placed budget
        self.placed: dict[str, tuple[str, Resources]] = {}  # task id -> (agent, what it uses of its placed budget)

    def set_off_host(self, agent_id: str, off_host: OffHost | None) -> None:
        """Say that ``agent_id``'s machine resources are placed elsewhere (None: it runs on this host)."""
        if off_host is None:
            self._off_host.pop(agent_id, None)
        else:
            self._off_host[agent_id] = off_host

    def load(self, capacity: Mapping[str, float], leases: Iterable[Lease], now: float) -> float | None:
        """Take the store's pool and live leases; returns when the next one expires."""
        self.capacity = dict(capacity)
        own_ids = {lease.lease_id for lease in self.own.values()}
        self.external = {lease.lease_id: lease for lease in leases if lease.lease_id not in own_ids}
        return self.refresh(now)

    def refresh(self, now: float) -> float | None:
        """Recount after time passed (leases may have expired); returns the next expiry."""
        self.external = {lid: lease for lid, lease in self.external.items() if lease.live(now)}
        self._tally = Tally([*self.external.values(), *self.own.values()])
        return next_expiry(self.external.values(), now)

    def most_given(self) -> dict[str, float]:
        """Per resource, the most a task here could ever be given: the whole pool, or more within the budget an
        agent on Ray declares (what a new task is checked against before it is stored)."""
        most = dict(self.capacity)
        for off_host in self._off_host.values():
            for name, amount in off_host.placed.items():
                most[name] = max(most.get(name, 0.0), amount)
        return most

    def has_budget(self, agent_id: str) -> bool:
        return bool(self._tally.budgets.get(agent_id))

    def available(self, agent_id: str) -> tuple[dict[str, float], str]:
        """What a task on ``agent_id`` may still use, and where it comes from."""
        off_host = self._off_host.get(agent_id)
        pooled, where = self._pooled(agent_id)
        if off_host is None:
            return pooled, where
        amounts = {name: amount for name, amount in pooled.items() if name in off_host.shared}
        amounts.update(free(off_host.placed, self._placed_used.get(agent_id, {})))
        return amounts, _on_ray(agent_id)

    def _pooled(self, agent_id: str) -> tuple[dict[str, float], str]:
        return self._tally.available(agent_id, self.capacity)

    def shortfall(self, request: Resources, agent_id: str) -> dict[str, float]:
        """What is missing for ``request`` to start on ``agent_id`` now (empty: it fits)."""
        available, _where = self.available(agent_id)
        return shortfall(request, available)

    def shortfall_where(self, request: Resources, agent_id: str) -> tuple[dict[str, float], str]:
        """``shortfall``, and where it is missing: the pool, the agent's budget, or the budget it declares to Ray."""
        missing = self.shortfall(request, agent_id)
        where = self._pooled(agent_id)[1]
        off_host = self._off_host.get(agent_id)
        if off_host is None:
            return missing, where
        places = []
        if any(name not in off_host.shared for name in missing):
            places.append(_on_ray(agent_id))
        if any(name in off_host.shared for name in missing):
            places.append(where)
        return missing, " and ".join(places) or _on_ray(agent_id)

    def take(self, task_id: str, attempt: int, agent_id: str, request: Resources, now: float) -> Lease | None:
        """Account a starting task; returns the lease to store (inside its agent's budget if it has one, else
        of the pool), or None (it needs nothing pepper's pool grants)."""
        off_host = self._off_host.get(agent_id)
        if off_host is not None:
            request, placed = off_host.split(request)
            if placed:
                self.placed[task_id] = (agent_id, placed)
                _add(self._placed_used.setdefault(agent_id, {}), placed)
            if not request:
                return None
        lease = Lease(
            f"task:{task_id}:{attempt}@{self.worker_id}", agent_id, LeaseKind.TASK, request, now,
            worker_id=self.worker_id, task_id=task_id, in_budget=self.has_budget(agent_id),
        )  # fmt: skip
        self.own[task_id] = lease
        self._tally.add(lease)
        return lease

    def give_back(self, task_id: str) -> tuple[Lease | None, bool]:
        """A task stopped: its lease (to release) and whether the pool gained room (a task inside a budget
        frees the pool only of what it held beyond that budget)."""
        placed = self.placed.pop(task_id, None)
        if placed is not None:
            _add(self._placed_used.setdefault(placed[0], {}), placed[1], -1.0)
        lease = self.own.pop(task_id, None)
        if lease is None:
            return None, False
        before = self._tally.held()
        self._tally.add(lease, -1.0)
        after = self._tally.held()
        return lease, any(after.get(name, 0.0) < before.get(name, 0.0) - 1e-9 for name in lease.resources)

    def leases(self) -> list[Lease]:
        """Every live lease known here, local task leases included."""
        return [*self.external.values(), *self.own.values()]


def _on_ray(agent_id: str) -> str:
    return f"the budget agent {agent_id!r} declares to Ray"
