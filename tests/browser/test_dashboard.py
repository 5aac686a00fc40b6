"""The dashboard in a real browser: sign in, every page, the live run page, and the actions a user takes."""

from __future__ import annotations

import re
import uuid

from tests.browser.conftest import PATIENCE, Dashboard, expect

PAGES = {
    "overview": ("/", "#health"),
    "agents": ("/agents", "#agents"),
    "tasks": ("/tasks", "#task-filters"),
    "runs": ("/runs", "h1"),
    "dead-letters": ("/dead-letters", "h1"),
    "resources": ("/resources", "h1"),
}
WORKFLOW = """name: small
steps:
  - id: fetch
    type: echo
    inputs: {n: 1}
  - id: build
    type: echo
    needs: fetch
  - id: check
    type: echo
    needs: fetch
  - id: ship
    type: echo
    needs: [build, check]
"""


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_signing_in_sets_an_httponly_strict_cookie_and_no_token_in_the_url(
    dashboard: Dashboard, clean_console: None
) -> None:
    page = dashboard.page("write")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["pepper_session"]["httpOnly"] and cookies["pepper_session"]["sameSite"] == "Strict"
    assert not cookies["pepper_csrf"]["httpOnly"]
    assert dashboard.tokens["write"] not in page.url
    page.click("#sign-out")
    page.wait_for_url(re.compile(r"/sign-in$"))
    assert "pepper_session" not in {c["name"] for c in page.context.cookies()}
    page.context.close()


def test_every_page_draws_at_1280_and_800_pixels_with_the_security_headers(
    dashboard: Dashboard, clean_console: None
) -> None:
    for width in (1280, 800):
        page = dashboard.page("write", width=width)
        for name, (path, ready) in PAGES.items():
            response = page.goto(path)
            assert response is not None
            headers = response.headers
            assert "default-src 'self'" in headers["content-security-policy"]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
            page.wait_for_selector(ready)
            page.wait_for_selector("main:not(:has(> p.muted:only-child))")
            dashboard.shot(page, f"{name}-{width}")
        page.context.close()


def test_a_run_started_from_the_page_turns_completed_without_reloading(
    dashboard: Dashboard, clean_console: None
) -> None:
    gate = _id("gate")
    workflow = WORKFLOW.replace(
        "type: echo\n    needs: fetch\n  - id: check",
        f"type: gated\n    inputs: {{gate: {gate}}}\n    needs: fetch\n  - id: check",
    )
    page = dashboard.page("write")
    page.goto("/runs")
    page.fill("#workflow-text", workflow)
    page.click("#start-run button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    page.wait_for_selector("svg.dag")
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator('g[data-step="build"] rect')).to_have_class(
        re.compile("st-in_progress"), timeout=PATIENCE * 1000
    )
    dashboard.shot(page, "run-live")
    dashboard.gates[gate].set()
    expect(page.locator("#run-state .badge")).to_have_text("completed", timeout=PATIENCE * 1000)
    for step in ("fetch", "build", "check", "ship"):
        expect(page.locator(f'g[data-step="{step}"] rect')).to_have_class(re.compile("st-completed"))
    expect(page.locator("#gantt rect.bar.st-completed")).to_have_count(4, timeout=PATIENCE * 1000)
    assert page.evaluate("window.stillTheSamePage") is True
    dashboard.shot(page, "run")
    page.context.close()


def test_a_slow_task_is_cancelled_from_its_page(dashboard: Dashboard, clean_console: None) -> None:
    task_id = _id("slow")
    with dashboard.api() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "gated", "inputs": {"gate": task_id}})
    page = dashboard.page("write")
    page.goto(f"/tasks/{task_id}")
    page.click("#cancel-task")
    expect(page).to_have_title(re.compile("Task"))
    expect(page.locator("h1 .badge")).to_have_text("cancelled", timeout=PATIENCE * 1000)
    dashboard.shot(page, "task-cancelled")
    dashboard.gates[task_id].set()
    page.context.close()


def test_a_failing_step_shows_its_traceback(dashboard: Dashboard, clean_console: None) -> None:
    with dashboard.api() as client:
        run_id = client.post(
            "/api/v1/runs", json={"workflow": {"name": "fails", "steps": [{"id": "boom", "type": "break"}]}}
        ).json()["run_id"]
        client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE})
    page = dashboard.page("write")
    page.goto(f"/runs/{run_id}")
    page.click('g[data-step="boom"]')
    page.wait_for_url(re.compile(r"/tasks/[^/]+%2Fboom$"))  # the whole id as one segment
    traceback = page.locator("#errors pre.traceback").first
    expect(traceback).to_contain_text("RuntimeError: broken on purpose")
    expect(traceback).to_contain_text("Traceback")
    dashboard.shot(page, "task-failed")
    page.context.close()


def test_a_dead_letter_is_replayed_from_the_page(dashboard: Dashboard, clean_console: None) -> None:
    task_id = _id("parked")
    with dashboard.api() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "break", "policy": "dead_letter"})
        assert client.get(f"/api/v1/tasks/{task_id}", params={"wait": PATIENCE}).json()["state"] == "parked"
        page = dashboard.page("write")
        page.goto("/dead-letters")
        row = page.locator("#dead-letters tr", has_text=task_id)
        dashboard.shot(page, "dead-letters-parked")
        row.locator("button.replay").click()
        expect(page.locator("p.notice")).to_contain_text("Replay: done")
        again = client.get(f"/api/v1/tasks/{task_id}", params={"wait": PATIENCE}).json()
    assert again["state"] == "parked" and again["attempts"] == 2  # it ran again (and broke again)
    page.context.close()


def test_the_agents_page_shows_load_while_tasks_run(dashboard: Dashboard, clean_console: None) -> None:
    gate = _id("load")
    with dashboard.api() as client:
        ids = [f"{gate}-{i}" for i in range(2)]
        for task_id in ids:
            client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "gated", "inputs": {"gate": gate}})
        page = dashboard.page("write")
        page.goto("/agents")
        row = page.locator("#agents tr", has_text="gated")
        expect(row).to_contain_text("2 / 4 running", timeout=PATIENCE * 1000)
        dashboard.shot(page, "agents-busy")
        dashboard.gates[gate].set()
        expect(row).to_contain_text("0 / 4 running", timeout=PATIENCE * 1000)
    page.context.close()


def test_a_read_token_sees_no_action_and_forged_actions_are_refused(dashboard: Dashboard, clean_console: None) -> None:
    task_id = _id("watched")
    with dashboard.api() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "gated", "inputs": {"gate": task_id}})
    reader = dashboard.page("read")
    reader.goto("/runs")
    reader.wait_for_selector("h1")
    assert reader.locator("#start-run").count() == 0
    reader.goto(f"/tasks/{task_id}")
    reader.wait_for_selector("h1 .badge")
    assert reader.locator("#cancel-task").count() == 0
    reader.goto("/dead-letters")
    reader.wait_for_selector("h1")
    assert reader.locator("main button").count() == 0
    forged = """async ([path, header]) => {
        const csrf = document.cookie.split('; ').find((c) => c.startsWith('pepper_csrf=')).split('=')[1];
        const headers = {'Content-Type': 'application/json'};
        if (header) headers['X-CSRF-Token'] = csrf;
        const r = await fetch(path, {method: 'POST', headers, body: '{}'});
        return r.status;
    }"""
    cancel = f"/api/v1/tasks/{task_id}/cancel"
    assert reader.evaluate(forged, [cancel, True]) == 403  # a read token may not, CSRF token or not
    writer = dashboard.page("write")
    assert writer.evaluate(forged, [cancel, False]) == 403  # the cookie alone is not enough
    with dashboard.api() as client:
        assert client.get(f"/api/v1/tasks/{task_id}").json()["state"] != "cancelled"
    assert writer.evaluate(forged, [cancel, True]) == 200  # the page's own request, with the header
    dashboard.gates[task_id].set()
    dashboard.console.clear()  # the refused requests are logged by the browser, as they should be
    reader.context.close()
    writer.context.close()


def test_a_step_waiting_for_approval_is_approved_from_the_run_page(dashboard: Dashboard, clean_console: None) -> None:
    approver = "test-write"  # the write token's name: the one who decides from the dashboard
    workflow = {
        "name": "approved",
        "steps": [
            {"id": "fetch", "type": "echo", "inputs": {"n": 1}},
            {"id": "gate", "needs": "fetch", "approval": {"timeout": "1h", "approvers": [approver]}},
            {"id": "ship", "type": "echo", "needs": "gate"},
        ],
    }
    with dashboard.api() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": workflow}).json()["run_id"]
    reader = dashboard.page("read")
    reader.goto(f"/runs/{run_id}")
    expect(reader.locator("#approval-gate")).to_contain_text(f"waits for approval by {approver}")
    assert reader.locator("#approve-gate").count() == 0  # a read token sees who it waits for, not the buttons
    page = dashboard.page("write")
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#decider-gate")).to_have_text(f"deciding as {approver}")
    assert page.locator("#approval-gate input[name=by]").count() == 0  # never typed in: the token says who
    page.fill("#approval-gate input[name=reason]", "checked by hand")
    dashboard.shot(page, "run-waiting-for-approval")
    page.click("#approve-gate")
    expect(page.locator("#run-state .badge")).to_have_text("completed", timeout=PATIENCE * 1000)
    with dashboard.api() as client:
        gate = client.get(f"/api/v1/runs/{run_id}/approvals").json()["approvals"][0]
    assert (gate["decision"], gate["decided_by"], gate["reason"]) == ("approved", approver, "checked by hand")


def test_a_tasks_page_shows_what_its_attempt_logged(dashboard: Dashboard, clean_console: None) -> None:
    import pepper

    if "talker" not in {a.spec.agent_id for a in dashboard.runtime.agents()}:

        @pepper.agent("talker", task_types=["talk"], runtime=dashboard.runtime)
        def talker(task: pepper.TaskRun) -> object:
            task.log("<b>not markup</b> but text")
            return None

    task_id = _id("talk")
    with dashboard.api() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "talk"})
        client.get(f"/api/v1/tasks/{task_id}", params={"wait": PATIENCE})
    page = dashboard.page("read")
    page.goto(f"/tasks/{task_id}")
    log = page.locator("#task-log")
    expect(log).to_contain_text("INFO task: <b>not markup</b> but text")
    assert page.locator("#task-log b").count() == 0  # shown as text, never as HTML
    page.context.close()
