"""Runs, plans, agents, resources, dead letters, monitors, events and metrics over HTTP."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from tests.http.conftest import PATIENCE, Api

TWO_STEPS = {"name": "pair", "steps": [{"id": "first", "type": "gated"}, {"id": "second", "type": "echo",
                                                                          "needs": "first"}]}  # fmt: skip


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_run_from_json_and_from_yaml_completes_with_its_steps(api: Api) -> None:
    text = "name: yaml-run\nsteps:\n  - id: only\n    type: echo\n    inputs: {word: hi}\n"
    with api.client() as client:
        from_json = client.post(
            "/api/v1/runs", json={"workflow": {"name": "json-run", "steps": [{"id": "a", "type": "echo"}]}}
        )
        from_yaml = client.post("/api/v1/runs", content=text, headers={"content-type": "application/yaml"})
        ended = client.get(f"/api/v1/runs/{from_yaml.json()['run_id']}", params={"wait": PATIENCE}).json()
        listed = client.get("/api/v1/runs").json()["items"]
    assert from_json.status_code == 201 and from_yaml.status_code == 201
    assert ended["state"] == "completed"
    assert ended["steps"]["only"]["state"] == "completed"
    assert ended["result"]["status"] == "completed"
    assert {from_json.json()["run_id"], from_yaml.json()["run_id"]} <= {r["run_id"] for r in listed}


def test_a_workflow_defining_agents_is_refused_with_403(api: Api) -> None:
    command = {"name": "sneaky", "agents": [{"agent_id": "shell", "task_types": ["x"], "command": "rm -rf /"}],
               "steps": [{"id": "a", "type": "x"}]}  # fmt: skip
    as_path = {"name": "sneaky", "agents": "/etc/agents.yaml", "steps": [{"id": "a", "type": "echo"}]}
    with api.client() as client:
        refused = [client.post("/api/v1/runs", json={"workflow": doc}) for doc in (command, as_path)]
        planned = client.post("/api/v1/plan", json={"workflow": command})
        yaml_text = "name: s\nagents:\n  - {agent_id: sh, task_types: [x], command: id}\nsteps: [{id: a, type: x}]\n"
        as_yaml = client.post("/api/v1/runs", content=yaml_text, headers={"content-type": "application/yaml"})
    for answer in [*refused, planned, as_yaml]:
        assert answer.status_code == 403
        assert answer.json()["error"]["type"] == "ForbiddenWorkflowError"
        assert "agents" in answer.json()["error"]["message"]


def test_bad_workflows_are_400(api: Api) -> None:
    with api.client() as client:
        no_steps = client.post("/api/v1/runs", json={"workflow": {"name": "empty"}})
        no_agent = client.post(
            "/api/v1/runs", json={"workflow": {"name": "w", "steps": [{"id": "a", "type": "nobody"}]}}
        )
        not_json = client.post("/api/v1/runs", content=b"[", headers={"content-type": "application/json"})
        unknown_run = client.get("/api/v1/runs/no-such-run")
    assert no_steps.status_code == 400 and no_steps.json()["error"]["type"] == "WorkflowDefinitionError"
    assert no_agent.status_code == 400
    assert not_json.status_code == 400
    assert unknown_run.status_code == 404 and unknown_run.json()["error"]["type"] == "RunNotFoundError"


def test_a_run_can_be_cancelled(api: Api) -> None:
    api.gate.clear()
    try:
        with api.client() as client:
            run_id = client.post("/api/v1/runs", json={"workflow": TWO_STEPS}).json()["run_id"]
            cancelled = client.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": "changed my mind"})
            api.gate.set()
            ended = client.get(f"/api/v1/runs/{run_id}", params={"wait": PATIENCE}).json()
    finally:
        api.gate.set()
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    assert ended["state"] == "cancelled"


def test_plan_predicts_a_workflow(api: Api) -> None:
    with api.client("read") as client:
        planned = client.post("/api/v1/plan", json={"workflow": TWO_STEPS, "durations": {"first": 2, "second": 3}})
    assert planned.status_code == 200
    assert planned.json()["makespan"] == 5


def test_agents_lists_the_agents_online(api: Api) -> None:
    with api.client("read") as client:
        agents = client.get("/api/v1/agents").json()["items"]
        echo = client.get("/api/v1/agents/echo")
        missing = client.get("/api/v1/agents/nobody")
    assert {"echo", "breaker", "gated"} <= {a["agent_id"] for a in agents}
    assert echo.status_code == 200 and echo.json()["capacity"] >= 1 and "score" in echo.json()
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "AgentNotFoundError"


def test_leases_are_granted_listed_and_released(api: Api) -> None:
    with api.client() as client:
        pool = client.get("/api/v1/resources").json()
        granted = client.post("/api/v1/leases", json={"agent_id": "echo", "resources": {"cpu": 0.5}, "duration": "1h"})
        lease_id = granted.json()["lease_id"]
        listed = client.get("/api/v1/leases", params={"agent_id": "echo"}).json()["items"]
        released = client.delete(f"/api/v1/leases/{lease_id}")
        unknown = client.delete("/api/v1/leases/no-such-lease")
        too_much = client.post("/api/v1/leases", json={"agent_id": "echo", "resources": {"cpu": 10_000}})
    assert "cpu" in pool["capacity"]
    assert granted.status_code == 201
    assert lease_id in {lease["lease_id"] for lease in listed}
    assert released.status_code == 200 and released.json()["released"] is True
    assert unknown.status_code == 404
    assert too_much.status_code == 400


def test_dead_letters_are_listed_replayed_and_dropped(api: Api) -> None:
    task_id = _id("parked")
    with api.client() as client:
        client.post("/api/v1/tasks", json={"task_id": task_id, "task_type": "break", "policy": "dead_letter"})
        assert client.get(f"/api/v1/tasks/{task_id}", params={"wait": PATIENCE}).json()["state"] == "parked"
        listed = client.get("/api/v1/dlq").json()["items"]
        replayed = client.post(f"/api/v1/dlq/{task_id}/replay")
        again = client.get(f"/api/v1/tasks/{task_id}", params={"wait": PATIENCE}).json()
        dropped = client.delete(f"/api/v1/dlq/{task_id}")
        final = client.get(f"/api/v1/tasks/{task_id}").json()
    assert task_id in {s["task_id"] for s in listed}
    assert replayed.json() == {"replayed": [task_id]}
    assert again["state"] == "parked" and again["attempts"] == 2
    assert dropped.json()["dropped"] is True
    assert final["state"] == "failed"


def test_health_is_200_until_no_agent_is_healthy_then_503(api: Api) -> None:
    async def sick() -> bool:
        return False

    with api.client("read") as client:
        fine = client.get("/api/v1/health")
        agents = api.runtime.agents()
        for agent in agents:
            agent.health_check = sick  # type: ignore[method-assign]
        try:
            ill = client.get("/api/v1/health", params={"component": "agents"})
        finally:
            for agent in agents:
                del agent.health_check
        bad = client.get("/api/v1/health", params={"component": "kidneys"})
    assert fine.status_code == 200 and fine.json()["status"] in ("healthy", "degraded")
    assert ill.status_code == 503 and ill.json()["status"] == "unhealthy"
    assert bad.status_code == 400


def test_performance_alerts_and_metrics(api: Api) -> None:
    with api.client("read") as client:
        perf = client.get("/api/v1/performance", params={"window": "1h"})
        bad_window = client.get("/api/v1/performance", params={"window": "forever"})
        alerts = client.get("/api/v1/alerts")
        metrics = client.get("/metrics")
    with api.client(None) as anonymous:
        no_token = anonymous.get("/metrics")
    assert perf.status_code == 200 and "throughput" in perf.json()
    assert bad_window.status_code == 400
    assert alerts.json() == {"items": [], "next_cursor": None}
    assert metrics.status_code == 200 and "pepper_tasks" in metrics.text
    assert no_token.status_code == 401


def _events(api: Api, run_id: str, ready: threading.Event, out: list[tuple[str, dict[str, Any]]]) -> None:
    """Read the run's events until it ends."""
    with api.client("read") as client, client.stream("GET", "/api/v1/events", params={"run": run_id}) as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                data = json.loads(line.removeprefix("data: "))
                out.append((kind, data))
                if kind == "run" and data["state"] != "running":
                    return


def test_the_events_of_a_run_that_does_not_exist_are_404_at_once(api: Api) -> None:
    with api.client("read") as client:
        answer = client.get("/api/v1/events", params={"run": "no-such-run"})
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "RunNotFoundError"


def test_a_runs_events_arrive_in_order(api: Api) -> None:
    api.gate.clear()
    received: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()
    try:
        with api.client() as client:
            run_id = client.post("/api/v1/runs", json={"workflow": TWO_STEPS}).json()["run_id"]
        reader = threading.Thread(target=_events, args=(api, run_id, ready, received))
        reader.start()
        assert ready.wait(PATIENCE)
        api.gate.set()
        reader.join(PATIENCE)
    finally:
        api.gate.set()
    assert not reader.is_alive()
    tasks = [(d["task_id"], d["state"]) for kind, d in received if kind == "task"]
    assert all(d["run_id"] == run_id for _, d in received)
    assert tasks.index((f"{run_id}/first", "completed")) < tasks.index((f"{run_id}/second", "completed"))
    runs = [d for kind, d in received if kind == "run"]
    assert runs[-1]["state"] == "completed" and runs[-1]["done"] == runs[-1]["total"] == 2
    assert [r["done"] for r in runs] == sorted(r["done"] for r in runs)


def test_the_home_page_needs_no_token_and_the_api_description_does(api: Api) -> None:
    with api.client(None) as anonymous:
        home = anonymous.get("/")
        hidden = anonymous.get("/api/v1/openapi.json")
        unknown = anonymous.get("/api/v1/nothing-here")
    with api.client("read") as reader:
        described = reader.get("/api/v1/openapi.json")
        unknown_to_a_reader = reader.get("/api/v1/nothing-here")
    assert home.status_code == 200 and "dashboard" in home.text
    assert hidden.status_code == 401 and hidden.json()["error"]["type"] == "AuthenticationError"
    assert described.status_code == 200 and "/api/v1/tasks" in described.json()["paths"]
    assert unknown.status_code == 401  # without a token, not even which paths exist is told
    assert unknown_to_a_reader.status_code == 404 and unknown_to_a_reader.json()["error"]["type"] == "NotFoundError"
