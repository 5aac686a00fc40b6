"""The API's docs page in a real browser, cut off from everything but the server: it draws every operation."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser.conftest import Dashboard


def test_the_docs_page_draws_the_operations_with_nothing_but_the_server(dashboard: Dashboard) -> None:
    page = dashboard.page("write")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    server = urlsplit(dashboard.url).netloc
    elsewhere: list[str] = []

    def offline(route: object) -> None:  # any request for another host fails, as it would on an offline machine
        url = route.request.url  # type: ignore[attr-defined]
        if urlsplit(url).netloc == server or url.startswith("data:"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            elsewhere.append(url)
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", offline)
    response = page.goto("/api/v1/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock-summary-path")
    paths = {p.inner_text().replace("\u200b", "") for p in page.locator(".opblock-summary-path").all()}
    assert {"/api/v1/tasks", "/api/v1/runs", "/api/v1/health"} <= paths
    assert page.locator(".opblock").count() >= 25
    dashboard.shot(page, "api-docs")
    assert elsewhere == []
    assert errors == []
    page.context.close()


def test_a_change_tried_out_from_the_docs_page_passes_the_csrf_check(dashboard: Dashboard) -> None:
    page = dashboard.page("write")
    page.goto("/api/v1/docs")
    cancel = page.locator(".opblock-post", has=page.locator(".opblock-summary-path", has_text="/cancel")).filter(
        has_text="/api/v1/tasks/"
    )
    cancel.locator(".opblock-summary").click()
    cancel.locator("button.try-out__btn").click()
    cancel.locator("input[placeholder='task_id']").fill("no-such-task")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/tasks/no-such-task/cancel")) as answer:
        cancel.locator("button.execute").click()
    # not 403 (a change sent with the session cookie but without the CSRF token): the call went through
    assert answer.value.status == 404
    assert answer.value.json()["error"]["type"] == "TaskNotFoundError"
    page.context.close()
