"""The cycle collector's young generation runs less often while an engine holds a burst of tasks, and its
thresholds are put back after, unless someone else changed them meanwhile."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.collector import BURST, CALM, YOUNG, Collector
from pepper.errors import ValidationError


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, ...]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_a_burst_raises_the_young_threshold_and_calm_puts_it_back() -> None:
    engine = Collector()
    engine.note(BURST - 1)
    assert gc.get_threshold() == (700, 10, 10)
    engine.note(BURST)
    assert gc.get_threshold() == (YOUNG, 10, 10) and engine.bursting
    engine.note(CALM)  # still many: no flapping around the line
    assert gc.get_threshold() == (YOUNG, 10, 10)
    engine.note(CALM - 1)
    assert gc.get_threshold() == (700, 10, 10) and not engine.bursting


def test_thresholds_come_back_when_the_last_engine_calms_down() -> None:
    first, second = Collector(), Collector()
    first.note(BURST)
    second.note(BURST)
    first.release()
    assert gc.get_threshold() == (YOUNG, 10, 10)  # the second still holds its burst
    second.note(0)
    assert gc.get_threshold() == (700, 10, 10)
    second.release()  # releasing twice changes nothing
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_someone_else_set_are_left_alone() -> None:
    engine = Collector()
    engine.note(BURST)
    gc.set_threshold(1234, 5, 5)  # the program set its own meanwhile
    engine.release()
    assert gc.get_threshold() == (1234, 5, 5)
    gc.set_threshold(0)  # collection turned off: a burst does not turn it on
    engine.note(BURST)
    assert gc.get_threshold()[0] == 0
    engine.release()
    assert gc.get_threshold()[0] == 0


def test_an_engine_holding_a_burst_of_tasks_collects_less_often_until_it_stops(tmp_path: Path) -> None:
    runtime = pepper.Runtime(db=str(tmp_path / "burst.db"), home=str(tmp_path / "home"))
    try:
        pepper.agent("idle", task_types=["other"], runtime=runtime)(lambda task: None)
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([{"id": f"t{i}", "type": "nobody-takes"} for i in range(BURST + 10)])
        runtime.read(lambda backend: None)  # a loop turn after the submission's commit
        assert gc.get_threshold() == (YOUNG, 10, 10)
    finally:
        runtime.close()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_large_submission_is_checked_at_the_bursts_pace_and_a_small_one_is_not(tmp_path: Path) -> None:
    seen: list[tuple[int, ...]] = []

    class Spec(dict):  # a mapping like any other, that notes the thresholds as the submission reads it
        def items(self):  # type: ignore[no-untyped-def, override]
            seen.append(gc.get_threshold())
            return super().items()

    with pepper.Runtime(db=str(tmp_path / "bulk.db"), home=str(tmp_path / "home")) as runtime:
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([Spec(id=f"small{i}", type="nobody-takes") for i in range(3)])
        assert seen and set(seen) == {(700, 10, 10)}
        assert gc.get_threshold() == (700, 10, 10)
        seen.clear()
        specs = [Spec(id=f"t{i}", type="nobody-takes") for i in range(BURST)]
        with pytest.raises(ValidationError):  # refused as a whole: the thresholds come back all the same
            orchestrator.submit_tasks([*specs, {"id": "bad", "type": "nobody-takes", "timeout": -1}])
        assert seen and set(seen) == {(YOUNG, 10, 10)}
        assert gc.get_threshold() == (700, 10, 10)
        assert len(orchestrator.list_tasks()) == 3  # nothing of the refused submission was kept
        assert len(orchestrator.submit_tasks(specs)) == BURST
