"""Approving a step over HTTP: the decision, the scope it needs, the token's name as the one who decides (never a
name the request claims), typed 4xx answers that change nothing, and a remote client (``pepper.connect``)
deciding the same way."""

from __future__ import annotations

import time

import pytest

import pepper
from pepper.core import WorkflowController
from pepper.errors import ImpersonationError
from pepper.http.tokens import create_token
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


@pytest.fixture(scope="module")
def approver_token(api: Api) -> str:
    """A write token named as the gate's approver (an e-mail address is a valid token name)."""
    return create_token(api.runtime.store, APPROVER, "write", time.time())


def _as(api: Api, token: str):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE)


def test_a_step_is_approved_once_with_a_write_token_and_the_run_completes(api: Api, approver_token: str) -> None:
    with api.client() as client, _as(api, approver_token) as approver:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
        _waiting(api, run_id)
        listed = client.get(f"/api/v1/runs/{run_id}/approvals").json()["approvals"]
        with api.client("read") as reader:
            too_small = reader.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"by": APPROVER})
        approved = approver.post(
            f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "approve", "by": APPROVER, "reason": "ok"}
        )
        again = approver.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "reject"})
        ended = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()

    assert listed[0]["approvers"] == [APPROVER] and listed[0]["decision"] is None
    assert too_small.status_code == 403 and too_small.json()["error"]["type"] == "ScopeError"
    assert approved.status_code == 200, approved.text
    decision = approved.json()["approval"]
    assert decision["decision"] == "approved" and decision["decided_by"] == APPROVER
    assert again.status_code == 409 and again.json()["error"]["type"] == "NotWaitingError"
    assert ended["state"] == "completed"


def test_bad_approvals_are_typed_4xx_and_change_nothing(api: Api, approver_token: str) -> None:
    with api.client() as client, _as(api, approver_token) as approver:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
        _waiting(api, run_id)
        unknown_run = client.post("/api/v1/runs/nope/steps/gate/approve", json={})
        unknown_step = client.post(f"/api/v1/runs/{run_id}/steps/gaet/approve", json={})
        not_a_gate = client.post(f"/api/v1/runs/{run_id}/steps/first/approve", json={})
        stranger = client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"by": "test-write"})
        default_by = client.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={})  # the token's name
        bad_body = approver.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "maybe"})
        assert api.runtime.store.approvals.get(f"{run_id}/gate").waiting
        rejected = approver.post(
            f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "reject", "reason": "no"}
        )
        ended = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()

    assert (unknown_run.status_code, unknown_run.json()["error"]["type"]) == (404, "RunNotFoundError")
    assert (unknown_step.status_code, unknown_step.json()["error"]["type"]) == (404, "StepNotFoundError")
    assert "its steps: first, gate, last" in unknown_step.json()["error"]["message"]
    assert (not_a_gate.status_code, not_a_gate.json()["error"]["type"]) == (409, "NotWaitingError")
    assert (stranger.status_code, stranger.json()["error"]["type"]) == (403, "NotApproverError")
    assert f"{APPROVER}; 'test-write' is not among them" in stranger.json()["error"]["message"]
    assert default_by.status_code == 403 and "'test-write'" in default_by.json()["error"]["message"]
    assert bad_body.status_code in (400, 422)
    assert rejected.status_code == 200 and rejected.json()["approval"]["decision"] == "rejected"
    assert rejected.json()["approval"]["decided_by"] == APPROVER
    assert ended["state"] == "failed"


@pytest.mark.parametrize("scope", ["write", "admin"])
def test_a_token_cannot_decide_in_the_name_of_an_approver(api: Api, approver_token: str, scope: str) -> None:
    # Given a step only the approver may decide, and a token (write, or even admin) of another name
    with api.client() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
    _waiting(api, run_id)
    with api.client(scope) as other:
        # When it sends the approver's name as `by`, then it is refused, saying who decides over HTTP
        gate = f"/api/v1/runs/{run_id}/steps/gate/approve"
        claimed = other.post(gate, json={"decision": "approve", "by": APPROVER})
        refused_reject = other.post(gate, json={"decision": "reject", "by": APPROVER})
    assert (claimed.status_code, claimed.json()["error"]["type"]) == (403, "ImpersonationError")
    message = claimed.json()["error"]["message"]
    assert f"the token's name 'test-{scope}'" in message and f"'by' names '{APPROVER}'" in message
    assert f"--name {APPROVER}" in message
    assert refused_reject.status_code == 403
    # And nothing was decided: the approver's own token still decides, and is the one recorded
    assert api.runtime.store.approvals.get(f"{run_id}/gate").waiting
    with _as(api, approver_token) as approver:
        decided = approver.post(f"/api/v1/runs/{run_id}/steps/gate/approve", json={"decision": "approve"})
    assert decided.status_code == 200 and decided.json()["approval"]["decided_by"] == APPROVER


def test_a_remote_client_approves_through_the_server_as_its_token(api: Api, approver_token: str) -> None:
    with api.client() as client:
        run_id = client.post("/api/v1/runs", json={"workflow": GATED}).json()["run_id"]
    _waiting(api, run_id)
    other = pepper.connect(api.url, token=api.tokens["write"])
    remote = pepper.connect(api.url, token=approver_token)
    try:
        with pytest.raises(ImpersonationError, match="the token's name 'test-write'"):
            WorkflowController(runtime=other).approve(run_id, "gate", by=APPROVER)
        decided = WorkflowController(runtime=remote).approve(run_id, "gate")
    finally:
        other.close()
        remote.close()
    assert decided.decision == "approved" and decided.decided_by == APPROVER
    with api.client() as client:
        assert client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()["state"] == "completed"
