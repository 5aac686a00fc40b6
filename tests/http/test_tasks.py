"""Tasks over HTTP: submit, list, follow, wait, result, cancel, feedback, errors."""

from __future__ import annotations

import uuid

from tests.http.conftest import Api


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_submit_one_answers_201_with_its_status(api: Api) -> None:
    with api.client() as client:
        answer = client.post("/api/v1/tasks", json={"task_id": _id("one"), "type": "echo", "inputs": {"n": 1}})
    assert answer.status_code == 201
    assert answer.json()["task_type"] == "echo"
    assert answer.json()["state"] in ("pending", "in_progress", "completed")


def test_submit_many_stores_all_or_none(api: Api) -> None:
    a, b = _id("a"), _id("b")
    with api.client() as client:
        both = client.post(
            "/api/v1/tasks", json={"tasks": [{"id": a, "type": "echo"}, {"id": b, "type": "echo", "needs": [a]}]}
        )
        broken = client.post("/api/v1/tasks", json={"tasks": [{"id": _id("c"), "type": "echo"}, {"id": _id("d")}]})
        listed = client.get("/api/v1/tasks", params={"task_type": "echo", "limit": 1000}).json()["items"]
    assert both.status_code == 201
    assert [s["task_id"] for s in both.json()["items"]] == [a, b]
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "ValidationError"
    assert not [s for s in listed if s["task_id"].startswith(("c-", "d-"))]


def test_a_batch_answers_each_status_as_stored_and_one_task_says_why_it_waits(api: Api) -> None:
    ids = [_id("queued") for _ in range(3)]
    with api.client() as client:
        batch = client.post("/api/v1/tasks", json={"tasks": [{"id": i, "type": "nobody-takes-this"} for i in ids]})
        one = client.post("/api/v1/tasks", json={"task_id": _id("alone"), "task_type": "nobody-takes-this"})
        asked = client.get(f"/api/v1/tasks/{ids[-1]}").json()
    assert batch.status_code == 201 and one.status_code == 201
    items = batch.json()["items"]
    assert [(s["task_id"], s["state"]) for s in items] == [(i, "pending") for i in ids]
    assert all(s["created_at"] is not None and s["waiting_on"] == [] for s in items)  # reading the backlog is left out
    assert one.json()["waiting_on"] and asked["waiting_on"]  # what one task's answer and GET say


def test_a_duplicate_with_another_spec_is_409_and_a_cycle_400(api: Api) -> None:
    task_id = _id("dup")
    with api.client() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "nobody-takes-this"})
        again = client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "nobody-takes-this"})
        other = client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "something-else"})
        x, y = _id("x"), _id("y")
        cycle = client.post("/api/v1/tasks", json={"tasks": [{"id": x, "type": "echo", "needs": [y]},
                                                             {"id": y, "type": "echo", "needs": [x]}]})  # fmt: skip
    assert again.status_code == 201
    assert other.status_code == 409 and other.json()["error"]["type"] == "DuplicateTaskError"
    assert cycle.status_code == 400 and cycle.json()["error"]["type"] == "CycleError"
    assert cycle.json()["error"]["field"] == "dependencies"


def test_bad_input_is_400_or_422_never_500(api: Api) -> None:
    with api.client() as client:
        unknown = client.post("/api/v1/tasks", json={"task_type": "echo", "colour": "red"})
        not_json = client.post("/api/v1/tasks", content=b"{nope", headers={"content-type": "application/json"})
        a_list = client.post("/api/v1/tasks", json=[1, 2])
        as_form = client.post("/api/v1/tasks", content=b'{"task_type": "echo"}',  # curl -d without -H
                              headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        bad_limit = client.get("/api/v1/tasks", params={"limit": 5000})
        bad_state = client.get("/api/v1/tasks", params={"state": "sleeping"})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "colour"
    assert not_json.status_code == 422 and not_json.json()["error"]["type"] == "ValidationError"
    assert not_json.json()["error"]["field"] == "body"
    assert not_json.json()["error"]["message"].startswith("the body is not JSON (Expecting property name")
    assert a_list.status_code == 422 and a_list.json()["error"]["message"] == "body: Input should be a valid dictionary"
    assert as_form.status_code == 422 and as_form.json()["error"]["field"] == "body"
    assert as_form.json()["error"]["message"] == ("the body was sent with Content-Type "
                                                  "'application/x-www-form-urlencoded'; send it as JSON with "
                                                  "Content-Type: application/json")  # fmt: skip
    assert bad_limit.status_code == 400 and "from 1 to 1000, got 5000" in bad_limit.json()["error"]["message"]
    assert bad_state.status_code == 400 and bad_state.json()["error"]["field"] == "state"


def test_lists_go_page_by_page_with_a_cursor(api: Api) -> None:
    kind = _id("paged")
    ids = [f"{kind}/{n}" for n in range(5)]
    with api.client() as client:
        client.post("/api/v1/tasks", json={"tasks": [{"id": i, "type": kind} for i in ids]})
        seen, cursor, pages = [], None, 0
        while True:
            answer = client.get("/api/v1/tasks", params={"task_type": kind, "limit": 2, "cursor": cursor}).json()
            seen += [s["task_id"] for s in answer["items"]]
            pages += 1
            cursor = answer["next_cursor"]
            if cursor is None:
                break
        garbage = client.get("/api/v1/tasks", params={"cursor": "%%%"})
    assert seen == ids[::-1]
    assert pages == 3
    assert garbage.status_code == 400 and garbage.json()["error"]["field"] == "cursor"


def test_status_says_what_a_task_waits_on_and_unknown_ids_are_404(api: Api) -> None:
    task_id = _id("lonely/step")  # an id with a slash
    with api.client() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "nobody-takes-this"})
        status = client.get(f"/api/v1/tasks/{task_id}")
        missing = client.get("/api/v1/tasks/no-such-task")
    assert status.status_code == 200
    assert status.json()["task_id"] == task_id
    assert status.json()["waiting_on"]
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "TaskNotFoundError"


def test_result_is_409_until_the_task_ends_then_200(api: Api) -> None:
    task_id = _id("gated")
    api.gate.clear()
    try:
        with api.client() as client:
            client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "gated"})
            early = client.get(f"/api/v1/tasks/{task_id}/result")
            api.gate.set()
            waited = client.get(f"/api/v1/tasks/{task_id}", params={"wait": 30})
            late = client.get(f"/api/v1/tasks/{task_id}/result")
    finally:
        api.gate.set()
    assert early.status_code == 409 and early.json()["error"]["type"] == "ConflictError"
    assert waited.json()["state"] == "completed"
    assert late.status_code == 200
    assert late.json() == {"task_id": task_id, "state": "completed", "result": {"opened": True}}


def test_cancel_cancels_a_waiting_task_once(api: Api) -> None:
    task_id = _id("cancel")
    with api.client() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "nobody-takes-this"})
        first = client.post(f"/api/v1/tasks/{task_id}/cancel", json={"reason": "not needed"})
        second = client.post(f"/api/v1/tasks/{task_id}/cancel")
        result = client.get(f"/api/v1/tasks/{task_id}/result")
    assert first.status_code == 200
    assert first.json()["cancelled"] is True
    assert first.json()["status"]["state"] == "cancelled"
    assert second.json()["cancelled"] is False
    assert result.status_code == 409 and result.json()["error"]["type"] == "TaskCancelledError"


def test_feedback_rates_a_finished_task(api: Api) -> None:
    task_id = _id("rated")
    with api.client() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "echo"})
        client.get(f"/api/v1/tasks/{task_id}", params={"wait": 30})
        rated = client.post(f"/api/v1/tasks/{task_id}/feedback", json={"rating": 5, "comment": "neat"})
        bad = client.post(f"/api/v1/tasks/{task_id}/feedback", json={"rating": 9})
    assert rated.status_code == 201
    assert rated.json()["rating"] == 5 and rated.json()["task_id"] == task_id
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "rating"


def test_errors_lists_a_failed_tasks_errors(api: Api) -> None:
    task_id = _id("broken")
    with api.client() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "break"})
        ended = client.get(f"/api/v1/tasks/{task_id}", params={"wait": 30}).json()
        errors = client.get(f"/api/v1/tasks/{task_id}/errors").json()
        result = client.get(f"/api/v1/tasks/{task_id}/result")
    assert ended["state"] == "failed"
    assert errors["next_cursor"] is None
    assert "broken on purpose" in errors["items"][0]["message"]
    assert result.status_code == 409 and result.json()["error"]["type"] == "TaskFailedError"


def test_runs_go_page_by_page_with_a_cursor(api: Api) -> None:
    workflow = {"name": "tiny", "steps": [{"id": "only", "type": "echo", "inputs": {"text": "x"}}]}
    with api.client() as client:
        started = [client.post("/api/v1/runs", json={"workflow": workflow}).json()["run_id"] for _ in range(3)]
        seen, cursor = [], None
        while True:
            answer = client.get("/api/v1/runs", params={"limit": 2, "cursor": cursor}).json()
            seen += [item["run_id"] for item in answer["items"]]
            cursor = answer["next_cursor"]
            if cursor is None:
                break
        assert set(started) <= set(seen) and len(seen) == len(set(seen))
        assert client.get("/api/v1/runs", params={"state": "nonsense"}).status_code == 422


def test_submit_takes_a_delay_or_a_time_and_refuses_a_bad_one(api: Api) -> None:
    later, fixed = _id("later"), _id("fixed")
    with api.client() as client:
        delayed = client.post("/api/v1/tasks", json={"task_id": later, "type": "echo", "delay": "1h"})
        at = client.post("/api/v1/tasks", json={"task_id": fixed, "type": "echo", "not_before": "2099-01-01T00:00:00Z"})
        naive = client.post("/api/v1/tasks", json={"type": "echo", "not_before": "2099-01-01T00:00:00"})
        both = client.post("/api/v1/tasks", json={"type": "echo", "delay": 5, "not_before": "2099-01-01T00:00:00Z"})
        negative = client.post("/api/v1/tasks", json={"type": "echo", "delay": "-5s"})
        far = client.post("/api/v1/tasks", json={"type": "echo", "not_before": "9999-12-31T23:00:00-05:00"})
        huge = client.post("/api/v1/tasks", json={"type": "echo", "not_before": 1e300})
    assert delayed.status_code == 201 and delayed.json()["state"] == "pending"
    assert [w["kind"] for w in delayed.json()["waiting_on"]] == ["delay"]
    assert at.status_code == 201 and at.json()["not_before"] == 4070908800.0
    for refused in (naive, both, negative, far, huge):
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "InvalidDelayError"


def test_every_list_refuses_a_limit_out_of_range_with_the_words_of_the_python_api(api: Api) -> None:
    lists = ["/api/v1/tasks", "/api/v1/runs", "/api/v1/agents", "/api/v1/dlq", "/api/v1/leases", "/api/v1/alerts"]
    with api.client("read") as reader:
        for path in lists:
            for limit in (0, -2, 1001):
                answer = reader.get(path, params={"limit": limit})
                assert answer.status_code == 400, (path, limit, answer.text)
                said = f"limit must be a whole number from 1 to 1000, got {limit}"
                assert answer.json()["error"] == {"type": "ValidationError", "field": "limit", "message": said}, path
            assert reader.get(path, params={"limit": 1000}).status_code == 200, path
        described = reader.get("/api/v1/openapi.json").json()["paths"]["/api/v1/tasks"]["get"]["parameters"]
    (limit,) = [p for p in described if p["name"] == "limit"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)  # still described to clients
