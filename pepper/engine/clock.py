"""Time as an input: the system clock, and a manual one for tests and simulations.

A ``Clock`` tells the time (``now``) and is the engine's only source of timers:
``call_at`` arms a callback, ``sleep`` waits, ``timeout`` bounds a block. The
system clock hands these to the running event loop; the manual clock keeps its own
queue of timers and runs them, on the loop that armed them, when it is moved on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

_SETTLE_DEADLINE = 60.0  # seconds a manual clock waits for another thread's loop to run a timer (a safety net)
_SETTLE_ROUNDS = 50  # loop turns a manual clock waits, at most, for the loop to run out of ready callbacks


class TimerHandle(Protocol):
    """An armed timer; ``cancel()`` stops it from running (no effect once it ran)."""

    def cancel(self) -> None: ...


class Deadline(Protocol):
    """The value of ``async with clock.timeout(...) as deadline``."""

    def expired(self) -> bool: ...


class Timeout(Protocol):
    """An async context manager that cancels its block at a deadline and raises ``TimeoutError``."""

    async def __aenter__(self) -> Deadline: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None: ...


class Clock(Protocol):
    """Wall-clock seconds since the epoch (what records store), and timers in that time."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` on the running event loop once the time is ``when``."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...

    def timeout(self, seconds: float) -> Timeout:
        """Cancel the block after ``seconds`` of this clock's time (``asyncio.timeout``'s contract)."""
        ...


class SystemClock:
    """The real time; timers are the running event loop's."""

    def now(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, when - time.time()), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> Timeout:
        return asyncio.timeout(seconds)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "loop", "when")

    def __init__(self, when: float, callback: Callable[[], object], loop: asyncio.AbstractEventLoop | None) -> None:
        self.when = when
        self.callback = callback
        self.loop = loop
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _ManualTimeout:
    """``asyncio.timeout`` whose deadline is a manual clock's timer."""

    def __init__(self, clock: ManualClock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._inner = asyncio.timeout(None)
        self._timer: TimerHandle | None = None

    async def __aenter__(self) -> Deadline:
        deadline = await self._inner.__aenter__()
        loop = asyncio.get_running_loop()

        def expire() -> None:
            deadline.reschedule(loop.time())

        self._timer = self._clock.call_at(self._clock.now() + self._seconds, expire)
        return deadline

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self._inner.__aexit__(exc_type, exc_val, exc_tb)


class ManualClock:
    """A clock that moves only when told to, and runs the timers that fall due as it moves.

    Timers run on the event loop that armed them (another thread's loop included: the
    caller then waits until that loop has run them and has nothing left ready to run).
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._armed = threading.Condition(self._lock)

    def now(self) -> float:
        return self._now

    # -- timers ---------------------------------------------------------------------------

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        timer = _ManualTimer(when, callback, loop)
        with self._armed:
            heapq.heappush(self._timers, (when, next(self._seq), timer))
            self._armed.notify_all()
        return timer

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(self._now + max(0.0, seconds), wake)
        try:
            await future
        finally:
            timer.cancel()

    def timeout(self, seconds: float) -> Timeout:
        return _ManualTimeout(self, seconds)

    def next_timer(self) -> float | None:
        """When the earliest armed timer falls due (None when none is armed)."""
        with self._lock:
            self._drop_cancelled()
            return self._timers[0][0] if self._timers else None

    def wait_for_timer(self, earliest: float = 0.0, latest: float = math.inf, timeout: float = 30.0) -> float:
        """Block until a timer due between ``earliest`` and ``latest`` seconds from now is armed (by another
        thread's loop); returns when the first such timer falls due. ``timeout`` (real seconds) is a safety net."""

        def due() -> float | None:
            self._drop_cancelled()
            low, high = self._now + earliest, self._now + latest
            return min((at for at, _, t in self._timers if low <= at <= high and not t.cancelled), default=None)

        found: list[float] = []

        def armed() -> bool:
            at = due()
            if at is not None:
                found.append(at)
            return at is not None

        with self._armed:
            if not self._armed.wait_for(armed, timeout):
                raise TimeoutError(f"no timer due in {earliest:g}-{latest:g}s was armed within {timeout:g}s")
        return found[-1]

    # -- moving on ------------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``, running the timers that fall due in time order; returns the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self.set(self._now + seconds)
        return self._now

    def set(self, when: float) -> None:
        """Move to ``when``, running the timers that fall due in time order."""
        if when < self._now:
            raise ValueError("a clock cannot go backwards")
        while (timer := self._pop_due(when)) is not None:
            self._now = max(self._now, timer.when)
            self._run(timer, when)
        self._now = when

    def advance_to_next_timer(self) -> float:
        """Move to the earliest armed timer and run every timer due then; returns the new time."""
        due = self.next_timer()
        if due is None:
            raise LookupError("no timer is armed")
        self.set(max(due, self._now))
        return self._now

    def _drop_cancelled(self) -> bool:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return False

    def _pop_due(self, when: float) -> _ManualTimer | None:
        with self._lock:
            self._drop_cancelled()
            if self._timers and self._timers[0][0] <= when:
                return heapq.heappop(self._timers)[2]
            return None

    def _run(self, timer: _ManualTimer, until: float) -> None:
        loop = timer.loop
        if loop is None:
            _unless_cancelled(timer)
            return
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # moved on from the loop itself: the callback runs in its own turn
            loop.call_soon(_unless_cancelled, timer)
            return
        asyncio.run_coroutine_threadsafe(self._run_on_loop(timer, until), loop).result(_SETTLE_DEADLINE)

    async def _run_on_loop(self, timer: _ManualTimer, until: float) -> None:
        """Run ``timer`` and the timers of the same loop due up to ``until`` after it, each followed by a settle.

        One hop to the loop for the lot: periodic chores arm many timers over a long advance."""
        loop = asyncio.get_running_loop()
        while True:
            _unless_cancelled(timer)
            for _ in range(_SETTLE_ROUNDS):  # let the loop run until nothing is ready (or for a bounded while)
                await asyncio.sleep(0)
                if not getattr(loop, "_ready", None):  # the loop's queue of ready callbacks (CPython's event loops)
                    break
            with self._lock:
                self._drop_cancelled()
                if not self._timers or self._timers[0][0] > until or self._timers[0][2].loop is not loop:
                    return
                timer = heapq.heappop(self._timers)[2]
            self._now = max(self._now, timer.when)


def _unless_cancelled(timer: _ManualTimer) -> None:
    if not timer.cancelled:
        timer.callback()
