"""The agents' budgets in the resource pool, and the pool's leases as the state machine sees them.

An agent that declares resources leases its budget from the pool as it registers; one the pool cannot
grant yet waits in ``Engine.budget_waiting`` and is granted when leases are read again (``reload_leases``,
after every poll of the database and whenever a lease changes here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.errors import ResourceUnavailableError
from pepper.model.agent import AgentSpec
from pepper.model.events import AgentReady, LeasesLoaded
from pepper.model.lease import Lease, LeaseKind
from pepper.model.resources import OffHost, Resources, describe_shortfall

if TYPE_CHECKING:
    from pepper.engine.shell import Engine


def budget_lease_id(agent_id: str, worker_id: str) -> str:
    """The id of the budget lease an agent takes when it registers in a worker."""
    return f"budget:{agent_id}@{worker_id}"


def reload_leases(engine: Engine) -> None:
    """Read the pool and its live leases, tell the state machine, and retry waiting budgets."""
    now = engine.clock.now()
    pool, live = engine.store.leases.pool_and_live(now)
    leases = tuple(live)
    signature = (tuple(sorted(pool.items())), tuple(sorted((lease.lease_id, lease.expires_at) for lease in leases)))
    if signature != engine.lease_signature:
        engine.lease_signature = signature
        engine.dispatch(LeasesLoaded(pool, leases, now, "load:leases"))
    for agent_id in list(engine.budget_waiting):
        spec = engine.budget_waiting[agent_id]
        if grant_budget(engine, spec) is None:
            del engine.budget_waiting[agent_id]
            reload_leases(engine)
            engine.dispatch(AgentReady(agent_id, engine.clock.now(), f"budget:{agent_id}"))
            return


def off_host(engine: Engine, spec: AgentSpec) -> OffHost | None:
    """For an agent on Ray, how it finds resources: Ray places its machine resources (with its actor), within
    the budget it declares; only the shared pools are pepper's to grant. None for an agent run here."""
    if not engine.attempts.on_ray(spec):
        return None
    return OffHost(spec.resources, engine.store.leases.shared())


def pooled_budget(engine: Engine, spec: AgentSpec) -> Resources:
    """The part of an agent's budget pepper's pool grants: all of it, except for an agent on Ray (``off_host``),
    of which only the shared pools it names are pepper's to grant."""
    if not spec.resources:
        return spec.resources
    on_ray = off_host(engine, spec)
    return spec.resources if on_ray is None else on_ray.pooled


def grant_budget(engine: Engine, spec: AgentSpec) -> str | None:
    """Lease an agent's budget (``pooled_budget``) from the pool; why it must wait, or None if granted."""
    budget = pooled_budget(engine, spec)
    if not budget:
        return None
    lease = Lease(budget_lease_id(spec.agent_id, engine.worker_id), spec.agent_id, LeaseKind.BUDGET,
                  budget, engine.clock.now(), worker_id=engine.worker_id)  # fmt: skip
    try:
        engine.store.leases.grant_once(lease, engine.clock.now())  # False: granted before (registered again)
    except ResourceUnavailableError as exc:
        return f"is waiting for its budget: {describe_shortfall(exc.shortfall)} in the pool"
    return None
