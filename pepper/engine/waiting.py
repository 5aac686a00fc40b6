"""Who waits for which tasks: one ``WaitGroup`` per ``wait`` call, found by the ids it waits for.

A group is registered under each id it still waits for (the group itself, or a list when several groups wait
for one id), and keeps the status of each of its tasks as it settles: the engine may forget a finished task
long before the last of a large group settles, and the wait then answers from what the group kept, without
reading the task back from the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from pepper.engine.live import LiveTask
from pepper.model.status import TaskStatus


class WaitGroup:
    """Resolves ``future`` once ``remaining`` tasks have settled (one future per ``wait`` call); ``ended`` holds
    the statuses of its tasks as they settled."""

    __slots__ = ("ended", "future", "remaining")

    def __init__(self, remaining: int, future: asyncio.Future[None]) -> None:
        self.remaining = remaining
        self.future = future
        self.ended: dict[str, TaskStatus] = {}

    def settle_one(self, task_id: str, task: LiveTask | None) -> None:
        """``task_id`` settled (``task``: its state in memory, if the engine has it)."""
        if task is not None:
            self.ended[task_id] = task.to_status()
        self.remaining -= 1
        if self.remaining <= 0 and not self.future.done():
            self.future.set_result(None)


class Waiters:
    """The groups waiting, by task id."""

    __slots__ = ("_by_task",)

    def __init__(self) -> None:
        self._by_task: dict[str, WaitGroup | list[WaitGroup]] = {}

    def __len__(self) -> int:
        """How many tasks are waited for."""
        return len(self._by_task)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_task

    def add(self, group: WaitGroup, task_ids: Iterable[str]) -> None:
        """Make ``group`` wait for each of ``task_ids`` (none settled yet)."""
        by_task = self._by_task
        for task_id in task_ids:
            earlier = by_task.get(task_id)
            if earlier is None:
                by_task[task_id] = group
            elif isinstance(earlier, list):
                earlier.append(group)
            else:
                by_task[task_id] = [earlier, group]

    def remove(self, group: WaitGroup, task_ids: Iterable[str]) -> None:
        """Stop ``group`` waiting for ``task_ids`` (it gave up: a timeout)."""
        by_task = self._by_task
        for task_id in task_ids:
            waiting = by_task.get(task_id)
            if waiting is group:
                del by_task[task_id]
            elif isinstance(waiting, list) and group in waiting:
                waiting.remove(group)
                if not waiting:
                    del by_task[task_id]

    def wake(self, task_id: str, task: LiveTask | None) -> None:
        """``task_id`` settled, durably: every group waiting for it counts it."""
        waiting = self._by_task.pop(task_id, None)
        if waiting is None:
            return
        if isinstance(waiting, list):
            for group in waiting:
                group.settle_one(task_id, task)
        else:
            waiting.settle_one(task_id, task)

    def fail_all(self, error: BaseException) -> None:
        """End every wait with ``error`` (the engine stops), and forget them."""
        for waiting in self._by_task.values():
            for group in waiting if isinstance(waiting, list) else (waiting,):
                if not group.future.done():
                    group.future.set_exception(error)
        self._by_task.clear()
