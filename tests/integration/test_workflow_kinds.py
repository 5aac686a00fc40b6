"""Delays, fan-outs, approvals and sub-workflows used together: a fan-out waits for its delay, a delay where it
cannot apply is refused, and a re-run that would run a fan-out, an approval or a sub-workflow again is refused
and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

import pepper
from pepper.core import TaskOrchestrator, WorkflowController
from pepper.errors import PepperError
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.support import eventually

APPROVER = "approver@example.com"


def test_a_fan_out_starts_no_item_before_its_delay_has_passed(virtual: pepper.Runtime, clock: ManualClock):
    started: list[tuple[str, float]] = []

    @pepper.agent("worker", task_types=["scan", "doc"], capacity=4, runtime=virtual)
    def work(task: Any) -> Any:
        started.append((task.task_id.rpartition("/")[2], clock.now()))
        return ["api", "cli", "store"] if task.task_type == "scan" else task.inputs["module"]

    flow = WorkflowController("fan", virtual)
    flow.add_step("scan", "scan")
    flow.add_step("docs", "doc", dependencies=["scan"], for_each="${{ steps.scan.result }}", max_parallel=2,
                  inputs={"module": "${{ item }}"}, delay="10m")  # fmt: skip
    began = clock.now()
    run_id = flow.start()

    orchestrator = TaskOrchestrator(virtual)
    first = eventually(lambda: _status(orchestrator, f"{run_id}/docs[0]"), "the first item's task")
    assert first.not_before == pytest.approx(began + 600)
    assert first.state is TaskState.PENDING and [w.kind for w in first.waiting_on] == ["delay"]
    assert [name for name, _ in started] == ["scan"]

    clock.advance(600)
    result = flow.wait(run_id, timeout=30)
    assert result.status == "completed" and result["docs"].result == ["api", "cli", "store"]
    items = [(name, at) for name, at in started if name.startswith("docs[")]
    assert len(items) == 3 and all(at >= began + 600 for _, at in items)
    stored = virtual.store.get_tasks([f"{run_id}/docs[{i}]" for i in range(3)])
    assert all(r.task.not_before == pytest.approx(began + 600) for r in stored.values())


def _status(orchestrator: TaskOrchestrator, task_id: str) -> Any:
    try:
        return orchestrator.get_task_status(task_id)
    except PepperError:
        return None
