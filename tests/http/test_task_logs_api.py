"""A task's log over HTTP: read with the read scope, followed with `after`."""

from __future__ import annotations

import pepper
from tests.http.conftest import PATIENCE, Api


def test_a_tasks_log_is_read_with_the_read_scope_and_followed_by_chunk(api: Api) -> None:
    # Given an agent that logs two lines
    @pepper.agent("logger", task_types=["logs"], runtime=api.runtime)
    def logger(task: pepper.TaskRun) -> object:
        task.log("one")
        task.log("two", level="warning")
        return None

    with api.client("write") as client:
        client.post("/api/v1/tasks", json={"task_id": "logged-1", "task_type": "logs"}).raise_for_status()
        client.get("/api/v1/tasks/logged-1", params={"wait": PATIENCE}).raise_for_status()
    # When a reader asks for its log
    with api.client("read") as client:
        answer = client.get("/api/v1/tasks/logged-1/logs")
        assert answer.status_code == 200
        found = answer.json()
        # Then it has both lines, and the attempt ended
        assert found["attempt"] == 1 and found["ended"] is True
        assert "INFO task: one" in found["text"] and "WARNING task: two" in found["text"]
        # and asking from the next chunk on gives nothing more
        rest = client.get("/api/v1/tasks/logged-1/logs", params={"after": found["next_seq"]}).json()
        assert rest["chunks"] == [] and rest["ended"] is True
        assert client.get("/api/v1/tasks/logged-1/logs", params={"attempt": 5}).status_code == 400
        too_far = client.get("/api/v1/tasks/logged-1/logs", params={"after": 10**20})
        assert too_far.status_code == 400 and "after" in too_far.text and "ValidationError" in too_far.text
        assert client.get("/api/v1/tasks/no-such-task/logs").status_code == 404
    with api.client(None) as client:
        assert client.get("/api/v1/tasks/logged-1/logs").status_code == 401
