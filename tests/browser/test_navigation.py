"""Moving on while a page still loads: the page asked for last is the one shown, and the one left behind, once
loaded, stops its live stream at once (it is not on screen)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.browser.conftest import PATIENCE, Dashboard, expect

#: Every EventSource the app opens, kept where the test can read it (installed before the app loads).
_TRACK_STREAMS = """(() => {
  const Original = window.EventSource;
  window.streams = [];
  window.EventSource = function (url, options) {
    const source = new Original(url, options);
    window.streams.push(source);
    return source;
  };
  window.EventSource.prototype = Original.prototype;
})();"""

_GO = "(path) => { history.pushState({}, '', path); dispatchEvent(new PopStateEvent('popstate')); }"


def test_a_page_left_while_it_loads_neither_draws_over_the_next_nor_keeps_its_stream(
    dashboard: Dashboard, clean_console: None
) -> None:
    gate = f"gate-{uuid.uuid4().hex[:8]}"
    with dashboard.api() as api:
        workflow = {"name": "held", "steps": [{"id": "wait", "type": "gated", "inputs": {"gate": gate}}]}
        run_id = api.post("/api/v1/runs", json={"workflow": workflow}).json()["run_id"]
    page = dashboard.page("write")
    page.add_init_script(_TRACK_STREAMS)
    page.goto("/")
    page.wait_for_selector("#health")
    held: list[Any] = []  # the run page's reads, answered only once another page is on screen
    released = False

    def hold(route: Any) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route(f"**/api/v1/runs/{run_id}**", hold)
    with page.expect_request(lambda request: f"/api/v1/runs/{run_id}" in request.url):
        page.evaluate(_GO, f"/runs/{run_id}")
    page.click('#nav a[href="/dead-letters"]')
    expect(page.locator("h1")).to_have_text("Dead letters")
    released = True
    for route in held:
        route.continue_()
    mine = f"run={run_id}"
    page.wait_for_function(f"() => window.streams.some((s) => s.url.includes('{mine}'))", timeout=PATIENCE * 1000)
    page.wait_for_function(  # closed as soon as the run page has loaded
        f"() => window.streams.filter((s) => s.url.includes('{mine}')).every((s) => s.readyState === 2)", timeout=5000
    )
    expect(page.locator("h1")).to_have_text("Dead letters")
    assert page.url.endswith("/dead-letters")
    dashboard.gates[gate].set()
    page.context.close()
