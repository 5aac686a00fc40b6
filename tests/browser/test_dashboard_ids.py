"""The dashboard with ids of every shape, long text, and an event stream that opens late or drops."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from tests.browser.conftest import PATIENCE, Dashboard, expect

#: Ids a task may have that mean something else in a URL: a query, a fragment, an escape, dot segments, a slash.
ODD_IDS = ("a?b", "c#d", "e%41f", "x/../agents", "y/./z", "flow/result")


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _until(page: Any, done: Callable[[], bool], what: str) -> None:
    """Wait (the page's events go on meanwhile) until ``done()``; fail saying ``what`` did not happen."""
    for _ in range(int(PATIENCE * 20)):
        if done():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{what} did not happen within {PATIENCE:g} s")


def _wider_than_the_window(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_the_run_page_reads_the_run_again_each_time_its_event_stream_opens(
    dashboard: Dashboard, clean_console: None
) -> None:
    with dashboard.api() as client:
        workflow = {"name": "late", "steps": [{"id": "gate", "approval": {"timeout": "1h"}}]}
        run_id = client.post("/api/v1/runs", json={"workflow": workflow}).json()["run_id"]
    page = dashboard.page("write")
    streams: list[Any] = []

    def stream(route: Any) -> None:
        # the first stream opens and ends at once (as when the server stops); the next one waits until let go
        streams.append(route)
        if len(streams) == 1:
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body="retry: 20\n\n")

    reads: list[str] = []
    run_url = f"{dashboard.url}/api/v1/runs/{run_id}"
    page.on("requestfinished", lambda r: reads.append(r.url) if r.url == run_url and r.method == "GET" else None)
    page.route("**/api/v1/events*", stream)
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#approval-gate")).to_be_visible()
    # its first read, then another once the stream opened (what changed before it opened is not lost)
    _until(page, lambda: len(streams) >= 2 and len(reads) >= 2, "a read of the run when the stream opened")
    with dashboard.api() as client:
        client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "reject"}).raise_for_status()
        assert client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()["state"] == "failed"
    assert page.inner_text("#run-state") == "running"  # no stream was open to say so
    streams[1].continue_()  # the stream opens again: the page reads the run again and shows its end
    expect(page.locator("#run-state .badge")).to_have_text("failed", timeout=PATIENCE * 1000)
    expect(page.locator("#approvals .approval")).to_have_count(0)
    expect(page.locator("#cancel-run")).to_have_count(0)
    expect(page.locator('g[data-step="gate"] rect')).not_to_have_class(re.compile("st-(blocked|pending|waiting)"))
    page.context.close()


def test_steps_named_like_members_of_every_object_draw_like_any_other(
    dashboard: Dashboard, clean_console: None
) -> None:
    names = ["first", "__proto__", "constructor", "toString", "hasOwnProperty"]
    steps = [{"id": names[0], "type": "echo"}]
    steps += [{"id": name, "type": "echo", "needs": before} for before, name in pairwise(names)]
    with dashboard.api() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": {"name": "members", "steps": steps}}).json()["run_id"]
        assert client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()["state"] == "completed"
    page = dashboard.page("read")
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector("svg.dag")
    drawn = page.eval_on_selector_all(
        "svg.dag g.step", "gs => gs.map(g => [g.dataset.step, Number(g.querySelector('rect').getAttribute('x'))])"
    )
    assert [step for step, _ in drawn] == names
    xs = [x for _, x in drawn]
    assert xs == sorted(set(xs)), f"one column per step of the chain: {drawn}"
    edges = page.eval_on_selector_all("svg.dag path.edge", "ps => ps.map(p => p.getAttribute('d'))")
    assert len(edges) == len(names) - 1 and not any("NaN" in d or "undefined" in d for d in edges), edges
    for name in names:
        expect(page.locator(f'g[data-step="{name}"] rect')).to_have_class(re.compile("st-completed"))
    rows = page.eval_on_selector_all("#steps tbody tr td:first-child", "ts => ts.map(t => t.textContent)")
    assert rows == names
    expect(page.locator("#planned-vs-actual")).to_contain_text(" → ".join(names))
    page.click('g[data-step="constructor"]')
    expect(page.locator("h1 code")).to_have_text(f"{run_id}/constructor")
    page.context.close()


def test_every_link_to_a_task_gives_the_server_its_id_whole(dashboard: Dashboard, clean_console: None) -> None:
    tag = uuid.uuid4().hex[:6]
    odd = [f"{tag}{task_id}" for task_id in ODD_IDS]
    needs = _id("needs-odd")
    with dashboard.api() as client:
        for task_id in odd:
            client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "nowhere"}).raise_for_status()
        client.post(
            "/api/v1/tasks", json={"task_id": needs, "task_type": "nowhere", "dependencies": odd}
        ).raise_for_status()
    page = dashboard.page("read")
    for task_id in odd:
        page.goto(f"/tasks/{needs}")
        link = page.locator("dl.facts a").filter(has_text=re.compile(f"^{re.escape(task_id)}$"))
        assert link.get_attribute("href") == "/tasks/" + quote(task_id, safe="~()*!'")
        link.click()
        expect(page.locator("h1 code")).to_have_text(task_id)
        assert page.url == f"{dashboard.url}/tasks/{quote(task_id, safe='~()*!' + chr(39))}"
        response = page.reload()  # the same URL, shared or reloaded, is the same task
        assert response is not None and response.status == 200
        expect(page.locator("h1 code")).to_have_text(task_id)
    page.goto("/tasks")  # the list links the same way
    for task_id in odd:
        row = page.locator("#tasks a").filter(has_text=re.compile(f"^{re.escape(task_id)}$"))
        assert row.get_attribute("href") == "/tasks/" + quote(task_id, safe="~()*!'")
    page.locator("#tasks a").filter(has_text=re.compile(f"^{re.escape(odd[3])}$")).click()
    expect(page.locator("h1 code")).to_have_text(odd[3])
    page.goto("/tasks/" + odd[-1])  # a URL with the slash bare, as links were once written, still opens it
    expect(page.locator("h1 code")).to_have_text(odd[-1])
    page.context.close()


def test_a_task_page_names_a_run_only_when_the_api_knows_the_task_is_its_step(dashboard: Dashboard) -> None:
    # (no clean console: the browser logs the API's 404 for the run a lookalike id names, as it logs any refusal)
    plain = f"team-{uuid.uuid4().hex[:6]}/build-1"
    shaped = f"lookalike-{uuid.uuid4().hex[:10]}/build-1"  # shaped like a run's step, of no run
    with dashboard.api() as client:
        for task_id in (plain, shaped):
            client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "nowhere"}).raise_for_status()
        run_id = client.post(
            "/api/v1/runs", json={"workflow": {"name": "owner", "steps": [{"id": "only", "type": "echo"}]}}
        ).json()["run_id"]
        client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).raise_for_status()
    page = dashboard.page("read")
    facts = "dl.facts dt"
    for task_id in (plain, shaped):
        page.goto("/tasks/" + quote(task_id, safe=""))
        expect(page.locator("h1 code")).to_have_text(task_id)
        expect(page.locator(facts, has_text="type")).to_have_count(1)
        assert page.locator(facts).all_inner_texts().count("run") == 0
        assert page.locator("dl.facts a[href^='/runs/']").count() == 0
    page.goto("/tasks/" + quote(f"{run_id}/only", safe=""))
    expect(page.locator("dl.facts a[href^='/runs/']")).to_have_text(run_id)
    page.click("dl.facts a[href^='/runs/']")
    expect(page.locator("h1 code")).to_have_text(run_id)
    page.context.close()


def test_long_unbroken_text_wraps_at_800_pixels(dashboard: Dashboard, clean_console: None) -> None:
    long_id = _id("long") + "-" + "i" * 180
    word = "y" * 3000
    step = "s" * 100
    with dashboard.api() as client:
        client.post(
            "/api/v1/tasks", json={"task_id": long_id, "task_type": "echo", "inputs": {"said": word}}
        ).raise_for_status()
        assert client.get(f"/api/v1/tasks/{quote(long_id, safe='')}", params={"wait": PATIENCE}).json()["result"]
        failed = _id("longerr")
        client.post(
            "/api/v1/tasks", json={"task_id": failed, "task_type": "nowhere", "dependencies": [long_id]}
        ).raise_for_status()
        client.post(
            f"/api/v1/tasks/{failed}/handle-error",
            json={"error": {"type": "RuntimeError", "message": word}, "strategy": "abort"},
        ).raise_for_status()
        run_id = client.post(
            "/api/v1/runs", json={"workflow": {"name": "w" * 40, "steps": [{"id": step, "type": "echo"}]}}
        ).json()["run_id"]
        client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).raise_for_status()
    page = dashboard.page("write", width=800)
    pages = {
        f"/tasks/{failed}": "#errors",
        f"/tasks/{quote(long_id, safe='')}": "pre.json",
        "/tasks": "#tasks",
        f"/runs/{run_id}": "#steps",
        "/runs": "#runs",
        "/": "#health",
        "/agents": "#agents",
        "/dead-letters": "main h1",
        "/resources": "main h1",
    }
    for path, ready in pages.items():
        page.goto(path)
        page.wait_for_selector(ready)
        assert _wider_than_the_window(page) <= 0, f"{path} is wider than the window"
    page.goto(f"/tasks/{failed}")
    assert page.locator("#errors summary").first.bounding_box()["width"] <= 800
    dashboard.shot(page, "task-long-error-800")
    page.context.close()
