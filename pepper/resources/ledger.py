"""Pure bookkeeping of the resource pool: what is held, what is free, what may be granted.

Time is passed in; leases expire by themselves because "live" is a function of
``now``. Nothing here reads a clock or touches the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pepper.model.lease import Lease, LeaseKind, total_held
from pepper.model.resources import Resources

Amounts = Mapping[str, float]


held = total_held


def free(capacity: Amounts, used: Amounts) -> dict[str, float]:
    """What is left of ``capacity`` after ``used`` (never below zero)."""
    return {name: max(0.0, amount - used.get(name, 0.0)) for name, amount in capacity.items()}


def shortfall(request: Resources, available: Amounts) -> dict[str, float]:
    """How much of each requested resource is missing (empty when the request fits)."""
    return request.shortfall(available)


def budget(agent_id: str, leases: Iterable[Lease], now: float) -> dict[str, float]:
    """An agent's budget: the sum of its live budget leases."""
    return held((lease for lease in leases if lease.holder == agent_id and lease.kind is LeaseKind.BUDGET), now)


def next_expiry(leases: Iterable[Lease], now: float) -> float | None:
    """When the next live lease expires, if any does."""
    times = [lease.expires_at for lease in leases if lease.live(now) and lease.expires_at is not None]
    return min(times) if times else None


def beyond_capacity(request: Resources, capacity: Amounts) -> dict[str, float]:
    """What ``request`` needs beyond the whole pool: it could never be granted."""
    return request.shortfall(capacity)
