"""Opening a runtime's store: pepper's home folder, the database, and this host's resource pools in it."""

from __future__ import annotations

from pathlib import Path

from pepper.core.config import make_home_for_db
from pepper.engine.usage import host_of, machine_capacity
from pepper.model.settings import Settings
from pepper.store.location import open_store
from pepper.store.sql_store import SqlStore


def open_runtime_store(settings: Settings, *, create: bool) -> SqlStore:
    """The store ``settings`` name, its leases taken on this host; ``create``: the home folder is made if the
    database lives in it, a missing database is created, and this host's pools are recorded."""
    if create:
        make_home_for_db(settings)
    store = open_store(settings.db, busy_timeout=settings.busy_timeout, synchronous=settings.synchronous, create=create)
    store.leases.host = host_of(settings)  # leases are taken on this host; its pools are the ones seen
    if create:  # a runtime that writes makes sure the pool is known
        try:
            _ensure_pools(store, settings)
        except BaseException:
            store.close()
            raise
    return store


def _ensure_pools(store: SqlStore, settings: Settings) -> None:
    """Record this host's pool if none is (or resources are configured), and the configured shared pools."""
    configured = settings.resources.to_dict() if settings.resources is not None else None
    # configured resources go over the machine's: `{gpu = 1}` adds a GPU, keeping cpu and memory
    capacity = machine_capacity(Path(settings.home)) | (configured or {})
    store.leases.ensure_pool(capacity, replace=configured is not None)
    if settings.shared_resources:
        store.leases.ensure_shared(settings.shared_resources.to_dict())
