"""The scheduler's view of resources: the pool, every lease, and what local tasks use.

An agent with a budget (live budget leases it holds) runs tasks within that
budget, like a pod's requests on a node; an agent without one makes each
running task lease its resources from the pool. An agent whose machine resources
another system places (an agent on Ray, ``OffHost``) runs its tasks' needs of them
within the budget it declared to that system, and takes from pepper's pool (or its
granted budget) only their needs of shared pools. Pure bookkeeping: the state
machine asks ``shortfall`` before starting a task, calls ``take`` when it starts and
``give_back`` when it ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pepper.model.lease import Lease, LeaseKind
from pepper.model.resources import OffHost, Resources
from pepper.resources.ledger import budget, free, held, next_expiry, shortfall


def _add(total: dict[str, float], amounts: Mapping[str, float], sign: float = 1.0) -> None:
    for name, amount in amounts.items():
        total[name] = total.get(name, 0.0) + sign * amount


class ResourceView:
    """What is held and free, for one engine. ``worker_id`` names the engine's own task leases."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.capacity: dict[str, float] = {}
        self.external: dict[str, Lease] = {}  # every live lease this engine did not take for a task
        self.own: dict[str, Lease] = {}  # task id -> the pool lease a local task holds
        self.in_budget: dict[str, tuple[str, Resources]] = {}  # task id -> (agent, what it uses of its budget)
        self._budgets: dict[str, dict[str, float]] = {}
        self._budget_used: dict[str, dict[str, float]] = {}
        self._external_used: dict[str, float] = {}
        self._own_used: dict[str, float] = {}
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
        self._external_used = held(self.external.values(), now)
        holders = {lease.holder for lease in self.external.values() if lease.kind is LeaseKind.BUDGET}
        self._budgets = {agent: budget(agent, self.external.values(), now) for agent in holders}
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
        return bool(self._budgets.get(agent_id))

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
        agent_budget = self._budgets.get(agent_id)
        if agent_budget:
            return free(agent_budget, self._budget_used.get(agent_id, {})), f"the budget of agent {agent_id!r}"
        used = dict(self._external_used)
        _add(used, self._own_used)
        return free(self.capacity, used), "the pool"

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
        """Account a starting task; returns the pool lease to store, or None (it runs in a budget)."""
        off_host = self._off_host.get(agent_id)
        if off_host is not None:
            request, placed = off_host.split(request)
            if placed:
                self.placed[task_id] = (agent_id, placed)
                _add(self._placed_used.setdefault(agent_id, {}), placed)
            if not request:
                return None
        if self._budgets.get(agent_id):
            self.in_budget[task_id] = (agent_id, request)
            _add(self._budget_used.setdefault(agent_id, {}), request)
            return None
        lease = Lease(
            f"task:{task_id}:{attempt}@{self.worker_id}", agent_id, LeaseKind.TASK, request, now,
            worker_id=self.worker_id, task_id=task_id,
        )  # fmt: skip
        self.own[task_id] = lease
        _add(self._own_used, request)
        return lease

    def give_back(self, task_id: str) -> tuple[Lease | None, bool]:
        """A task stopped: its pool lease (to release) and whether the pool gained room."""
        placed = self.placed.pop(task_id, None)
        if placed is not None:
            _add(self._placed_used.setdefault(placed[0], {}), placed[1], -1.0)
        inside = self.in_budget.pop(task_id, None)
        if inside is not None:
            agent_id, request = inside
            _add(self._budget_used.setdefault(agent_id, {}), request, -1.0)
            return None, False
        lease = self.own.pop(task_id, None)
        if lease is None:
            return None, False
        _add(self._own_used, lease.resources, -1.0)
        return lease, True

    def leases(self) -> list[Lease]:
        """Every live lease known here, local task leases included."""
        return [*self.external.values(), *self.own.values()]


def _on_ray(agent_id: str) -> str:
    return f"the budget agent {agent_id!r} declares to Ray"
