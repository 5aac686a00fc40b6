"""The ready queue serves the smallest (key, ticket) first, whatever order items come in, skipping dead ones."""

from __future__ import annotations

import heapq
import random

import pytest

from pepper.scheduling.queue import ReadyQueue


class HeapOnly:
    """The reference: one heap, as the queue was before it kept items that come in order apart."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, str]] = []

    def push(self, key: float, seq: int, task_id: str) -> None:
        heapq.heappush(self.heap, (key, seq, task_id))

    def head(self, is_live):  # type: ignore[no-untyped-def]
        while self.heap and not is_live(self.heap[0][2], self.heap[0][1]):
            heapq.heappop(self.heap)
        return self.heap[0] if self.heap else None

    def pop(self) -> tuple[float, int, str]:
        return heapq.heappop(self.heap)


@pytest.mark.parametrize("seed", range(20))
def test_items_are_served_as_one_heap_would_serve_them(seed: int) -> None:
    # Bursts in order (one priority, later ready times), items out of order (a higher priority, a retry that is
    # ready earlier), tickets that die (a task cancelled or claimed elsewhere), heads asked and items popped.
    rng = random.Random(seed)
    queue, reference = ReadyQueue(), HeapOnly()
    live: dict[str, int] = {}
    seq, now, served = 0, 0.0, []

    def is_live(task_id: str, ticket: int) -> bool:
        return live.get(task_id) == ticket

    for step in range(3000):
        roll = rng.random()
        if roll < 0.55:
            seq += 1
            now += rng.choice((0.0, 0.0, 0.001, 1.0))
            priority = rng.choice((0, 0, 0, 0, 5, -3)) if rng.random() < 0.3 else 0
            key = now - priority
            if rng.random() < 0.1:
                key -= rng.uniform(0, 50)  # ready earlier than the last one pushed
            task_id = f"t{rng.randrange(400)}"
            live[task_id] = seq  # a task queued again: its older ticket is dead
            queue.push(key, seq, task_id)
            reference.push(key, seq, task_id)
        elif roll < 0.65 and live:
            del live[rng.choice(sorted(live))]
        else:
            first, expected = queue.head(is_live), reference.head(is_live)
            assert first == expected, step
            assert len(queue) >= (first is not None)
            if first is not None and rng.random() < 0.8:
                assert queue.pop() == reference.pop() == first
                del live[first[2]]
                served.append(first)
    while (first := reference.head(is_live)) is not None:
        assert queue.head(is_live) == first
        assert queue.pop() == reference.pop()
        del live[first[2]]
    assert queue.head(is_live) is None
    assert served and len(served) > 100


def test_a_burst_in_order_is_served_in_order_and_an_urgent_item_goes_first() -> None:
    queue = ReadyQueue()
    for seq in range(1, 1001):
        queue.push(10.0, seq, f"t{seq}")
    queue.push(-5.0, 1001, "urgent")  # a higher priority: a smaller key than the burst's
    queue.push(10.0, 1002, "late")
    live = {f"t{seq}": seq for seq in range(1, 1001)} | {"urgent": 1001, "late": 1002}
    del live["t1"]  # cancelled while queued

    def is_live(task_id: str, ticket: int) -> bool:
        return live.get(task_id) == ticket

    order = []
    while queue.head(is_live) is not None:
        order.append(queue.pop()[2])
    assert order == ["urgent", *(f"t{seq}" for seq in range(2, 1001)), "late"]
    assert len(queue) == 0


def test_counting_and_listing_see_every_item() -> None:
    queue = ReadyQueue()
    queue.push(1.0, 1, "a")
    queue.push(2.0, 2, "b")
    queue.push(0.5, 3, "c")  # out of order
    queue.push(3.0, 4, "d")
    everyone = lambda task_id, ticket: True  # noqa: E731
    assert len(queue) == 4
    assert sorted(queue.items()) == [(0.5, 3, "c"), (1.0, 1, "a"), (2.0, 2, "b"), (3.0, 4, "d")]
    assert queue.count_before(2.0, 2, everyone) == 2  # c and a
    assert queue.count_before(2.0, 2, lambda task_id, ticket: task_id != "c") == 1
