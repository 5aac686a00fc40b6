"""Python's cycle collector while a burst of tasks is in memory.

The collector runs its youngest generation every 700 allocations by default. An
engine holding tens of thousands of tasks allocates records, events and rows by
the hundred thousand, and each of those runs walks what was allocated since and
moves the survivors on, so a fifth of a large burst's time went to collecting
objects that are not garbage. While an engine holds at least ``BURST`` unsettled
tasks, the youngest generation's threshold is raised to ``YOUNG`` allocations; it
is put back once every engine of the process is below ``CALM``. The older
generations' thresholds are left as they are, so nothing is left uncollected for
long; the thresholds are the process's, so they are put back only if nobody
changed them meanwhile. A submission of at least ``BURST`` tasks raises it while it is
built and stored (``bulk``), before the engine holds them.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Unsettled tasks in an engine's memory from which the young generation is collected less often.
BURST = 5_000
#: Below this many (in every engine), the thresholds are put back.
CALM = 1_000
#: Allocations between two runs of the young generation during a burst.
YOUNG = 50_000

_lock = threading.Lock()
_bursting: set[int] = set()  # ids of the engines in a burst now
_saved: tuple[int, ...] | None = None  # the thresholds before the first of them began
_raised: tuple[int, ...] | None = None  # what they were set to


class Collector:
    """One engine's part: ``note`` how many unsettled tasks it holds (once per loop turn that wrote), and
    ``release`` when it stops."""

    __slots__ = ("_bursting",)

    def __init__(self) -> None:
        self._bursting = False

    def note(self, unsettled: int) -> None:
        if not self._bursting:
            if unsettled >= BURST:
                self._bursting = True
                _begin(id(self))
        elif unsettled < CALM:
            self.release()

    def release(self) -> None:
        if self._bursting:
            self._bursting = False
            _end(id(self))

    @property
    def bursting(self) -> bool:
        return self._bursting


@contextmanager
def bulk(size: int) -> Iterator[None]:
    """While a submission of ``size`` tasks is checked and stored: from ``BURST`` tasks, at the burst's pace."""
    if size < BURST:
        yield
        return
    key = object()  # alive until the end: its id is this submission's own
    _begin(id(key))
    try:
        yield
    finally:
        _end(id(key))


def _begin(key: int) -> None:
    global _saved, _raised
    with _lock:
        _bursting.add(key)
        if _saved is None:
            current = gc.get_threshold()
            if current[0] == 0 or current[0] >= YOUNG:  # collection is off, or already this rare: leave it
                return
            _saved, _raised = current, (YOUNG, *current[1:])
            gc.set_threshold(*_raised)


def _end(key: int) -> None:
    global _saved, _raised
    with _lock:
        _bursting.discard(key)
        if _bursting or _saved is None:
            return
        if gc.get_threshold() == _raised:  # nobody changed them meanwhile
            gc.set_threshold(*_saved)
        _saved = _raised = None
