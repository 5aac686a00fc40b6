"""Ready queues: highest priority first, ageing so low priority never starves.

A waiting task's effective priority grows linearly with the time it has been
ready: ``priority + rate * (now - ready_at)``. Since every task ages at the same
rate, the order between two tasks never changes with ``now``; sorting by
``rate * ready_at - priority`` (smaller first) is the same order at every
instant, so a plain heap works without re-sorting.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


def ageing_key(priority: int, ready_at: float, rate_per_second: float) -> float:
    """Sort key of a ready task; smaller runs first."""
    return rate_per_second * ready_at - priority


class ReadyQueue:
    """A heap of ready task ids with lazy removal.

    Items are ``(key, seq, task_id)``. A task leaves the queue by being popped,
    or by the owner forgetting it: ``is_live(task_id, seq)`` is asked before an
    item is returned, and dead items are dropped then.
    """

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []

    def push(self, key: float, seq: int, task_id: str) -> None:
        heapq.heappush(self._heap, (key, seq, task_id))

    def head(self, is_live: Callable[[str, int], bool]) -> tuple[float, int, str] | None:
        """The first live item, without removing it."""
        heap = self._heap
        while heap:
            item = heap[0]
            if is_live(item[2], item[1]):
                return item
            heapq.heappop(heap)
        return None

    def pop(self) -> tuple[float, int, str]:
        """Remove and return the first item (call ``head`` first)."""
        return heapq.heappop(self._heap)

    def count_before(self, key: float, seq: int, is_live: Callable[[str, int], bool]) -> int:
        """How many live items would be served before one with ``(key, seq)``."""
        return sum(1 for k, s, t in self._heap if (k, s) < (key, seq) and is_live(t, s))

    def items(self) -> list[tuple[float, int, str]]:
        """Every item, live or not, in no particular order."""
        return list(self._heap)

    def __len__(self) -> int:
        return len(self._heap)
