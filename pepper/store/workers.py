"""Workers (processes running an engine) and the agents they registered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pepper.model import codec
from pepper.model.agent import AgentSpec

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker process as recorded in the database."""

    worker_id: str
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True, slots=True)
class RegisteredAgent:
    """An agent and the worker process that runs it."""

    spec: AgentSpec
    worker_id: str
    hostname: str
    pid: int
    registered_at: float


class WorkerRegistry:
    """Reads and writes of the ``workers`` and ``agents`` tables."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def register(self, worker_id: str, hostname: str, pid: int, now: float) -> None:
        self._store.execute("register_worker", (worker_id, hostname, pid, now, now))

    def heartbeat(self, worker_id: str, now: float) -> bool:
        """Record that the worker is alive; False if it was declared dead meanwhile."""
        return self._store.write_alone("heartbeat", [(now, worker_id)]) == 1

    def revive(self, worker_id: str, now: float) -> None:
        """Mark a worker alive again (it was presumed dead while it was only slow)."""
        self._store.execute("revive_worker", (now, worker_id))

    def stop(self, worker_id: str, now: float) -> bool:
        """Mark a worker stopped and drop its agents; True if this call was the one that did it."""
        store = self._store
        with store.transaction() as conn:
            stopped = conn.execute(store.statement("stop_worker"), (now, worker_id)).rowcount == 1
            conn.execute(store.statement("forget_worker_agents"), (worker_id,))
        return stopped

    def live(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(r["worker_id"], r["hostname"], r["pid"], r["started_at"], r["heartbeat_at"])
            for r in self._store.query("live_workers")
        ]

    def register_agent(self, spec: AgentSpec, worker_id: str, now: float) -> None:
        self._store.execute("register_agent", (spec.agent_id, worker_id, codec.encode(spec.to_dict()), now))

    def unregister_agent(self, agent_id: str, worker_id: str) -> None:
        self._store.execute("unregister_agent", (agent_id, worker_id))

    def signature(self) -> tuple[int, float | None]:
        """What changes when an agent of a live worker comes or goes (without reading the agents)."""
        row = self._store.query("live_agents_signature")[0]
        return int(row["n"]), row["latest"]

    def agents(self, *, besides: str | None = None) -> list[RegisteredAgent]:
        """Agents of live workers, oldest registration first; with ``besides``, those of every worker but it."""
        rows = (
            self._store.query("live_agents")
            if besides is None
            else self._store.query("live_agents_of_others", (besides,))
        )
        return [
            RegisteredAgent(
                AgentSpec.from_dict(codec.decode(r["spec"])),
                r["worker_id"],
                r["hostname"],
                r["pid"],
                r["registered_at"],
            )
            for r in rows
        ]
