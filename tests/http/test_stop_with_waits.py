"""A server asked to stop while requests wait (``?wait=``) answers them what stands at once, as at their
deadline, instead of holding the stop open until uvicorn cuts them (a plain-text 500, tracebacks logged)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.http.app import create_app
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token
from tests.conftest import FAST
from tests.http.conftest import PATIENCE
from tests.support import eventually


def test_requests_waiting_as_the_server_stops_get_what_stands(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), **FAST)
    gate = threading.Event()

    @pepper.agent("holder", task_types=["held"], runtime=runtime)
    def hold(task: pepper.TaskRun) -> None:
        gate.wait(PATIENCE)

    try:
        secret = create_token(runtime.store, "writer", "write", time.time())
        TaskOrchestrator(runtime).submit_task("queued", "nobody-takes-this")
        server = ThreadedServer(create_app(runtime))
        url = server.start()
        workflow = {"name": "held", "steps": [{"id": "only", "type": "held"}]}  # running until the gate opens
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=PATIENCE) as client:
            run_id = client.post("/api/v1/runs", json={"workflow": workflow}).json()["run_id"]
        answers: dict[str, Any] = {}

        def ask(name: str, path: str) -> None:
            headers = {"Authorization": f"Bearer {secret}"}
            with httpx.Client(base_url=url, headers=headers, timeout=PATIENCE * 4) as client:
                answers[name] = client.get(path, params={"wait": 60})

        askers = [threading.Thread(target=ask, args=("task", "/api/v1/tasks/queued")),
                  threading.Thread(target=ask, args=("run", f"/api/v1/runs/{run_id}"))]  # fmt: skip
        for asker in askers:
            asker.start()
        state = server.server.server_state
        eventually(lambda: len(state.tasks) >= len(askers), "every request in the server's hands")
        with caplog.at_level(logging.WARNING):
            server.stop()
            for asker in askers:
                asker.join(PATIENCE)
        answer = answers["task"]
        assert answer.status_code == 200, answer.text
        assert answer.json()["task_id"] == "queued" and answer.json()["state"] == "pending"
        run = answers["run"]
        assert run.status_code == 200, run.text
        assert run.json()["run_id"] == run_id and run.json()["state"] == "running"
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        gate.set()
        runtime.close()
