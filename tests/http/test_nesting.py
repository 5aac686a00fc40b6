"""Values and workflow documents nested past ``MAX_DEPTH`` are refused with a 400 and stored nowhere, so every
answer that lists them (the tasks page, a run) can still be written."""

from __future__ import annotations

from pepper.model.codec import MAX_DEPTH
from tests.http.conftest import PATIENCE, Api

JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}


def lists(levels: int) -> str:
    """JSON (and YAML flow) text of ``levels`` lists inside each other."""
    return "[" * levels + "]" * levels


def task(task_id: str, field: str, value: str) -> str:
    return f'{{"task_id": "{task_id}", "task_type": "echo", "{field}": {{"x": ' + value + "}}"


def document(value: str) -> str:
    return '{"workflow": {"name": "deep", "steps": [{"id": "a", "type": "echo", "inputs": {"x": ' + value + "}}]}}"


def test_a_task_nested_past_the_limit_is_refused_and_the_task_list_stays_readable(api: Api) -> None:
    with api.client("write") as http:
        for field in ("inputs", "metadata"):
            for levels in (MAX_DEPTH, 600):
                refused = http.post("/api/v1/tasks", content=task("deep", field, lists(levels)), headers=JSON)
                assert refused.status_code == 400, refused.text
                error = refused.json()["error"]
                assert error["type"] == "NestingTooDeepError" and error["field"] == field
                assert f"more than {MAX_DEPTH} levels deep" in error["message"]
        assert http.get("/api/v1/tasks/deep").status_code == 404  # nothing was stored
        batch = '{"tasks": [{"task_id": "deep-ok", "task_type": "nobody"}, ' + task(
            "deep-no", "inputs", lists(MAX_DEPTH)
        )
        batch += "]}"
        refused = http.post("/api/v1/tasks", content=batch, headers=JSON)
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "NestingTooDeepError"
        assert http.get("/api/v1/tasks/deep-ok").status_code == 404  # all of the batch or none
        at_limit = http.post("/api/v1/tasks", content=task("deep-100", "inputs", lists(MAX_DEPTH - 1)), headers=JSON)
        assert at_limit.status_code == 201, at_limit.text
        done = http.get("/api/v1/tasks/deep-100", params={"wait": PATIENCE})
        assert done.status_code == 200 and done.json()["state"] == "completed", done.text
        listed = http.get("/api/v1/tasks", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        assert "deep-100" in [item["task_id"] for item in listed.json()["items"]]


def test_a_workflow_document_nested_past_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    yaml = "name: deep\nsteps:\n  - id: a\n    type: echo\n    inputs:\n      x: {}\n"
    aliases = "name: deep\nlevels:\n  a0: &a0 [1]\n" + "".join(
        f"  a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]\n" for i in range(1, 12)
    ) + "steps:\n  - id: a\n    type: echo\n"  # fmt: skip
    with api.client("write") as http:
        before = len(http.get("/api/v1/runs", params={"limit": 1000}).json()["items"])
        for path in ("/api/v1/runs", "/api/v1/plan"):
            for body, headers in (
                (document(lists(300)), JSON),
                (document(lists(600)), JSON),
                (document(lists(100_000)), JSON),  # deeper than the JSON reader goes
                (yaml.format(lists(600)), YAML),
                (yaml.format(lists(100_000)), YAML),  # deeper than libyaml reads
                (aliases, YAML),  # a short text, deep through its aliases
            ):
                refused = http.post(path, content=body, headers=headers)
                assert refused.status_code == 400, (path, refused.text)
                error = refused.json()["error"]
                assert error["type"] == "NestingTooDeepError", error
                assert f"more than {MAX_DEPTH} levels deep" in error["message"]
        deep_inputs = '{"workflow": {"name": "deep", "steps": [{"id": "a", "type": "echo"}]}, "inputs": {"x": '
        refused = http.post("/api/v1/runs", content=deep_inputs + lists(MAX_DEPTH) + "}}", headers=JSON)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "inputs", refused.text
        assert len(http.get("/api/v1/runs", params={"limit": 1000}).json()["items"]) == before  # no run was made
        started = http.post("/api/v1/runs", content=document(lists(MAX_DEPTH - 4)), headers=JSON)  # 100 in all
        assert started.status_code == 201, started.text
        ended = http.get(f"/api/v1/runs/{started.json()['run_id']}", params={"wait": PATIENCE})
        assert ended.status_code == 200 and ended.json()["state"] == "completed", ended.text
        assert http.get("/api/v1/health").status_code in (200, 503)
