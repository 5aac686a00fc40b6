"""Approving a step over HTTP: the decision, the scope it needs, typed 4xx answers that change nothing, and a
remote client (``pepper.connect``) deciding the same way."""

from __future__ import annotations

import pepper
from pepper.core import WorkflowController
from tests.http.conftest import PATIENCE, Api
from tests.support import eventually

APPROVER = "approver@example.com"
GATED = {
    "name": "gated",
    "steps": [
        {"id": "first", "type": "echo", "inputs": {"n": 1}},
        {"id": "gate", "needs": "first", "approval": {"timeout": "1h", "approvers": [APPROVER]}},
        {"id": "last", "type": "echo", "needs": "gate"},
    ],
}


def _waiting(api: Api, run_id: str) -> None:
    eventually(lambda: api.runtime.store.approvals.get(f"{run_id}/gate") is not None, "the approval request")


def test_a_step_is_approved_once_with_a_write_token_and_the_run_completes(api: Api) -> None:
    with api.client() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
        _waiting(api, run_id)
        listed = client.get(f"/api/v1/runs/{run_id}/approvals").json()["approvals"]
        with api.client("read") as reader:
            too_small = reader.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"by": APPROVER})
        approved = client.post(
            f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "approve", "by": APPROVER, "reason": "ok"}
        )
        again = client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "reject", "by": APPROVER})
        ended = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()

    assert listed[0]["approvers"] == [APPROVER] and listed[0]["decision"] is None
    assert too_small.status_code == 403 and too_small.json()["error"]["type"] == "ScopeError"
    assert approved.status_code == 200, approved.text
    decision = approved.json()["approval"]
    assert decision["decision"] == "approved" and decision["decided_by"] == APPROVER
    assert again.status_code == 409 and again.json()["error"]["type"] == "NotWaitingError"
    assert ended["state"] == "completed"


def test_bad_approvals_are_typed_4xx_and_change_nothing(api: Api) -> None:
    with api.client() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
        _waiting(api, run_id)
        unknown_run = client.post("/api/v1/runs/nope/steps/gate/approve", json={})
        unknown_step = client.post(f"/api/v1/runs/{run_id}/steps/gaet/approve", json={})
        not_a_gate = client.post(f"/api/v1/runs/{run_id}/steps/first/approve", json={})
        stranger = client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"by": "other@example.com"})
        default_by = client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={})  # the token's name
        bad_body = client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "maybe"})
        assert api.runtime.store.approvals.get(f"{run_id}/gate").waiting
        rejected = client.post(
            f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "reject", "by": APPROVER, "reason": "no"}
        )
        ended = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()

    assert (unknown_run.status_code, unknown_run.json()["error"]["type"]) == (404, "RunNotFoundError")
    assert (unknown_step.status_code, unknown_step.json()["error"]["type"]) == (404, "StepNotFoundError")
    assert "its steps: first, gate, last" in unknown_step.json()["error"]["message"]
    assert (not_a_gate.status_code, not_a_gate.json()["error"]["type"]) == (409, "NotWaitingError")
    assert (stranger.status_code, stranger.json()["error"]["type"]) == (403, "NotApproverError")
    assert default_by.status_code == 403 and "'test-write'" in default_by.json()["error"]["message"]
    assert bad_body.status_code in (400, 422)
    assert rejected.status_code == 200 and rejected.json()["approval"]["decision"] == "rejected"
    assert ended["state"] == "failed"


def test_a_remote_client_approves_through_the_server(api: Api) -> None:
    with api.client() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
    _waiting(api, run_id)
    remote = pepper.connect(api.url, token=api.tokens["write"])
    try:
        decided = WorkflowController(runtime=remote).approve(run_id, "gate", by=APPROVER)
    finally:
        remote.close()
    assert decided.decision == "approved"
    with api.client() as client:
        assert client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()["state"] == "completed"
