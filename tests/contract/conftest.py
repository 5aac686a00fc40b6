"""The one fixture every store contract test runs through, parametrised over the store implementations.

``store`` is a fresh, empty store; ``open_store`` opens stores onto the same data (for tests of what
survives a restart or is shared between processes: implementations that cannot share are skipped there).
A new implementation joins the suite by adding one entry to ``IMPLEMENTATIONS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pepper.store.location import open_store as open_location
from pepper.store.sql_store import SqlStore

IMPLEMENTATIONS = ("sqlite-file", "sqlite-memory", "postgres")


class StoreOpener:
    """Opens stores of one implementation onto one database; closes them all at the end."""

    def __init__(self, kind: str, location: str) -> None:
        self.kind = kind
        self.path = location
        self.shared = kind != "sqlite-memory"  # every open sees the same data
        self.opened: list[SqlStore] = []

    def __call__(self, busy_timeout: float = 10.0) -> SqlStore:
        store = open_location(self.path, busy_timeout=busy_timeout)
        self.opened.append(store)
        return store

    def python_source(self) -> tuple[str, str]:
        """``(import line, expression)`` that open this database in another Python process."""
        return "from pepper.store.location import open_store", f"open_store({self.path!r})"

    def close_all(self) -> None:
        """Closes every store still open, all at once (a PostgreSQL store's close waits for its change listener)."""
        still_open = [store for store in self.opened if not store.closed]
        if len(still_open) < 2:
            for store in still_open:
                store.close()
            return
        with ThreadPoolExecutor(max_workers=len(still_open)) as pool:
            for closing in [pool.submit(store.close) for store in still_open]:
                closing.result()


@pytest.fixture(params=IMPLEMENTATIONS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    kind = request.param
    if kind == "postgres":
        location = request.getfixturevalue("postgres_url")
    else:
        location = str(tmp_path / "state.db") if kind == "sqlite-file" else ":memory:"
    opener = StoreOpener(kind, location)
    yield opener
    opener.close_all()


@pytest.fixture
def store(open_store: StoreOpener) -> SqlStore:
    return open_store()


@pytest.fixture
def shared_store(open_store: StoreOpener) -> StoreOpener:
    """An opener whose stores share their data (restarts, threads, processes)."""
    if not open_store.shared:
        pytest.skip(f"{open_store.kind} keeps its data in one connection")
    return open_store
