"""A sync agent's call that outlives its attempt: told as left running only if it has not returned within a
short grace of the engine's clock (one that checks ``task.cancelled`` and returns is not warned about)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pepper.engine.executors.local import RETURN_GRACE, InThread
from pepper.engine.executors.threads import AgentThreads
from tests.support import eventually


class _Timers:
    """A clock whose timers the test runs by hand."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, Callable[[], object]]] = []

    def now(self) -> float:
        return 100.0

    def call_at(self, when: float, callback: Callable[[], object]) -> Any:
        self.armed.append((when, callback))
        return SimpleNamespace(cancel=lambda: None)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # blocked calls end with the test


def _cancelled_call(threads: AgentThreads, clock: _Timers, release: threading.Event) -> None:
    """Start a call that blocks until ``release``, then cancel its attempt while it runs."""
    started = threading.Event()

    def execute(task: Any) -> str:
        started.set()
        release.wait(30)
        return "stopped"

    agent = SimpleNamespace(spec=SimpleNamespace(agent_id="coop"), execute=execute)
    run = SimpleNamespace(task_id="t1", attempt=1)

    async def attempt() -> None:
        call = asyncio.ensure_future(InThread(threads, clock).call(agent, run))  # type: ignore[arg-type]
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(attempt())


def test_a_call_that_returns_within_the_grace_is_not_warned_about(release, caplog):
    threads, clock = AgentThreads(max_threads=2), _Timers()
    with caplog.at_level(logging.WARNING, logger="pepper.engine"):
        _cancelled_call(threads, clock, release)
        release.set()  # the agent saw task.cancelled and returns
        eventually(lambda: threads.statistics().stuck == 0, "the call returned")
        [(when, warn)] = clock.armed
        warn()
    assert when == 100.0 + RETURN_GRACE
    assert "did not return" not in caplog.text


def test_a_call_still_running_after_the_grace_is_warned_about_once(release, caplog):
    threads, clock = AgentThreads(max_threads=2), _Timers()
    with caplog.at_level(logging.WARNING, logger="pepper.engine"):
        _cancelled_call(threads, clock, release)
        assert "did not return" not in caplog.text  # not at the instant of the cancel
        [(_, warn)] = clock.armed
        warn()
    [record] = [r for r in caplog.records if "did not return" in r.getMessage()]
    message = record.getMessage()
    assert "agent coop did not return within 1s of the end of attempt 1 of task t1" in message
    assert "(1 such thread now;" in message
