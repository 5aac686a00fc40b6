"""The dashboard's lists in a real browser: the Tasks page searches every task, its pager goes on past a task
pruned meanwhile, and the Runs page pages through every run."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.browser.conftest import PATIENCE, Dashboard, expect

TINY = {"name": "tiny", "steps": [{"id": "only", "type": "echo", "inputs": {"n": 1}}]}


def _shown(page: Any, table: str) -> list[str]:
    return page.locator(f"#{table} tbody tr td:first-child a").all_inner_texts()


def test_the_id_search_finds_a_task_older_than_the_first_page(dashboard: Dashboard, clean_console: None) -> None:
    mark = uuid.uuid4().hex[:8]
    with dashboard.api() as client:
        old = [{"id": f"old-{mark}-{n:03}", "type": "nobody-takes-this"} for n in range(5)]
        new = [{"id": f"new-{mark}-{n:03}", "type": "nobody-takes-this"} for n in range(60)]
        client.post("/api/v1/tasks", json={"tasks": old})
        client.post("/api/v1/tasks", json={"tasks": new})  # the first page of 50 holds none of the old ones
    page = dashboard.page("read")
    page.goto(f"/tasks?q=old-{mark}-000")
    page.wait_for_selector("#tasks")
    assert _shown(page, "tasks") == [f"old-{mark}-000"]
    page.fill("#task-filters input[name=q]", f"OLD-{mark}")
    page.click("#task-filters button[type=submit]")
    page.wait_for_url(re.compile(rf"q=OLD-{mark}"))
    expect(page.locator("#tasks tbody tr")).to_have_count(5)
    assert _shown(page, "tasks") == [f"old-{mark}-{n:03}" for n in range(4, -1, -1)]
    page.context.close()


def test_the_older_page_goes_on_after_its_last_task_was_pruned(dashboard: Dashboard, clean_console: None) -> None:
    mark = uuid.uuid4().hex[:8]
    ids = [f"pp-{mark}-{n:02}" for n in range(52)]  # newest first, the first page ends at the third oldest
    with dashboard.api() as client:
        tasks = [{"id": i, "type": "echo" if n == 2 else "nobody-takes-this"} for n, i in enumerate(ids)]
        client.post("/api/v1/tasks", json={"tasks": tasks})
        assert client.get(f"/api/v1/tasks/{ids[2]}", params={"wait": PATIENCE}).json()["state"] == "completed"
    page = dashboard.page("read")
    page.goto(f"/tasks?q=pp-{mark}")
    page.wait_for_selector("#tasks")
    assert _shown(page, "tasks")[-1] == ids[2]
    assert dashboard.runtime.store.prune(dashboard.runtime.clock.now() + 1)["tasks"] >= 1
    page.click("nav.pager a:text('older ⟶')")
    expect(page.locator("#tasks tbody tr")).to_have_count(2)
    assert _shown(page, "tasks") == [ids[1], ids[0]]
    expect(page.locator("nav.pager a:text('⟵ newest')")).to_be_visible()
    page.context.close()


def test_the_runs_page_pages_through_every_run(dashboard: Dashboard, clean_console: None) -> None:
    with dashboard.api() as client:
        started = {client.post("/api/v1/runs", json={"workflow": TINY}).json()["run_id"] for _ in range(51)}
        every = set()
        cursor = None
        while True:  # the runs there are (this module's server holds no other)
            answer = client.get("/api/v1/runs", params={"limit": 1000, "cursor": cursor}).json()
            every |= {r["run_id"] for r in answer["items"]}
            if not (cursor := answer["next_cursor"]):
                break
    assert started <= every
    page = dashboard.page("read")
    page.goto("/runs")
    page.wait_for_selector("#runs")
    first = _shown(page, "runs")
    assert len(first) == 50 and len(every) == 51
    page.click("nav.pager a:text('older ⟶')")
    expect(page.locator("nav.pager a:text('⟵ newest')")).to_be_visible()
    assert _shown(page, "runs") == sorted(every - set(first))
    expect(page.locator("nav.pager a:text('older ⟶')")).to_have_count(0)
    page.context.close()
