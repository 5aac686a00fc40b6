"""POST /tasks refuses an id inside a workflow run's namespace, as submit_task does: 400, nothing stored."""

from __future__ import annotations

from pepper.core import WorkflowController
from tests.http.conftest import PATIENCE, Api


def test_a_task_inside_a_runs_namespace_is_400_and_is_not_stored(api: Api) -> None:
    workflow = WorkflowController("echoes", api.runtime)
    workflow.add_step("one", "echo")
    run_id = workflow.run(timeout=PATIENCE).run_id
    with api.client() as client:
        one = client.post("/api/v1/tasks", json={"task_id": f"{run_id}/two", "type": "echo"})
        many = client.post("/api/v1/tasks", json={"tasks": [{"id": f"{run_id}-mine", "type": "echo"},
                                                            {"id": f"{run_id}/three", "type": "echo"}]})  # fmt: skip
        found = [client.get(f"/api/v1/tasks/{task_id}").status_code
                   for task_id in (f"{run_id}/one", f"{run_id}/two", f"{run_id}-mine", f"{run_id}/three")]  # fmt: skip
    for answer in (one, many):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "ValidationError" and error["field"] == "task_id"
        assert f"namespace of workflow run '{run_id}'" in error["message"]
    assert found == [200, 404, 404, 404]  # the run's own step is there
