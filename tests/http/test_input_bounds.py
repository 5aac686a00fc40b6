"""Small documents that would make the server build something huge are refused, and the server stays well."""

from __future__ import annotations

from pepper.agents.loader import MAX_ALIAS_NODES
from pepper.model.workflow import MAX_EXPECTED_ITEMS
from tests.http.conftest import PATIENCE, Api
from tests.unit.test_input_bounds import SHARED, fan_out, laughs

YAML = {"Content-Type": "application/yaml"}


def test_a_few_hundred_bytes_of_nested_aliases_are_refused_and_the_server_stays_well(api: Api) -> None:
    with api.client("write") as http:
        for path in ("/api/v1/runs", "/api/v1/plan"):
            refused = http.post(path, content=laughs(9), headers=YAML)
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["type"] == "WorkflowDefinitionError"
            assert f"past {MAX_ALIAS_NODES:,} nodes" in error["message"] and error["message"].startswith("workflow:5:")
        assert http.get("/api/v1/health").status_code in (200, 503)
        assert http.get("/api/v1/runs").json()["items"] == []  # nothing was stored
        shared = SHARED.replace("type: work", "type: echo")
        started = http.post("/api/v1/runs", content=shared, headers=YAML)
        assert started.status_code == 201, started.text
        ended = http.get(f"/api/v1/runs/{started.json()['run_id']}", params={"wait": PATIENCE}).json()
    assert ended["state"] == "completed", ended
    assert ended["steps"]["two"]["result"]["again"] == {"retries": 2, "tags": ["a", "b"]}


def test_a_plan_with_a_read_token_is_bounded_in_its_expected_items(api: Api) -> None:
    with api.client("read") as http:
        refused = http.post("/api/v1/plan", content=fan_out(100_000_000), headers=YAML)
        assert refused.status_code == 400, refused.text
        assert f"expected_items must be at most {MAX_EXPECTED_ITEMS:,}" in refused.json()["error"]["message"]
        planned = http.post("/api/v1/plan", content=fan_out(5).replace("type: q", "type: echo"), headers=YAML)
        assert planned.status_code == 200, planned.text
        assert len(planned.json()["schedule"]) == 5
