"""The pool and its leases, measured usage, and alerts, as stored (one log each).

Grants happen inside a write transaction that first reads every live lease,
so two processes (or threads) allocating at once can never exceed the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pepper.errors import AllocationNotFoundError, LeaseEndedError, ResourceUnavailableError
from pepper.model import codec
from pepper.model.lease import Lease, room
from pepper.model.resources import describe, describe_shortfall

if TYPE_CHECKING:
    from pepper.store.sql_store import Connection, SqlStore


def shortfall_message(missing: Mapping[str, float], capacity: Mapping[str, float]) -> str:
    """``cpu short by 1.5 cores (pool: cpu 2 cores)``."""
    return f"{describe_shortfall(missing)} (pool: {describe(capacity)})"


class LeaseLedger:
    """Reads and writes of the ``pool`` and ``leases`` tables."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._q = store.statements

    # -- the pool ----------------------------------------------------------------------

    def pool(self) -> dict[str, float]:
        return {row["resource"]: row["capacity"] for row in self._store.query("pool")}

    def ensure_pool(self, capacity: Mapping[str, float], replace: bool) -> dict[str, float]:
        """Store ``capacity`` if asked to replace, or if no pool is stored yet; return the stored pool."""
        store = self._store
        with store.transaction() as conn:
            stored = {row["resource"]: row["capacity"] for row in conn.execute(self._q["pool"])}
            if replace or not stored:
                conn.execute(self._q["clear_pool"])
                conn.executemany(self._q["set_pool"], sorted(capacity.items()))
                stored = dict(capacity)
        return stored

    # -- leases ------------------------------------------------------------------------

    def live(self, now: float) -> list[Lease]:
        """Every lease held at ``now``."""
        return [lease for lease in map(Lease.from_row, self._store.query("unreleased_leases")) if lease.live(now)]

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
            conn.executemany(self._q["insert_lease"], [lease.to_row() for lease in leases])

    def refused_in(self, conn: Connection, leases: Sequence[Lease], now: float) -> dict[str, dict[str, float]]:
        """Within an open write transaction: which of ``leases``, taken in order, the pool has no room for
        (lease id -> what was short). Nothing is written."""
        if not leases:
            return {}
        capacity = {row["resource"]: row["capacity"] for row in conn.execute(self._q["pool"])}
        live = [lease for lease in map(Lease.from_row, conn.execute(self._q["unreleased_leases"])) if lease.live(now)]
        free = room(capacity, live, now)
        refused: dict[str, dict[str, float]] = {}
        for lease in leases:
            missing = lease.resources.shortfall(free)
            if missing:
                refused[lease.lease_id] = missing
                continue
            for name, amount in lease.resources.items():
                free[name] -= amount
        return refused

    def release(self, lease_id: str, now: float) -> bool:
        """Give a lease back; True if this call released it (False: it already was). Unknown ids raise."""
        self.get(lease_id)
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


class UsageLog:
    """Reads and writes of the ``usage_samples`` table: resource usage workers measured, per agent."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def save(self, samples: Iterable[tuple[str, str, float, Mapping[str, Any]]]) -> None:
        """Store ``(agent, worker, sampled_at, usage)`` samples."""
        rows = [(agent, worker, at, codec.encode(dict(usage))) for agent, worker, at, usage in samples]
        if rows:
            store = self._store
            with store.transaction() as conn:
                conn.executemany(store.statement("save_usage"), rows)

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
