"""``TaskOrchestrator.list_tasks`` in process: searched by id, paged from the last status of a page even once that
task was pruned, and bad arguments refused."""

from __future__ import annotations

import math

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.clock import ManualClock
from pepper.errors import TaskNotFoundError, ValidationError
from pepper.store.protocol import TaskPlace


def test_the_next_page_goes_on_from_a_status_whose_task_was_pruned(virtual: pepper.Runtime, clock: ManualClock) -> None:
    orchestrator = TaskOrchestrator(virtual)
    for n in range(5):
        orchestrator.submit_task(task_id=f"Job-{n}", task_type="nobody-takes-this")
        clock.advance(1)
    first = orchestrator.list_tasks(limit=2, id_contains="job-")
    assert [s.task_id for s in first] == ["Job-4", "Job-3"]
    assert orchestrator.cancel_task("Job-3")
    clock.advance(60)
    assert virtual.store.prune(clock.now())["tasks"] == 1
    assert [s.task_id for s in orchestrator.list_tasks(after=first[-1])] == ["Job-2", "Job-1", "Job-0"]
    assert [s.task_id for s in orchestrator.list_tasks(limit=1, after=first[-1], id_contains="1")] == ["Job-1"]
    with pytest.raises(TaskNotFoundError):  # its id alone says nothing of where it was
        orchestrator.list_tasks(after="Job-3")


def test_listing_refuses_a_search_or_a_place_that_means_nothing(runtime: pepper.Runtime) -> None:
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task(task_id="t", task_type="nobody-takes-this")
    for text in ("", "x" * 201, 5, "a\x00b", "\udcff"):
        with pytest.raises(ValidationError) as refused:
            orchestrator.list_tasks(id_contains=text)  # type: ignore[arg-type]
        assert refused.value.field == "id_contains"
    for after in (42, ("t", math.nan), ("t", "soon"), ("t", 1.0, -1), ("t", 1.0, 1.5), ("t",), ("", 1.0)):
        with pytest.raises(ValidationError) as refused:
            orchestrator.list_tasks(after=after)  # type: ignore[arg-type]
        assert refused.value.field in ("after", "task_id")
    assert [s.task_id for s in orchestrator.list_tasks(after=TaskPlace("gone", 0.0))] == []
    assert [s.task_id for s in orchestrator.list_tasks(id_contains="T")] == ["t"]
