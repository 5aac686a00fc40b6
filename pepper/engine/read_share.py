"""The share of the interpreter that readers on other threads may take from the engine's thread.

A read of the engine's state in place (``inspection.read_still``) holds the interpreter while it reads: one
read is short, but threads that read without pause would leave the engine's thread waiting for it, and each
time the engine's thread lets go of it (every database call does) it may wait a whole switch interval to get
it back. So reads in place draw on a budget of reading time that fills at ``share`` of the time that passes,
up to ``burst``; a reader that finds it spent asks on the engine's thread instead, where it waits its turn
without holding the interpreter. An occasional reader always reads in place; readers that never pause get
their answers in place for about ``share`` of the time and through the engine's thread for the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from pepper.errors import ValidationError

#: The fraction of time that reads in place may take, all reading threads together.
SHARE: Final = 0.5
#: The most reading time that may be taken in one go, in seconds.
BURST: Final = 0.002


class ReadShare:
    """A budget of reading time in place, shared by every reading thread (a token bucket, in seconds)."""

    __slots__ = ("_at", "_left", "_lock", "_timer", "burst", "handed_over", "in_place", "share")

    def __init__(self, share: float = SHARE, burst: float = BURST, timer: Callable[[], float] = time.perf_counter):
        if not 0 < share <= 1:
            raise ValidationError(f"share must be a fraction in (0, 1], got {share!r}")
        if burst <= 0:
            raise ValidationError(f"burst must be a positive number of seconds, got {burst!r}")
        self.share, self.burst = share, burst
        self._timer = timer
        self._lock = threading.Lock()
        self._left = burst
        self._at = timer()
        self.in_place = 0  # reads that began in place
        self.handed_over = 0  # reads refused for want of budget (asked on the engine's thread instead)

    def begin(self) -> float | None:
        """When a read in place may begin (its start, to give to ``spent``); None when the budget is spent."""
        with self._lock:
            now = self._timer()
            self._left = min(self.burst, self._left + (now - self._at) * self.share)
            self._at = now
            if self._left > 0:
                self.in_place += 1
                return now
            self.handed_over += 1
            return None

    def spent(self, began: float) -> None:
        """A read that ``began`` (from ``begin``) has ended: its time is taken from the budget."""
        with self._lock:
            self._left -= self._timer() - began

    def left(self) -> float:
        """The reading time left now, in seconds (negative while overdrawn)."""
        with self._lock:
            return min(self.burst, self._left + (self._timer() - self._at) * self.share)
