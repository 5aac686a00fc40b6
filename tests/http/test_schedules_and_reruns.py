"""Schedules and re-runs over HTTP."""

from __future__ import annotations

import pepper
from pepper.core import WorkflowController
from tests.http.conftest import PATIENCE, Api

FLOW = {"name": "scheduled", "steps": [{"id": "only", "type": "echo"}]}


def test_schedules_are_added_listed_paused_resumed_and_deleted(api: Api) -> None:
    with api.client() as client:
        added = client.post("/api/v1/schedules", json={"name": "http-nightly", "workflow": FLOW,
                                                       "cron": "0 2 * * *", "timezone": "Europe/Paris"})  # fmt: skip
        listed = client.get("/api/v1/schedules").json()
        paused = client.post("/api/v1/schedules/http-nightly/pause")
        resumed = client.post("/api/v1/schedules/http-nightly/resume")
        bad = client.post("/api/v1/schedules", json={"name": "bad", "workflow": FLOW, "cron": "0 2 * *"})
        both = client.post("/api/v1/schedules", json={"name": "bad", "workflow": FLOW, "cron": "0 2 * * *",
                                                      "every": "1h"})  # fmt: skip
        never = client.post("/api/v1/schedules", json={"name": "never", "workflow": FLOW, "cron": "0 0 30 2 *"})
        read_only = api.client("read").post("/api/v1/schedules", json={"name": "x", "workflow": FLOW, "every": 60})
        deleted = client.delete("/api/v1/schedules/http-nightly")
        missing = client.delete("/api/v1/schedules/http-nightly")
    assert added.status_code == 201 and added.json()["next_fire"].endswith(("CET", "CEST"))
    assert [s["name"] for s in listed] == ["http-nightly"]
    assert paused.json()["paused"] is True and resumed.json()["paused"] is False
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidScheduleError"
    assert both.status_code == 400 and "not both" in both.json()["error"]["message"]
    assert never.status_code == 400 and never.json()["error"]["type"] == "InvalidScheduleError"
    assert "'0 0 30 2 *' never fires" in never.json()["error"]["message"]
    assert read_only.status_code == 403
    assert deleted.status_code == 200
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "ScheduleNotFoundError"
    assert api.runtime.store.schedules.list() == []


def test_a_run_is_rerun_from_a_step_over_http_and_from_a_remote_client(api: Api) -> None:
    with api.client() as client:
        started = client.post("/api/v1/runs", json={"workflow": {
            "name": "rerun-me", "steps": [{"id": "a", "type": "echo"}, {"id": "b", "type": "echo", "needs": ["a"]}]
        }}).json()  # fmt: skip
        run_id = started["run_id"]
        client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE})
        again = client.post(f"/api/v1/runs/{run_id}/rerun", json={"from_step": "b"})
        ended = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()
        unknown = client.post(f"/api/v1/runs/{run_id}/rerun", json={"from_step": "zzz"})
        nothing = client.post(f"/api/v1/runs/{run_id}/rerun")
    assert again.status_code == 200 and again.json()["steps"] == ["b"]
    assert ended["state"] == "completed" and ended["steps"]["b"]["attempts"] == 2
    assert unknown.status_code == 409 and unknown.json()["error"]["type"] == "RerunError"
    assert nothing.status_code == 409
    remote = pepper.connect(api.url, api.tokens["write"])
    try:
        result = WorkflowController(runtime=remote).rerun(run_id, from_step="a", timeout=PATIENCE)
        assert result.status == "completed" and result.steps["a"].attempts == 2
    finally:
        remote.close()


def test_a_rerun_from_a_fan_out_step_is_refused_over_http_and_changes_nothing(api: Api) -> None:
    with api.client() as client:
        started = client.post("/api/v1/runs", json={"workflow": {
            "name": "fanned", "steps": [{"id": "a", "type": "echo"},
                                        {"id": "b", "type": "echo", "needs": ["a"], "for_each": [1, 2]}],
        }}).json()  # fmt: skip
        run_id = started["run_id"]
        before = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()
        refused = client.post(f"/api/v1/runs/{run_id}/rerun", json={"from_step": "b"})
        after = client.get(f"/api/v1/runs/{run_id}").json()
    assert before["state"] == "completed"
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "RerunError"
    assert "step 'b' is a fan-out (for_each)" in refused.json()["error"]["message"]
    assert after["state"] == "completed" and after["steps"]["b"]["attempts"] == before["steps"]["b"]["attempts"]
