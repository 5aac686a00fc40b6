"""The metrics hook counts, buckets and keeps exactly what its reference does, and exports the same text."""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from pepper.core.prometheus import _engine
from pepper.engine.figures import EngineCounters
from pepper.engine.metrics import MetricsHook
from pepper.model.events import AttemptEnded, RecordError
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from tests.unit.metrics_reference import MetricsHook as Reference

ACTIONS = ("retry", "reassign", "fallback", "dead_letter", "skip", "fail", "abort")


def _engine_double(tasks: dict[str, Any]) -> Any:
    return SimpleNamespace(clock=SimpleNamespace(now=lambda: 0.0), state=SimpleNamespace(tasks=tasks))


def _drive(seed: int, hooks: list[Any], tasks: dict[str, Any]) -> None:
    """Submissions, starts, ends (ok, failed, interrupted, of an unknown task, started before the hook was
    attached), recovery decisions and settlements, the same for every hook."""
    rng = random.Random(seed)
    at, running = 10.0, []

    def each(method: str, *args: object) -> None:
        for hook in hooks:
            getattr(hook, method)(*args)

    for step in range(600):
        at += rng.choice((0.0, 0.001, 0.2, 3.0, 400.0))
        kind = rng.random()
        if kind < 0.15:
            batch = [Task(f"t{step}-{i}", rng.choice(("a", "b"))) for i in range(rng.randint(1, 4))]
            for task in batch:
                ready = rng.choice((None, at, at - rng.uniform(0, 50), at + 1.0))
                tasks[task.task_id] = SimpleNamespace(task=task, ready_at=ready, agent_id=None)
            each("on_submitted", batch)
        elif kind < 0.45 and (idle := sorted(set(tasks) - {task.task_id for task, _, _ in running})):
            record = tasks[rng.choice(idle)]  # one attempt of a task at a time, as an engine runs them
            agent_id, attempt = rng.choice(("x", "y")), rng.randint(1, 3)
            record.agent_id = agent_id
            if rng.random() < 0.9:  # else it started before the hook was attached
                each("on_started", record.task, attempt, agent_id, at)
            running.append((record.task, attempt, at))
        elif kind < 0.8 and running:
            task, attempt, began = running.pop(rng.randrange(len(running)))
            started = rng.choice((None, began, began + 0.01))
            ok, requeue = rng.random() < 0.7, rng.random() < 0.1
            ended = AttemptEnded(task.task_id, attempt, at, ok, started_at=started, requeue=requeue)
            each("on_attempt_ended", ended, task if rng.random() < 0.95 else None)
            if not ok:
                error = TaskError("Boom", "it broke")
                decided = RecordError(task.task_id, attempt, tasks[task.task_id].agent_id, task.task_type, at,
                                      error, "policy", rng.choice(ACTIONS), "")  # fmt: skip
                each("on_recovery", decided)
        elif tasks:
            task_id = rng.choice(sorted(tasks))
            each("on_settled", task_id, rng.choice((TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)))


class _Exported(Collector):
    def __init__(self, counters: EngineCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Any]:
        return _engine(self.counters)


def _exposition(hook: Any) -> bytes:
    counters = EngineCounters(
        dict(hook.counters),
        {key: (h.cumulative(), h.sum) for key, h in hook.waits.items()},
        {key: (h.cumulative(), h.sum) for key, h in hook.runs.items()},
        (),
        0.0,
    )
    registry = CollectorRegistry()
    registry.register(_Exported(counters))
    return generate_latest(registry)


@pytest.mark.parametrize("seed", range(5))
def test_the_hook_keeps_and_exports_what_its_reference_does(seed: int) -> None:
    tasks: dict[str, Any] = {}
    hook, reference = MetricsHook(_engine_double(tasks)), Reference(_engine_double(tasks))
    _drive(seed, [hook, reference], tasks)
    assert hook.counters == reference.counters
    assert {k: (h.counts, h.sum) for k, h in hook.waits.items()} == {
        k: (h.counts, h.sum) for k, h in reference.waits.items()
    }
    assert {k: (h.counts, h.sum) for k, h in hook.runs.items()} == {
        k: (h.counts, h.sum) for k, h in reference.runs.items()
    }
    assert hook.window.since(float("-inf")) == reference.window.since(float("-inf"))
    assert all(type(o) is type(w) for o, w in zip(hook.window.since(0.0), reference.window.since(0.0), strict=True))
    began = {
        (task_id, attempt): (at, wait, line.agent_id) for task_id, (attempt, at, wait, line) in hook._began.items()
    }
    assert began == reference._began
    assert _exposition(hook) == _exposition(reference)
    assert b"pepper_run_seconds_bucket" in _exposition(hook) and b"pepper_completed_total" in _exposition(hook)


def test_a_late_end_of_an_earlier_attempt_leaves_the_running_attempts_start_alone() -> None:
    tasks: dict[str, Any] = {"t": SimpleNamespace(task=Task("t", "a"), ready_at=1.0, agent_id="x")}
    hook, reference = MetricsHook(_engine_double(tasks)), Reference(_engine_double(tasks))
    task = tasks["t"].task
    for each in (hook, reference):
        each.on_started(task, 2, "x", 5.0)
        each.on_attempt_ended(AttemptEnded("t", 1, 6.0, True, started_at=2.0), task)  # attempt 1, reported late
        each.on_attempt_ended(AttemptEnded("t", 2, 9.0, True, started_at=5.0), task)
    assert hook.counters == reference.counters == {("started", "a", "x"): 1, ("completed", "a", "x"): 2}
    assert hook.window.since(0.0) == reference.window.since(0.0)
    assert [(o.wait, o.run) for o in hook.window.since(0.0)] == [(None, 4.0), (4.0, 4.0)]
    assert not hook._began and not reference._began
