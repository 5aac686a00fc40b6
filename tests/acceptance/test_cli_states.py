"""The CLI names the running state as it is stored, ``in_progress``, and takes ``running`` for it too."""

from __future__ import annotations

import threading
import time

import pepper
from pepper.core import TaskOrchestrator
from pepper.model.task import TaskState

from .test_cli import CLI, cli  # noqa: F401  (the fixture)


def test_tasks_shows_and_takes_in_progress_and_accepts_running_as_another_name(cli: CLI) -> None:  # noqa: F811
    gate = threading.Event()
    with pepper.Runtime(db=cli.db, home=str(cli.folder / "home")) as runtime:
        pepper.agent("slow", task_types=["t"], runtime=runtime)(lambda task: gate.wait(30))
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("busy", "t")
        deadline = time.monotonic() + 30  # a safety net only
        while orchestrator.get_task_status("busy").state is not TaskState.IN_PROGRESS:
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.01)
        try:
            table = cli.ok("tasks")
            by_name = [t["task_id"] for t in cli.json("tasks", "--state", "in_progress")]
            by_alias = [t["task_id"] for t in cli.json("tasks", "--state", "running")]
            status = cli.ok("status", "busy")
        finally:
            gate.set()
    row = next(line for line in table.splitlines() if line.startswith("busy"))
    assert row.split()[2] == "in_progress" and "1 task in the database: 1 in_progress" in table
    assert "in_progress" in status
    assert by_name == by_alias == ["busy"]
    help_text = cli.ok("tasks", "--help")
    assert "in_progress" in help_text and "running means in_progress" in " ".join(help_text.split())
