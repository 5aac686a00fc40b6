"""A database described for people: which store, its schema version, its size and what it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pepper.model.task import TaskState
from pepper.store import catalog
from pepper.store.sql_store import SqlStore


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """What ``pepper db info`` reports. Sizes are in MB (``wal_mb`` is SQLite's write-ahead log, None elsewhere);
    ``workers_alive`` counts the workers not stopped whose last heartbeat is recent."""

    kind: str
    location: str
    schema_version: int
    latest_schema: int
    size_mb: float | None
    wal_mb: float | None
    tasks: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    workers_alive: int = 0
    agents: int = 0

    @property
    def task_count(self) -> int:
        return sum(self.tasks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "location": self.location,
            "schema_version": self.schema_version,
            "latest_schema": self.latest_schema,
            "size_mb": self.size_mb,
            "wal_mb": self.wal_mb,
            "tasks": {"total": self.task_count, **self.tasks},
            "runs": self.runs,
            "workers_alive": self.workers_alive,
            "agents": self.agents,
        }


def database_info(store: SqlStore, now: float, visibility_timeout: float) -> DatabaseInfo:
    """Describe ``store``'s database; a worker silent for longer than ``visibility_timeout`` is not alive."""
    sizes_of = getattr(store, "file_sizes_mb", None)  # each database measures itself its own way
    sizes = sizes_of() if sizes_of is not None else (None, None)
    by_state = store.count_by_state()
    alive = [w for w in store.workers.live() if w.heartbeat_at >= now - visibility_timeout]
    ids = {w.worker_id for w in alive}
    return DatabaseInfo(
        kind=store.kind,
        location=catalog.location(store),
        schema_version=catalog.schema_version(store),
        latest_schema=catalog.latest_schema(store),
        size_mb=sizes[0],
        wal_mb=sizes[1],
        tasks={state.value: by_state[state.value] for state in TaskState if by_state.get(state.value)},
        runs=catalog.count(store, "runs"),
        workers_alive=len(alive),
        agents=sum(1 for agent in store.workers.agents() if agent.worker_id in ids),
    )
