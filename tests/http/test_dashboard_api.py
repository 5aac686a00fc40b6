"""What the dashboard adds to the server: the session cookie and its CSRF token, the security headers, and the
API figures its pages draw (a run's timeline, the last hour in slices, counts by state)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pepper.http.auth import CSRF_COOKIE, SESSION_COOKIE, csrf_token
from tests.http.conftest import PATIENCE, Api, httpx


@contextmanager
def _signed_in(api: Api, scope: str = "write") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=PATIENCE) as client:
        answer = client.post("/session", data={"token": api.tokens[scope]})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        yield client


def test_signing_in_sets_an_httponly_strict_session_cookie_and_a_readable_csrf_one(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=PATIENCE) as client:
        answer = client.post("/session", data={"token": api.tokens["read"]})
        refused = client.post("/session", data={"token": "pepper_nope"})
        cross_site = client.post(
            "/session", data={"token": api.tokens["read"]}, headers={"Sec-Fetch-Site": "cross-site"}
        )
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    csrf = next(c for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session  # plain http here
    assert "HttpOnly" not in csrf and csrf_token(api.tokens["read"]) in csrf
    assert refused.headers["location"] == "/sign-in?error=token" and "set-cookie" not in refused.headers
    assert cross_site.headers["location"] == "/sign-in?error=origin" and "set-cookie" not in cross_site.headers


def test_the_cookie_reads_but_changes_only_with_the_csrf_header(api: Api) -> None:
    task_id = f"cookie-{uuid.uuid4().hex[:8]}"
    spec = {"task_id": task_id, "task_type": "echo"}
    with _signed_in(api) as client:
        who = client.get("/session").json()
        read = client.get("/api/v1/tasks")
        forged = client.post("/api/v1/tasks", json=spec)
        wrong = client.post("/api/v1/tasks", json=spec, headers={"X-CSRF-Token": "0" * 64})
        sent = client.post("/api/v1/tasks", json=spec, headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]})
        client.post("/session/end")
        after = client.get("/api/v1/tasks")
    assert who == {"name": "test-write", "scope": "write"}
    assert read.status_code == 200
    assert forged.status_code == 403 and forged.json()["error"]["type"] == "AccessDeniedError"
    assert wrong.status_code == 403
    assert sent.status_code == 201
    assert after.status_code == 401


def test_a_page_of_another_site_cannot_sign_the_browser_out(api: Api) -> None:
    with _signed_in(api) as client:
        forged = client.post("/session/end", headers={"Sec-Fetch-Site": "cross-site"})
        forged_origin = client.post("/session/end", headers={"Origin": "http://evil.example"})
        still = client.get("/session")
        own = client.post("/session/end", headers={"Sec-Fetch-Site": "same-origin"})
        after = client.get("/session")
    assert forged.status_code == 403 and forged.json()["error"]["type"] == "AccessDeniedError"
    assert "set-cookie" not in forged.headers and "set-cookie" not in forged_origin.headers
    assert forged_origin.status_code == 403
    assert still.status_code == 200 and still.json()["scope"] == "write"
    assert own.status_code == 200 and own.json() == {"signed_out": True}
    assert after.status_code == 401


def test_a_read_session_may_not_change_anything_even_with_the_csrf_header(api: Api) -> None:
    with _signed_in(api, "read") as client:
        answer = client.post(
            "/api/v1/tasks", json={"task_type": "echo"}, headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
        )
    assert answer.status_code == 403 and answer.json()["error"]["type"] == "ScopeError"


def test_every_page_is_the_shell_with_a_strict_content_security_policy(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=PATIENCE) as client:
        pages = [client.get(path) for path in ("/", "/runs/some-run", "/tasks/a/b", "/sign-in")]
        script = client.get("/static/js/app.js")
    for page in pages:
        assert page.status_code == 200 and '<script type="module" src="/static/js/app.js">' in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_a_run_has_a_timeline_with_every_attempt_and_its_critical_path(api: Api) -> None:
    workflow = {"name": "line", "steps": [{"id": "a", "type": "echo"}, {"id": "b", "type": "echo", "needs": "a"},
                                          {"id": "c", "type": "break", "needs": "a", "retries": 1}]}  # fmt: skip
    with api.client() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": workflow}).json()["run_id"]
        client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE})
        timeline = client.get(f"/api/v1/runs/{run_id}/timeline").json()
        unknown = client.get("/api/v1/runs/no-such-run/timeline")
    attempts = sorted((b["step_id"], b["attempt"], b["status"]) for b in timeline["bars"])
    assert ("c", 1, "failed") in attempts and ("c", 2, "failed") in attempts  # the retried attempt is there too
    assert timeline["dependencies"] == {"a": [], "b": ["a"], "c": ["a"]}
    assert timeline["critical_path"][0] == "a" and len(timeline["critical_path"]) == 2
    assert unknown.status_code == 404


def test_the_last_hour_comes_in_slices_and_counts_by_state(api: Api) -> None:
    with api.client("read") as client:
        series = client.get("/api/v1/performance/series", params={"window": "1h", "points": 6}).json()["items"]
        too_many = client.get("/api/v1/performance/series", params={"points": 1000})
        counts = client.get("/api/v1/counts").json()
    assert len(series) == 6 and series[0]["at"] < series[-1]["at"]
    assert {"throughput", "error_rate", "latency", "completed", "failed"} <= set(series[0])
    assert too_many.status_code == 422
    assert set(counts) == {"tasks", "runs", "parked"}


def test_the_agents_carry_their_score_parts(api: Api) -> None:
    with api.client("read") as client:
        agents = client.get("/api/v1/agents").json()["items"]
    assert all("score_parts" in a for a in agents)
