"""``ResourceAllocator``, ``ResourceManager`` and ``ResourceMonitor``: the pool, leases, real usage, alerts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pepper.core.agents_view import known_agent_ids
from pepper.core.alerting import AlertSource
from pepper.core.component import Component
from pepper.core.runtime import Runtime
from pepper.core.served import every_item, server_of
from pepper.engine.sampler import ValueOf
from pepper.errors import (
    AgentNotFoundError,
    AllocationNotFoundError,
    ResourceUnavailableError,
    StoreBusyError,
    ValidationError,
    shown,
)
from pepper.model.agent import check_agent_id
from pepper.model.lease import Allocation, Lease, LeaseKind, room, total_held
from pepper.model.resources import Resources, describe
from pepper.model.timing import MAX_DELAY
from pepper.model.units import check_limit, check_wait, parse_duration
from pepper.model.usage import METRICS, AgentUsage, Measurement, check_metrics
from pepper.monitoring.alerts import Alert, AlertRule

_WAIT_STEPS = (0.02, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """The pool seen from ``host`` now: its capacity, what live leases hold, what is free, and the leases.

    Resources named in ``shared`` are pools every host draws from; the others are this host's own."""

    capacity: Mapping[str, float]
    held: Mapping[str, float]
    free: Mapping[str, float]
    leases: tuple[Lease, ...] = ()
    shared: frozenset[str] = frozenset()
    host: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"capacity": dict(self.capacity), "held": dict(self.held), "free": dict(self.free),
                "leases": [lease.to_dict() for lease in self.leases], "shared": sorted(self.shared),
                "host": self.host}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolStatus:
        """The pool ``to_dict`` gave (what a server answers)."""
        leases = tuple(Lease.from_dict(x) for x in data["leases"])
        return cls(dict(data["capacity"]), dict(data["held"]), dict(data["free"]), leases, frozenset(data["shared"]),
                   data["host"])  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """An agent's resources: its budget (``allocated``), what its running tasks lease of the pool (beyond its
    budget), and what it really uses."""

    agent_id: str
    allocated: Resources
    leased_by_tasks: Resources
    measured: AgentUsage
    allocations: tuple[Lease, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "allocated": self.allocated.to_dict(),
            "leased_by_tasks": self.leased_by_tasks.to_dict(),
            "measured": self.measured.to_dict(),
            "allocations": [lease.to_dict() for lease in self.allocations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourceUsage:
        """The usage ``to_dict`` gave (what a server answers)."""
        leases = tuple(Lease.from_dict(x) for x in data["allocations"])
        return cls(data["agent_id"], Resources(data["allocated"]), Resources(data["leased_by_tasks"]),
                   AgentUsage.from_dict(data["measured"]), leases)  # fmt: skip


def _agent_id(value: Any) -> str:
    try:
        return check_agent_id(value)
    except ValidationError as exc:
        raise ValidationError(str(exc), field="agent_id") from None


def _allocation_id(allocation: Any) -> str:
    if isinstance(allocation, Lease):
        return allocation.lease_id
    if isinstance(allocation, str) and allocation:
        return allocation
    raise ValidationError(f"expected an allocation (or its id), got {allocation!r}", field="allocation")


def _duration(duration: Any) -> float | None:
    if duration is None:
        return None
    seconds = parse_duration(duration, "duration")
    if not 0 < seconds <= MAX_DELAY:
        raise ValidationError(
            f"duration must be positive and at most 366 days ({MAX_DELAY:.0f}s), got {shown(duration)}; "
            "give none for a lease held until it is released",
            field="duration",
        )
    return seconds


class ResourceAllocator(Component):
    """Leases resources from the pool to agents: granted whole or not at all, released or expired."""

    def allocate(
        self, agent_id: str, resources: Mapping[str, Any], duration: Any = None, *, taken_by: str | None = None
    ) -> Allocation:
        """Lease ``resources`` to ``agent_id`` (its budget) for ``duration`` ("30s", "1h", seconds; None: until
        released). Raises ``ResourceUnavailableError`` naming what is short if the pool lacks room now.
        ``taken_by`` names who took it when that is not this process (``token:<name>`` over the HTTP API)."""
        runtime = self.runtime
        holder = _agent_id(agent_id)
        need = Resources.parse(resources)
        if not need:
            raise ValidationError("resources must ask for something, e.g. {'cpu': 1}", field="resources")
        seconds = _duration(duration)
        if taken_by is not None and (not isinstance(taken_by, str) or not taken_by.strip()):
            raise ValidationError(f"taken_by must be a non-empty name, got {taken_by!r}", field="taken_by")
        if (server := server_of(runtime)) is not None:  # taken by the server, for this token
            body = {"agent_id": holder, "resources": need.to_dict(), "duration": seconds}
            return Lease.from_dict(server.ask_server("POST", ("leases",), body))
        beyond = need.shortfall(runtime.pool())
        if beyond:
            pool = runtime.pool()
            raise ValidationError(
                f"{holder!r} asks for {describe({n: need[n] for n in beyond})} but the whole pool has "
                f"{describe({n: pool.get(n, 0.0) for n in beyond})}; it could never be granted. Ask for less, "
                "or give the pool more (pepper.init(resources=...))",
                field="resources",
            )
        now = runtime.clock.now()
        lease = Lease(f"alloc-{uuid.uuid4().hex[:12]}", holder, LeaseKind.BUDGET, need, now,
                      None if seconds is None else now + seconds, worker_id=taken_by)  # fmt: skip
        try:
            runtime.store.leases.grant(lease, now)
        except StoreBusyError:
            if not _stored(runtime, lease.lease_id):
                raise
        runtime.leases_changed()
        return lease

    def release(self, allocation: Allocation | str) -> bool:
        """Give an allocation back; True if this call released it, False if it already was (or expired)."""
        runtime = self.runtime
        if (server := server_of(runtime)) is not None:
            return bool(server.ask_server("DELETE", ("leases", _allocation_id(allocation)))["released"])
        released = runtime.store.leases.release(_allocation_id(allocation), runtime.clock.now())
        runtime.leases_changed()
        return released

    def renew(self, allocation: Allocation | str, duration: Any = None) -> Allocation:
        """Extend a live allocation to ``duration`` from now (by default its original length)."""
        runtime = self.runtime
        lease_id = _allocation_id(allocation)
        if (server := server_of(runtime)) is not None:
            body = {"duration": _duration(duration)}
            return Lease.from_dict(server.ask_server("POST", ("leases", lease_id, "renew"), body))
        current = runtime.read(lambda backend: backend.lease(lease_id))
        seconds = _duration(duration)
        if seconds is None and current.expires_at is not None:
            seconds = current.expires_at - current.granted_at
        now = runtime.clock.now()
        renewed = runtime.store.leases.renew(current.lease_id, None if seconds is None else now + seconds, now)
        runtime.leases_changed()
        return renewed

    def get(self, allocation_id: str) -> Allocation:
        lease_id = _allocation_id(allocation_id)
        return self.runtime.read(lambda backend: backend.lease(lease_id))

    def allocations(self, agent_id: str | None = None) -> list[Allocation]:
        """Live leases (of one agent, if given)."""
        runtime = self.runtime
        now = runtime.clock.now()
        holder = None if agent_id is None else _agent_id(agent_id)
        if holder is not None and (server := server_of(runtime)) is not None:  # chosen there, page by page
            items = every_item(server, ("leases",), {"agent_id": holder})
            return [Lease.from_dict(item) for item in items]
        leases = runtime.read(lambda backend: backend.leases(now))
        return [lease for lease in leases if holder is None or lease.holder == holder]


class ResourceManager(Component):
    """The pool as a whole: allocate for agents (optionally waiting), and what agents hold and use."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime
        self._allocator = ResourceAllocator(runtime)

    def allocate_resources(
        self, agent_id: str, requirements: Mapping[str, Any], duration: Any = None, *, wait: bool = False,
        timeout: float | None = None,
    ) -> Allocation:  # fmt: skip
        """Lease ``requirements`` (``{"cpu": 2, "memory": 4096}``) to ``agent_id``. With ``wait=True``, wait
        (up to ``timeout`` seconds) for the resources to be free instead of failing at once."""
        if isinstance(requirements, Mapping) and isinstance(requirements.get("resources"), Mapping):
            requirements = requirements["resources"]
        if not isinstance(wait, bool):
            raise ValidationError(f"wait must be True or False, got {shown(wait)}", field="wait")
        timeout = check_wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        step = 0
        while True:
            try:
                return self._allocator.allocate(agent_id, requirements, duration)
            except ResourceUnavailableError:
                if not wait or (deadline is not None and time.monotonic() >= deadline):
                    raise
            delay = _WAIT_STEPS[min(step, len(_WAIT_STEPS) - 1)]
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            step += 1

    def release_resources(self, allocation: Allocation | str) -> bool:
        return self._allocator.release(allocation)

    def pool(self) -> PoolStatus:
        """Capacity, what is held, what is free, and every live lease."""
        runtime = self.runtime
        if (server := server_of(runtime)) is not None:
            return PoolStatus.from_dict(server.ask_server("GET", ("resources",)))
        now = runtime.clock.now()
        capacity = runtime.pool()
        leases = tuple(runtime.read(lambda backend: backend.leases(now)))
        ledger = runtime.store.leases
        shared = frozenset(ledger.shared()) & frozenset(capacity)
        return PoolStatus(capacity, total_held(leases, now), room(capacity, leases, now), leases, shared, ledger.host)

    def get_resource_usage(self, agent_id: str) -> ResourceUsage:
        """What ``agent_id`` was given (its budget, its tasks' leases) beside what it really uses: empty for an
        agent that holds nothing. ``AgentNotFoundError`` for an id that is neither a registered agent nor the
        holder of a lease."""
        agent_id = _agent_id(agent_id)
        if (server := server_of(self.runtime)) is not None:
            return ResourceUsage.from_dict(server.ask_server("GET", ("agents", agent_id, "resources")))
        runtime = self.runtime
        now = runtime.clock.now()
        mine = [lease for lease in runtime.read(lambda backend: backend.leases(now)) if lease.holder == agent_id]
        registered = known_agent_ids(runtime)
        if agent_id not in registered and not mine:
            raise AgentNotFoundError(agent_id, registered, hint="`pepper leases` lists who holds resources.")
        budget = total_held([lease for lease in mine if lease.kind is LeaseKind.BUDGET], now)
        held = total_held(mine, now)  # tasks inside the budget count only for what they hold beyond it
        by_tasks = {name: amount - budget.get(name, 0.0) for name, amount in held.items()}
        measured = ResourceMonitor(runtime).get_usage(agent_id) if agent_id in registered else _unmeasured(agent_id)
        return ResourceUsage(
            agent_id,
            Resources(budget),
            Resources({n: a for n, a in by_tasks.items() if a > 1e-9}),
            measured,
            tuple(mine),
        )


#: The most alerts a server lists in one answer (``GET /api/v1/alerts``).
_SERVED_ALERTS = 1_000


class ResourceMonitor(AlertSource):
    """Real measurements of agents (CPU %, memory MB, storage MB) and alerts on them."""

    source = "resources"
    rule_prefix = "resource"

    def get_usage(self, agent_id: str, metrics: Any = ("cpu", "memory", "storage")) -> AgentUsage:
        """The agent's usage now (if it runs here) or as its worker last measured it; ``usage["cpu"]``."""
        runtime = self.runtime
        names = check_metrics(metrics)
        if (server := server_of(runtime)) is not None:
            found = server.ask_server("GET", ("agents", agent_id, "usage"), params={"metrics": ",".join(names)})
            return AgentUsage.from_dict(found)
        if not _known(runtime, agent_id):
            raise AgentNotFoundError(agent_id, known_agent_ids(runtime))
        usage = runtime.measure(agent_id)
        return AgentUsage(usage.agent_id, usage.sampled_at, {m: usage.measurements[m] for m in names}, usage.worker_id)

    def set_alert(
        self, agent_id: str, metric: str, threshold: float, callback: Callable[[Alert], Any], *, above: bool = True,
        hysteresis: float | None = None, cooldown: float = 0.0,
    ) -> str:  # fmt: skip
        """Call ``callback(alert)`` (sync or async) once each time ``metric`` crosses ``threshold``; returns the
        rule id. It fires again only after the value came back by ``hysteresis`` (default 10%)."""
        runtime = self.runtime
        (name,) = check_metrics([metric])
        value: ValueOf | None = None  # by default, the measured usage of the rule's subject
        if server_of(runtime) is not None:
            agent_id = _agent_id(agent_id)
            self.get_usage(agent_id, [name])  # the server knows the agent, or says which agents it knows

            def measured(rule: AlertRule, now: float) -> float | None:  # as the agent's worker last measured it
                return self.get_usage(agent_id, [name]).measurements[name].value

            value = measured
        elif not _known(runtime, agent_id):
            raise AgentNotFoundError(agent_id, known_agent_ids(runtime))
        return self._watch(name, threshold, callback, value=value, subject=agent_id, above=above,
                           hysteresis=hysteresis, cooldown=cooldown)  # fmt: skip

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Alerts that fired, newest first (at most ``limit``, from 1 to 1,000,000; over a server, at most the
        1,000 newest)."""
        check_limit(limit)
        if (server := server_of(self.runtime)) is not None:
            found = server.ask_server("GET", ("alerts",), params={"limit": min(limit, _SERVED_ALERTS)})
            return [dict(item) for item in found["items"]]
        return [{**a, "above": bool(a["above"])} for a in self.runtime.store.alerts.recent(limit)]


def _stored(runtime: Runtime, lease_id: str) -> bool:
    """Whether a lease whose grant was reported failed was stored all the same (the connection broke as the
    database committed): then it is granted, and its caller must know it to give it back."""
    try:
        runtime.store.leases.get(lease_id)
    except (AllocationNotFoundError, StoreBusyError):
        return False
    return True


def _known(runtime: Runtime, agent_id: str) -> bool:
    return agent_id in known_agent_ids(runtime)


def _unmeasured(agent_id: str) -> AgentUsage:
    reason = "no running worker has this agent"
    return AgentUsage(agent_id, None, {m: Measurement(None, unit, reason) for m, unit in METRICS.items()})
