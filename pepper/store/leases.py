"""The pool and its leases, measured usage, and alerts, as stored (one log each).

Grants happen inside a write transaction that first reads every live lease,
so two processes (or threads) allocating at once can never exceed the pool, nor
an agent's budget: a task running inside its agent's budget holds a lease of it too.

Pools are kept per host: machine resources (cpu, memory, storage, gpu, ...) are a
pool of each host, and pools stored under host ``'*'`` are shared by the whole
cluster. A ledger sees the pool from its own host: that host's machine pools
plus the shared ones, and the leases that count there (its own host's in full,
other hosts' only for the shared pools).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pepper.errors import AllocationNotFoundError, ConfigError, LeaseEndedError, ResourceUnavailableError
from pepper.model import codec
from pepper.model.lease import Lease, Tally
from pepper.model.resources import Resources, describe, describe_shortfall

if TYPE_CHECKING:
    from pepper.store.sql_store import Connection, SqlStore


#: The host of the pools every host shares.
SHARED = "*"
#: The host of pools and leases stored before pools were kept per host (claimed by the first writer).
UNCLAIMED = ""


def shortfall_message(missing: Mapping[str, float], capacity: Mapping[str, float]) -> str:
    """``cpu short by 1.5 cores (pool: cpu 2 cores)``."""
    return f"{describe_shortfall(missing)} (pool: {describe(capacity)})"


def pool_seen(rows: Iterable[codec.Row]) -> tuple[dict[str, float], set[str]]:
    """The pool as one host sees it (from ``pool_here`` rows), and which of its resources are shared."""
    machine: dict[str, float] = {}
    shared: dict[str, float] = {}
    for row in rows:
        (shared if row["host"] == SHARED else machine)[row["resource"]] = row["capacity"]
    return machine | shared, set(shared)  # a shared pool wins over a machine row of the same name


def leases_counting(rows: Iterable[codec.Row], host: str, shared: set[str], now: float) -> list[Lease]:
    """The live leases (from ``unreleased_leases`` rows) that count on ``host``: its own in full, other
    hosts' only for the shared pools they hold."""
    counting = []
    for row in rows:
        lease = Lease.from_row(row)
        if not lease.live(now):
            continue
        if row["host"] != host:
            part = {name: amount for name, amount in lease.resources.items() if name in shared}
            if not part:
                continue
            lease = replace(lease, resources=Resources(part))
        counting.append(lease)
    return counting


class LeaseLedger:
    """Reads and writes of the ``pool`` and ``leases`` tables, as seen from one host (``host``)."""

    def __init__(self, store: SqlStore, host: str | None = None) -> None:
        self._store = store
        self._q = store.statements
        #: The host this ledger's leases are taken on (the runtime sets its configured host id).
        self.host = host or socket.gethostname()

    # -- the pool ----------------------------------------------------------------------

    def pool(self) -> dict[str, float]:
        """This host's machine pools and the shared pools, per resource."""
        return pool_seen(self._store.query("pool_here", (self.host,)))[0]

    def shared(self) -> dict[str, float]:
        """The pools every host shares, per resource."""
        return {row["resource"]: row["capacity"] for row in self._store.query("pool_of_host", (SHARED,))}

    def largest(self) -> dict[str, float]:
        """Per resource, the most one host could ever grant: the largest machine pool of any host, or the
        shared pool (what a submitter on any host checks a task against)."""
        most: dict[str, float] = {}
        for row in self._store.query("every_pool"):
            most[row["resource"]] = max(most.get(row["resource"], 0.0), row["capacity"])
        return most

    def ensure_pool(self, capacity: Mapping[str, float], replace: bool) -> dict[str, float]:
        """Store ``capacity`` as this host's machine pools if asked to replace, or if none is stored yet;
        return the stored ones. Pools stored before pools were kept per host become this host's first. Reads
        first: when the stored pools are already those, nothing is written (a busy or read-only database is not
        needed for opening a store)."""
        store, q = self._store, self._q
        stored = {row["resource"]: row["capacity"] for row in store.query("pool_of_host", (self.host,))}
        if stored and (not replace or stored == dict(capacity)):
            return stored
        with store.transaction() as conn:
            stored = {row["resource"]: row["capacity"] for row in conn.execute(q["pool_of_host"], (self.host,))}
            if not stored and conn.execute(q["pool_of_host"], (UNCLAIMED,)).fetchone() is not None:
                conn.execute(q["claim_pool"], (self.host,))
                conn.execute(q["claim_leases"], (self.host,))
                stored = {row["resource"]: row["capacity"] for row in conn.execute(q["pool_of_host"], (self.host,))}
            if replace or not stored:
                _refuse_clash(capacity, {r["resource"] for r in conn.execute(q["pool_of_host"], (SHARED,))})
                conn.execute(q["clear_pool_of_host"], (self.host,))
                conn.executemany(q["set_pool"], [(self.host, name, capacity[name]) for name in sorted(capacity)])
                stored = dict(capacity)
        return stored

    def ensure_shared(self, capacity: Mapping[str, float]) -> dict[str, float]:
        """Store (or resize) the pools every host shares; pools not named stay as they are. Returns them all
        (and writes nothing when they are stored as named already)."""
        store, q = self._store, self._q
        shared = {row["resource"]: row["capacity"] for row in store.query("pool_of_host", (SHARED,))}
        if all(shared.get(name) == amount for name, amount in capacity.items()):
            return shared
        with store.transaction() as conn:
            _refuse_clash(capacity, {r["resource"] for r in conn.execute(q["pool_of_host"], (self.host,))})
            conn.executemany(q["set_pool"], [(SHARED, name, amount) for name, amount in sorted(capacity.items())])
            return {row["resource"]: row["capacity"] for row in conn.execute(q["pool_of_host"], (SHARED,))}

    # -- leases ------------------------------------------------------------------------

    def live(self, now: float) -> list[Lease]:
        """Every lease held at ``now`` that counts on this host (other hosts' leases: their shared part)."""
        return self.pool_and_live(now)[1]

    def pool_and_live(self, now: float) -> tuple[dict[str, float], list[Lease]]:
        """``pool()`` and ``live(now)`` together, the pool read once."""
        pool, shared = pool_seen(self._store.query("pool_here", (self.host,)))
        return pool, leases_counting(self._store.query("unreleased_leases"), self.host, shared, now)

    def seen_from(self, host: str, now: float) -> tuple[dict[str, float], Tally]:
        """The pool as ``host`` sees it, and what the live leases counting there hold of it and of each
        agent's budget."""
        capacity, shared = pool_seen(self._store.query("pool_here", (host,)))
        return capacity, Tally(leases_counting(self._store.query("unreleased_leases"), host, shared, now))

    def get(self, lease_id: str) -> Lease:
        rows = self._store.query("lease_by_id", (lease_id,))
        if not rows:
            raise AllocationNotFoundError(lease_id)
        return Lease.from_row(rows[0])

    def grant(self, lease: Lease, now: float) -> Lease:
        """Store ``lease`` if the pool has room for all of it now; else ``ResourceUnavailableError``."""
        self._grant(lease, now, once=False)
        return lease

    def grant_once(self, lease: Lease, now: float) -> bool:
        """Like ``grant``, but a lease whose id is already stored counts as granted before: False then,
        True if this call granted it."""
        return self._grant(lease, now, once=True)

    def _grant(self, lease: Lease, now: float, *, once: bool) -> bool:
        store = self._store
        with store.transaction() as conn:
            if once and conn.execute(self._q["lease_by_id"], (lease.lease_id,)).fetchone() is not None:
                return False
            refused = self.grant_in(conn, [lease], now)
        if refused:
            missing = refused[lease.lease_id]
            capacity = self.pool()
            raise ResourceUnavailableError(
                f"cannot allocate to {lease.holder!r}: {shortfall_message(missing, capacity)}", missing
            )
        return True

    def grant_in(self, conn: Connection, leases: Sequence[Lease], now: float) -> dict[str, dict[str, float]]:
        """Within an open write transaction: store each lease that fits; the refused ones with what was short."""
        refused = self.refused_in(conn, leases, now)
        self.insert_in(conn, [lease for lease in leases if lease.lease_id not in refused])
        return refused

    def insert_in(self, conn: Connection, leases: Sequence[Lease]) -> None:
        """Within an open write transaction: store leases already checked with ``refused_in``."""
        if leases:
            conn.executemany(self._q["insert_lease"], [(*lease.to_row(), self.host) for lease in leases])

    def refused_in(self, conn: Connection, leases: Sequence[Lease], now: float) -> dict[str, dict[str, float]]:
        """Within an open write transaction: which of ``leases``, taken in order, the pool (or, for a task inside
        its agent's budget, that budget) has no room for (lease id -> what was short). Nothing is written."""
        if not leases:
            return {}
        capacity, shared = pool_seen(conn.execute(self._q["pool_here"], (self.host,)))
        # A lease stored already is one of these, taken by a commit reported failed that went through all the
        # same (the connection broke as it committed): it does not stand in its own way.
        taking = {lease.lease_id for lease in leases}
        stored = leases_counting(conn.execute(self._q["unreleased_leases"]), self.host, shared, now)
        tally = Tally(lease for lease in stored if lease.lease_id not in taking)
        refused: dict[str, dict[str, float]] = {}
        for lease in leases:
            missing = self._missing(tally, capacity, lease)
            if missing:
                refused[lease.lease_id] = missing
            else:
                tally.add(lease)
        return refused

    @staticmethod
    def _missing(tally: Tally, capacity: Mapping[str, float], lease: Lease) -> dict[str, float]:
        """What ``lease`` lacks: a task's lease inside its agent's budget needs room there; any other lease needs
        room in the pool for what it adds to what the leases hold of it."""
        if lease.in_budget:
            return lease.resources.shortfall(tally.budget_room(lease.holder))
        held = tally.held()
        missing = {}
        for name, grows in tally.growth(lease).items():
            free = max(0.0, capacity.get(name, 0.0) - held.get(name, 0.0))
            if grows > free + 1e-9:
                missing[name] = grows - free
        return missing

    def release(self, lease_id: str, now: float) -> bool:
        """Give a lease back; True if this call released it (False: it already was, or had expired: it ended
        then, and is recorded so). Unknown ids raise."""
        lease = self.get(lease_id)
        if lease.expires_at is not None and lease.expires_at <= now:  # an expired lease is never renewed
            self._store.execute("release_lease", (lease.expires_at, lease_id))
            return False
        return self._store.execute("release_lease", (now, lease_id)) == 1

    def release_in(self, conn: Connection, lease_ids: Iterable[str], now: float) -> None:
        conn.executemany(self._q["release_lease"], [(now, lid) for lid in lease_ids])

    def renew(self, lease_id: str, expires_at: float | None, now: float) -> Lease:
        """Move a live lease's expiry to ``expires_at`` (``None``: until released)."""
        lease = self.get(lease_id)
        if self._store.execute("renew_lease", (expires_at, lease_id, now)) != 1:
            how = "was released" if lease.released_at is not None else "has expired"
            raise LeaseEndedError(lease_id, how)
        return self.get(lease_id)

    def release_worker(self, worker_id: str, now: float) -> int:
        """Give back every lease a (stopped or dead) worker held."""
        return self._store.execute("release_worker_leases", (now, worker_id))

    def reap_expired(self, now: float) -> int:
        """Mark expired leases released (they already stopped counting)."""
        return self._store.execute("reap_expired_leases", (now,))


def _refuse_clash(capacity: Mapping[str, float], others: set[str]) -> None:
    """A resource is either a machine pool of each host or one shared pool, never both."""
    both = sorted(set(capacity) & others)
    if both:
        raise ConfigError(
            f"{', '.join(both)} cannot be both a machine resource and a shared pool; name "
            "it in either resources or shared_resources",
            field="shared_resources",
        )


class UsageLog:
    """Reads and writes of the ``usage_samples`` table: resource usage workers measured, per agent."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def save(self, samples: Iterable[tuple[str, str, float, str]]) -> None:
        """Store ``(agent, worker, sampled_at, usage)`` samples, each usage as its JSON text."""
        rows = list(samples)
        if rows:
            self._store.write_alone("save_usage", rows)

    def of_agent(self, agent_id: str) -> list[tuple[str, float, dict[str, Any]]]:
        """``(worker_id, sampled_at, usage)`` for each worker that measured the agent, newest first."""
        return [
            (row["worker_id"], row["sampled_at"], codec.decode(row["usage"]))
            for row in self._store.query("usage_of_agent", (agent_id,))
        ]


class AlertLog:
    """Reads and writes of the ``alerts`` table: alerts that fired."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def record(self, row: tuple[Any, ...]) -> None:
        """Store a fired alert (``Alert.to_row()``)."""
        self._store.execute("insert_alert", row)

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest alerts, newest first."""
        return [dict(row) for row in self._store.query("recent_alerts", (limit,))]

    def after(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to ``limit`` alerts stored after the one numbered ``seq``, in the order they were stored (their
        ``seq``: a number is never given again, even once its alert is pruned)."""
        return [dict(row) for row in self._store.query("alerts_after", (seq, limit))]

    def last_seq(self) -> int:
        """The number of the last alert stored (0: none is); every alert stored later has a larger one."""
        return int(self._store.query("last_alert_seq")[0][0])
