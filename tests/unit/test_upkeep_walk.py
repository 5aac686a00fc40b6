"""The sweep for dead workers walks the tasks in memory only when something could have orphaned one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pepper.engine.live import LiveTask
from pepper.engine.upkeep import Upkeep
from pepper.model.submission import build_task
from pepper.model.task import TaskState


class CountingTasks(dict[str, LiveTask]):
    """The engine's tasks, counting the walks over them."""

    walks = 0

    def values(self) -> Any:
        self.walks += 1
        return super().values()


def running(task_id: str, owner: str) -> LiveTask:
    t = LiveTask(build_task(task_id=task_id, task_type="t", now=0.0), TaskState.IN_PROGRESS)
    t.owner = owner
    return t


def upkeep_of(tasks: CountingTasks) -> tuple[Upkeep, Any]:
    engine = SimpleNamespace(loads=0, state=SimpleNamespace(tasks=tasks))
    return Upkeep(engine), engine  # type: ignore[arg-type]


def test_nothing_changed_means_no_walk_and_a_load_or_a_lost_worker_means_one() -> None:
    # Given tasks in memory that live workers run
    tasks = CountingTasks(a=running("a", "me"), b=running("b", "other"))
    upkeep, engine = upkeep_of(tasks)
    assert upkeep._orphaned({"me", "other"}) == set()
    assert tasks.walks == 1
    # When the sweep comes again and nothing changed, the tasks are not walked
    assert upkeep._orphaned({"me", "other"}) == set()
    assert tasks.walks == 1
    # When tasks were loaded meanwhile (one may be run by a worker already gone), they are
    tasks["c"] = running("c", "gone")
    engine.loads += 1
    assert upkeep._orphaned({"me", "other"}) == {"gone"}
    assert tasks.walks == 2
    # And after a walk that found orphans, the next sweep walks again (until none is found)
    assert upkeep._orphaned({"me", "other"}) == {"gone"}
    assert tasks.walks == 3
    del tasks["c"]
    assert upkeep._orphaned({"me", "other"}) == set()
    assert upkeep._orphaned({"me", "other"}) == set()
    assert tasks.walks == 4
    # When a worker leaves the live ones, its tasks are found
    assert upkeep._orphaned({"me"}) == {"other"}
    assert tasks.walks == 5
