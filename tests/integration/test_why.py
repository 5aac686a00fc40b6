"""``pepper why`` read from the database by another process: when each agent would finish a waiting task."""

from __future__ import annotations

import threading
import time

import pytest

import pepper
from pepper.cli.distribution import _explain
from pepper.core import TaskOrchestrator
from pepper.core.agents_view import read_agents
from pepper.model.task import TaskState
from pepper.testing import ManualClock


def test_would_finish_counts_the_work_queued_ahead_of_the_task_on_that_agent(tmp_path):
    db = str(tmp_path / "why.db")
    gate = threading.Event()
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), poll_interval="20ms") as worker:
        pepper.agent("slow", task_types=["t"], capacity=1, runtime=worker)(lambda task: gate.wait(30))
        orchestrator = TaskOrchestrator(worker)
        orchestrator.submit_tasks([{"id": f"t{i}", "type": "t"} for i in range(4)])
        deadline = time.monotonic() + 30  # a safety net only
        while orchestrator.get_task_status("t0").state is not TaskState.IN_PROGRESS:
            assert time.monotonic() < deadline, "t0 never started"
            time.sleep(0.01)
        # another process, whose clock stands still so that every answer is taken at the same moment
        with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=ManualClock(time.time())) as onlooker:
            finish = {tid: _explain(onlooker, tid).eligible[0].projected_finish for tid in ("t1", "t2", "t3")}
            each = read_agents(onlooker, lambda view: view.expected("slow", "t"))
        gate.set()
        orchestrator.wait(["t0", "t1", "t2", "t3"], timeout=30)
    # t1 is next once t0 ends; t3 waits for t1 and t2 as well, on the one slot of the agent
    assert finish["t2"] - finish["t1"] == pytest.approx(each)
    assert finish["t3"] - finish["t1"] == pytest.approx(2 * each)
