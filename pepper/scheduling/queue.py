"""Ready queues: highest priority first, ageing so low priority never starves.

A waiting task's effective priority grows linearly with the time it has been
ready: ``priority + rate * (now - ready_at)``. Since every task ages at the same
rate, the order between two tasks never changes with ``now``; sorting by
``rate * ready_at - priority`` (smaller first) is the same order at every
instant, so a plain heap works without re-sorting.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable


def ageing_key(priority: int, ready_at: float, rate_per_second: float) -> float:
    """Sort key of a ready task; smaller runs first."""
    return rate_per_second * ready_at - priority


class ReadyQueue:
    """Ready task ids, smallest ``(key, seq)`` first, with lazy removal.

    Items are ``(key, seq, task_id)``; ``seq`` is unique. A task leaves the queue by being popped,
    or by the owner forgetting it: ``is_live(task_id, seq)`` is asked before an
    item is returned, and dead items are dropped then.

    Most items come in order (a burst of one priority: each ready no earlier than the one before, with a
    later ticket), and those wait in a deque, served from its front without the heap's reordering (a heap
    of a million items compares about forty times a pop); an item that comes before the last one pushed
    goes to a heap beside it. The first item is the smaller of their two fronts.
    """

    __slots__ = ("_heap", "_run")

    def __init__(self) -> None:
        self._run: deque[tuple[float, int, str]] = deque()  # in order
        self._heap: list[tuple[float, int, str]] = []

    def push(self, key: float, seq: int, task_id: str) -> None:
        item = (key, seq, task_id)
        run = self._run
        if not run or run[-1] < item:
            run.append(item)
        else:
            heapq.heappush(self._heap, item)

    def head(self, is_live: Callable[[str, int], bool]) -> tuple[float, int, str] | None:
        """The first live item, without removing it."""
        run, heap = self._run, self._heap
        while run and not is_live(run[0][2], run[0][1]):
            run.popleft()
        while heap and not is_live(heap[0][2], heap[0][1]):
            heapq.heappop(heap)
        if run and (not heap or run[0] < heap[0]):
            return run[0]
        return heap[0] if heap else None

    def pop(self) -> tuple[float, int, str]:
        """Remove and return the first item (call ``head`` first)."""
        run, heap = self._run, self._heap
        if run and (not heap or run[0] < heap[0]):
            return run.popleft()
        return heapq.heappop(heap)

    def count_before(self, key: float, seq: int, is_live: Callable[[str, int], bool]) -> int:
        """How many live items would be served before one with ``(key, seq)``."""
        return sum(1 for k, s, t in self.items() if (k, s) < (key, seq) and is_live(t, s))

    def items(self) -> list[tuple[float, int, str]]:
        """Every item, live or not, in no particular order."""
        return [*self._run, *self._heap]

    def __len__(self) -> int:
        return len(self._run) + len(self._heap)
