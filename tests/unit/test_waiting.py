"""Wait groups: one per ``wait`` call, woken once per task it waits for, keeping each task's status as it settles."""

from __future__ import annotations

import asyncio

import pytest

from pepper.engine.live import LiveTask
from pepper.engine.waiting import Waiters, WaitGroup
from pepper.errors import RuntimeClosedError
from pepper.model.task import Task, TaskState


def _done(task_id: str) -> LiveTask:
    live = LiveTask(Task(task_id, "t"), TaskState.COMPLETED)
    live.result = task_id.upper()
    return live


def test_groups_sharing_a_task_each_count_it_and_keep_its_status() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        waiters = Waiters()
        both, one = WaitGroup(2, loop.create_future()), WaitGroup(1, loop.create_future())
        waiters.add(both, ["a", "b"])
        waiters.add(one, ["a"])
        assert len(waiters) == 2 and "a" in waiters
        waiters.wake("a", _done("a"))
        assert one.future.done() and not both.future.done() and "a" not in waiters
        waiters.wake("a", _done("a"))  # nobody waits for it any more: nothing counts it twice
        assert both.remaining == 1
        waiters.wake("b", None)  # settled, already forgotten by the engine: counted, no status kept
        assert both.future.done() and set(both.ended) == {"a"} and both.ended["a"].result == "A"
        assert len(waiters) == 0

    asyncio.run(scenario())


def test_a_group_waiting_twice_for_one_task_is_counted_twice() -> None:
    async def scenario() -> None:
        group = WaitGroup(3, asyncio.get_running_loop().create_future())
        waiters = Waiters()
        waiters.add(group, ["a", "a", "b"])
        waiters.wake("a", _done("a"))
        assert group.remaining == 1
        waiters.wake("b", _done("b"))
        assert group.future.done()

    asyncio.run(scenario())


def test_a_group_that_gives_up_is_removed_and_the_others_stay() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        waiters = Waiters()
        quitter, stayer = WaitGroup(2, loop.create_future()), WaitGroup(1, loop.create_future())
        waiters.add(quitter, ["a", "b"])
        waiters.add(stayer, ["b"])
        waiters.remove(quitter, ["a", "b"])
        assert "a" not in waiters and len(waiters) == 1
        waiters.remove(quitter, ["a", "b"])  # again: nothing left to remove
        waiters.wake("b", _done("b"))
        assert stayer.future.done() and quitter.remaining == 2 and not quitter.future.done()

    asyncio.run(scenario())


def test_stopping_fails_every_wait_once() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        waiters = Waiters()
        first, second = WaitGroup(2, loop.create_future()), WaitGroup(1, loop.create_future())
        waiters.add(first, ["a", "b"])
        waiters.add(second, ["a"])
        waiters.fail_all(RuntimeClosedError("closed"))
        assert len(waiters) == 0
        for group in (first, second):
            with pytest.raises(RuntimeClosedError):
                group.future.result()

    asyncio.run(scenario())
