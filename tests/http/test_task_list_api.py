"""The list of tasks over HTTP: searched by id on the server, over every task, and paged by a cursor that goes on
from where its task was once that task is pruned."""

from __future__ import annotations

import uuid
from typing import Any

import pepper
from pepper.core import TaskOrchestrator
from pepper.http.lists import encode_cursor
from tests.http.conftest import PATIENCE, Api, httpx


def _all_pages(client: httpx.Client, **params: Any) -> tuple[list[str], int]:
    """The ids of every page from the first on, and how many pages there were."""
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        answer = client.get("/api/v1/tasks", params={**params, "cursor": cursor})
        assert answer.status_code == 200, answer.text
        seen += [t["task_id"] for t in answer.json()["items"]]
        pages += 1
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return seen, pages


def test_the_id_search_finds_any_task_not_only_the_newest_page(api: Api) -> None:
    mark = uuid.uuid4().hex[:8]
    bulk = [f"bulk-{mark}-{n:03}" for n in range(60)]
    with api.client() as client:
        client.post("/api/v1/tasks", json={"tasks": [{"id": i, "type": "nobody-takes-this"} for i in bulk]})
        client.post("/api/v1/tasks", json={"id": f"Needle_{mark}", "type": "nobody-takes-this"})
        oldest = client.get("/api/v1/tasks", params={"id_contains": f"BULK-{mark}-000", "limit": 50}).json()
        needle = client.get("/api/v1/tasks", params={"id_contains": f"needle_{mark}"}).json()
        wildcard = client.get("/api/v1/tasks", params={"id_contains": f"needle%{mark}"}).json()
        every, pages = _all_pages(client, id_contains=f"-{mark}-0", limit=25)
        read = client.get("/api/v1/tasks", params={"id_contains": mark, "limit": 1000, "state": "completed"}).json()
        empty = client.get("/api/v1/tasks", params={"id_contains": ""})
        long = client.get("/api/v1/tasks", params={"id_contains": "x" * 201})
    assert [t["task_id"] for t in oldest["items"]] == [bulk[0]] and oldest["next_cursor"] is None
    assert [t["task_id"] for t in needle["items"]] == [f"Needle_{mark}"]
    assert wildcard["items"] == []  # "%" is itself
    assert every == bulk[::-1] and pages == 3
    assert read["items"] == []
    for refused in (empty, long):
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "id_contains"


def test_a_cursor_goes_on_after_its_task_was_pruned(api: Api) -> None:
    mark = uuid.uuid4().hex[:8]
    kinds = ["idle", "idle", "idle", "echo", "idle", "idle"]  # the fourth one ends and is pruned
    ids = [f"pruned-{mark}-{n}" for n in range(len(kinds))]
    with api.client() as client:  # one batch: all submitted at the same time, so only its order tells them apart
        client.post("/api/v1/tasks", json={"tasks": [{"id": i, "type": k} for i, k in zip(ids, kinds, strict=True)]})
        assert client.get(f"/api/v1/tasks/{ids[3]}", params={"wait": PATIENCE}).json()["state"] == "completed"
        first = client.get("/api/v1/tasks", params={"id_contains": mark, "limit": 3}).json()
        assert [t["task_id"] for t in first["items"]] == ids[:2:-1]
        assert api.runtime.store.prune(api.runtime.clock.now() + 1)["tasks"] >= 1
        assert client.get(f"/api/v1/tasks/{ids[3]}").status_code == 404
        rest = client.get("/api/v1/tasks", params={"id_contains": mark, "limit": 3, "cursor": first["next_cursor"]})
        by_id = client.get("/api/v1/tasks", params={"cursor": encode_cursor(ids[3])})  # a cursor of its id alone
        forged = client.get("/api/v1/tasks", params={"cursor": encode_cursor(f"{ids[3]}\nsoon")})
    assert rest.status_code == 200, rest.text
    assert [t["task_id"] for t in rest.json()["items"]] == ids[2::-1] and rest.json()["next_cursor"] is None
    assert by_id.status_code == 404 and by_id.json()["error"]["type"] == "TaskNotFoundError"
    assert forged.status_code == 400 and forged.json()["error"]["field"] == "cursor"


def test_a_remote_list_searches_on_the_server_and_pages_past_a_pruned_task(api: Api) -> None:
    mark = uuid.uuid4().hex[:8]
    remote = pepper.connect(api.url, token=api.tokens["write"])
    try:
        orchestrator = TaskOrchestrator(runtime=remote)
        for n, kind in enumerate(["idle", "echo", "idle"]):  # one at a time: each its own submission time
            orchestrator.submit_task(f"remote-{mark}-{n}", kind)
        orchestrator.wait(f"remote-{mark}-1", timeout=PATIENCE)
        first = orchestrator.list_tasks(limit=2, id_contains=f"REMOTE-{mark}")
        assert [s.task_id for s in first] == [f"remote-{mark}-2", f"remote-{mark}-1"]
        api.runtime.store.prune(api.runtime.clock.now() + 1)
        rest = orchestrator.list_tasks(after=first[-1], id_contains=mark)
    finally:
        remote.close()
    assert [s.task_id for s in rest] == [f"remote-{mark}-0"]
