"""Helpers for testing code that uses pepper: a manual clock, a harness that drives the
scheduler in virtual time, runtimes for tests, and factories.

    from pepper.testing import StateHarness, make_agent

    harness = StateHarness(agents=[make_agent("docs", ["documentation"], capacity=2)])
    harness.submit(make_task("a", "documentation"), make_task("b", "documentation", dependencies=["a"]))
    harness.finish("a", result={"pages": 3})      # b starts now, at the harness's current time
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from pepper.core.runtime import Runtime
from pepper.engine.clock import ManualClock
from pepper.engine.state import EngineState
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    Abort,
    Action,
    AgentAdded,
    AttemptEnded,
    CallReturned,
    CancelRequested,
    EndsStored,
    Event,
    Start,
    TasksAdded,
    TimerFired,
    WakeAt,
)
from pepper.model.status import TaskError
from pepper.model.submission import build_task
from pepper.model.task import Task

__all__ = ["ManualClock", "StateHarness", "make_agent", "make_task", "run_until_idle", "test_runtime"]


def make_task(task_id: str, task_type: str = "task", **fields: Any) -> Task:
    """A validated ``Task`` (any ``submit_task`` field may be given)."""
    return build_task(task_id=task_id, task_type=task_type, **fields)


def make_agent(agent_id: str, task_types: Sequence[str] = ("task",), **fields: Any) -> AgentSpec:
    """A validated ``AgentSpec`` (``skills``, ``capacity``, ``resources`` ...)."""
    return AgentSpec.build(agent_id, task_types=list(task_types), **fields)


class StateHarness:
    """The scheduler's state machine driven by hand, in virtual time.

    ``started`` collects every ``Start`` action, in order; ``actions`` every action. An attempt the state
    machine aborts stops at once, as an async agent's call does (``CallReturned``): its slot is free again.
    """

    def __init__(self, agents: Iterable[AgentSpec] = (), *, clock: ManualClock | None = None, **options: Any):
        self.clock = clock or ManualClock(0.0)
        self.state = EngineState("harness", **options)
        self.actions: list[Action] = []
        self.started: list[Start] = []
        self._timers: dict[tuple[str, str], float] = {}
        for spec in agents:
            self._apply(self.state.handle(AgentAdded(spec, self.clock.now())))

    def submit(self, *tasks: Task) -> list[Action]:
        return self._apply(self.state.handle(TasksAdded(tuple(tasks), self.clock.now())))

    def finish(self, task_id: str, result: Any = None, error: str | None = None) -> list[Action]:
        """End the current attempt of ``task_id``: with ``result``, or failed with ``error``."""
        t = self.state.tasks[task_id]
        failure = TaskError("Error", error) if error is not None else None
        event = AttemptEnded(task_id, t.attempts, self.clock.now(), error is None, result, None, failure)
        return self._apply(self.state.handle(event))

    def cancel(self, task_id: str, reason: str = "cancelled by hand") -> list[Action]:
        """Cancel ``task_id`` (a running attempt is aborted and stops)."""
        return self.handle(CancelRequested(task_id, self.clock.now(), reason))

    def handle(self, event: Event) -> list[Action]:
        """Feed any event to the state machine, as the engine would; its actions (and those of the aborted
        attempts' calls stopping) are collected."""
        return self._apply(self.state.handle(event))

    def advance(self, seconds: float) -> list[Action]:
        """Move time forward, firing the timers that fall due, in time order."""
        end = self.clock.now() + seconds
        fired: list[Action] = []
        while True:
            due = sorted((at, key) for key, at in self._timers.items() if at <= end)
            if not due:
                break
            at, key = due[0]
            del self._timers[key]
            self.clock.set(max(at, self.clock.now()))
            fired += self._apply(self.state.handle(TimerFired(key, self.clock.now())))
        self.clock.set(end)
        return fired

    def running(self) -> list[str]:
        return sorted(tid for a in self.state.agents.values() for tid in a.running)

    def _apply(self, actions: list[Action]) -> list[Action]:
        stopped: list[Abort] = []
        for action in actions:
            if isinstance(action, Start):
                self.started.append(action)
            elif isinstance(action, WakeAt):
                self._timers[action.key] = action.at
            elif isinstance(action, Abort):
                stopped.append(action)
        self.actions += actions
        for abort in stopped:  # its call stops when asked: the slot it held is free again
            actions = actions + self._apply(self.state.handle(CallReturned("", abort.task_id, abort.attempt,
                                                                           self.clock.now())))  # fmt: skip
        if self.state.cascades_unstored:  # no store here: a cancel is stored at once, and its dependents follow
            stored = EndsStored(tuple(self.state.cascades_unstored), self.clock.now())
            actions = actions + self._apply(self.state.handle(stored))
        return actions


def test_runtime(**settings: Any) -> Runtime:
    """A throw-away runtime (in-memory database) with quick polling and retries."""
    values: dict[str, Any] = {
        "db": ":memory:",
        "poll_interval": "20ms",
        "retry_delay": "10ms",
        "shutdown_timeout": "2s",
    }
    values.update(settings)
    return Runtime(**values)


test_runtime.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def run_until_idle(runtime: Runtime, timeout: float = 30.0, grace: float = 0.05) -> None:
    """Block until ``runtime`` has had nothing to run for ``grace`` seconds (or raise ``TimeoutError``)."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while time.monotonic() < deadline:
        if runtime.has_work():
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= grace:
            return
        time.sleep(0.01)
    raise TimeoutError(f"the runtime still had work after {timeout:g}s")
