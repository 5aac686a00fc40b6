"""The dead-letter queue and the leases are read page by page over HTTP, as every list is, and a runtime connected
to the server reads every page: past the first thousand, it answers as a local runtime does."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.core import ErrorHandler, ResourceAllocator, TaskOrchestrator
from pepper.http.app import create_app
from pepper.http.lists import MAX_LIMIT
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token
from pepper.model.lease import Lease, LeaseKind
from pepper.model.resources import Resources
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from pepper.store.protocol import TaskSave, WriteSet
from tests.conftest import FAST
from tests.http.conftest import PATIENCE, httpx

#: More than one page holds.
MANY = MAX_LIMIT + 5


@dataclass
class Served:
    url: str
    token: str
    runtime: pepper.Runtime

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=PATIENCE)


def _park_and_lease(runtime: pepper.Runtime) -> None:
    """``MANY`` parked tasks (all parked at one time: their ids order them) and ``MANY`` leases to `leaser`
    (granted ten at a time) and three to `other`, each in one transaction."""
    ids = [f"dl-{i:04d}" for i in range(MANY)]
    TaskOrchestrator(runtime).submit_tasks([{"task_id": task_id, "task_type": "nobody"} for task_id in ids])
    store, now = runtime.store, time.time()
    error = TaskError("RuntimeError", "broken on purpose")
    records = store.get_tasks(ids).values()
    parked = [replace(r, state=TaskState.PARKED, parked_at=now, error=error, attempts=1) for r in records]
    store.commit(WriteSet(saves=[TaskSave.of(r, r.version) for r in parked]), runtime.worker_id, now)
    leases = [
        Lease(f"alloc-{holder}-{i:04d}", holder, LeaseKind.BUDGET, Resources({"cpu": 0.0005}), now + i // 10, None)
        for holder, count in (("leaser", MANY), ("other", 3))
        for i in range(count)
    ]
    with store.transaction() as conn:
        assert store.leases.grant_in(conn, leases, now) == {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("pages")
    runtime = pepper.Runtime(db=str(folder / "pepper.db"), home=str(folder / "home"), **FAST)
    _park_and_lease(runtime)
    runtime.start()
    token = create_token(runtime.store, "test-pages", "write", time.time())
    server = ThreadedServer(create_app(runtime))
    try:
        yield Served(server.start(), token, runtime)
    finally:
        server.stop()
        runtime.close()


def _pages(http: httpx.Client, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Each page of the list at ``path``, following ``next_cursor`` to the last."""
    pages, cursor = [], None
    while True:
        answer = http.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        pages.append(answer.json()["items"])
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return pages


def test_the_dead_letter_queue_and_the_leases_page_past_a_thousand_oldest_first(served: Served) -> None:
    with served.client() as http:
        dlq = _pages(http, "/api/v1/dlq")
        assert [len(p) for p in dlq] == [MAX_LIMIT, 5]
        assert [s["task_id"] for p in dlq for s in p] == [f"dl-{i:04d}" for i in range(MANY)]
        assert [len(p) for p in _pages(http, "/api/v1/dlq", limit=400)] == [400, 400, 205]
        everyone = [lease["lease_id"] for p in _pages(http, "/api/v1/leases") for lease in p]
        assert len(everyone) == len(set(everyone)) == MANY + 3
        leaser = _pages(http, "/api/v1/leases", agent_id="leaser", limit=995)  # a page ends among equal times
        assert [lease["lease_id"] for p in leaser for lease in p] == [f"alloc-leaser-{i:04d}" for i in range(MANY)]
        assert all(lease["agent_id"] == "leaser" for p in leaser for lease in p)
        for path in ("/api/v1/dlq", "/api/v1/leases"):
            unbounded = [base64.urlsafe_b64encode(key.encode()).decode() for key in ('[NaN, "x"]', '[1e999, "x"]')]
            for cursor in ("not-ours", "WyJ4Il0", *unbounded):  # not base64 of a key; of the wrong shape; no time
                refused = http.get(path, params={"cursor": cursor})
                assert refused.status_code == 400, refused.text
                assert refused.json()["error"]["field"] == "cursor"


def test_a_remote_runtime_reads_every_page_as_a_local_one_does(served: Served) -> None:
    local_parked = {s.task_id for s in ErrorHandler(served.runtime).dead_letters()}
    local_leases = {a.lease_id for a in ResourceAllocator(served.runtime).allocations()}
    with pepper.connect(served.url, served.token) as remote:
        assert {s.task_id for s in ErrorHandler(remote).dead_letters()} == local_parked
        assert {a.lease_id for a in ResourceAllocator(remote).allocations()} == local_leases
        leaser = ResourceAllocator(remote).allocations("leaser")
        assert len(leaser) == MANY and {a.holder for a in leaser} == {"leaser"}
    assert len(local_parked) == MANY and len(local_leases) == MANY + 3


def test_a_task_leaving_the_queue_between_two_pages_moves_no_other_one(served: Served) -> None:
    with served.client() as http:
        first = http.get("/api/v1/dlq", params={"limit": 10}).json()
        gone = first["items"][3]["task_id"]
        assert http.post(f"/api/v1/dlq/{gone}/replay", json={}).json()["replayed"]
        second = http.get("/api/v1/dlq", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [s["task_id"] for s in second["items"]] == [f"dl-{i:04d}" for i in range(10, 20)]


def test_replaying_all_over_a_connection_replays_every_parked_task(served: Served) -> None:
    parked = {s.task_id for s in ErrorHandler(served.runtime).dead_letters()}
    assert len(parked) > MAX_LIMIT
    with pepper.connect(served.url, served.token) as remote:
        handler = ErrorHandler(remote)
        assert set(handler.replay(all=True)) == parked
        assert handler.dead_letters() == []
    assert ErrorHandler(served.runtime).dead_letters() == []
    states = {s.state for s in TaskOrchestrator(served.runtime).list_tasks(limit=MANY)}
    assert TaskState.PARKED not in states
