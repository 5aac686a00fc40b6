"""Threads for synchronous agents: a call that outlives its attempt gives its thread's place to a fresh one.

Python cannot stop a thread. A plain function that ignores its timeout (or a
cancel) keeps running; if it kept its place in the pool, a few dozen such
functions would leave no thread for any other synchronous agent. Here an
abandoned call no longer counts against ``max_threads``: the pool starts
another thread for new work, and the abandoned one exits when (if ever) its
function returns; its result is dropped. Threads are daemons, so a hung
function never keeps the process from exiting.

An abandoned thread still holds memory, so at most ``max_stuck`` are replaced
at once; past that bound an abandoned call keeps its place (the pool shrinks
until some return) and an error is logged. ``statistics()`` reports the
numbers, ``stuck()`` who is stuck and since when.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pepper.engine")


@dataclass(frozen=True, slots=True)
class ThreadStatistics:
    """A snapshot of an ``AgentThreads`` pool."""

    max_threads: int  #: threads that may run calls at once
    threads: int  #: threads holding a place in the pool (busy or idle)
    busy: int  #: of those, running a call
    queued: int  #: calls waiting for a thread
    stuck: int  #: abandoned calls still running on threads of their own
    max_stuck: int  #: abandoned calls replaced at most; past it they keep their place
    abandoned_total: int  #: calls abandoned since the pool started


class _Job:
    __slots__ = ("abandoned", "arg", "fn", "future", "on_return", "owner", "released", "since")

    def __init__(self, fn: Callable[[Any], Any], arg: Any, owner: Hashable) -> None:
        self.fn = fn
        self.arg = arg
        self.owner = owner
        self.future: Future[Any] = Future()
        self.abandoned = False  # its caller stopped waiting while it ran
        self.released = False  # ... and its place in the pool went to a fresh thread
        self.since = 0.0
        self.on_return: Callable[[], object] | None = None  # called on its thread once an abandoned call returns


class AgentThreads:
    """A pool of daemon threads in which an abandoned call stops taking capacity."""

    def __init__(self, max_threads: int = 64, max_stuck: int = 256, name: str = "pepper-agent") -> None:
        if max_threads < 1 or max_stuck < 0:
            raise ValueError(f"max_threads must be >= 1 and max_stuck >= 0, got {max_threads}, {max_stuck}")
        self.max_threads = max_threads
        self.max_stuck = max_stuck
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._running: dict[Future[Any], _Job] = {}
        self._stuck: dict[_Job, float] = {}
        self._threads = 0  # threads holding a place (abandoned ones that were replaced excluded)
        self._waiting = 0  # of those, waiting for a job
        self._abandoned_total = 0
        self._serial = 0
        self._full_reported = False
        self._closed = False

    def submit(self, fn: Callable[[Any], Any], arg: Any, owner: Hashable = None) -> Future[Any]:
        """Run ``fn(arg)`` on a thread; ``owner`` names the call in ``stuck()``."""
        job = _Job(fn, arg, owner)
        with self._cond:
            if self._closed:
                raise RuntimeError("the agent thread pool is closed")
            self._jobs.append(job)
            self._grow()
            self._cond.notify()
        return job.future

    def abandon(self, future: Future[Any], at: float, on_return: Callable[[], object] | None = None) -> bool:
        """The caller stopped waiting for ``future`` at time ``at``: drop it if it has not started, else
        let its thread go (replaced by a fresh one). True when the call was running (its thread is now stuck);
        then ``on_return`` is called (on that thread) once the call returns, if it ever does."""
        if future.cancel():
            return False  # never started; the thread that pops it skips it
        with self._cond:
            job = self._running.get(future)
            if job is None or job.abandoned:
                return False  # it has just ended
            job.abandoned = True
            job.since = at
            job.on_return = on_return
            self._stuck[job] = at
            self._abandoned_total += 1
            if len(self._stuck) <= self.max_stuck:
                job.released = True
                self._threads -= 1
                self._grow()
            elif not self._full_reported:
                self._full_reported = True
                log.error(
                    "%d agent calls ignored their timeout and still run; no more threads are started in their "
                    "place, so the pool has fewer than %d threads until some return (make the functions check "
                    "task.cancelled, or make them async)",
                    len(self._stuck),
                    self.max_threads,
                )
        return True

    def stuck(self) -> list[tuple[Hashable, float]]:
        """``(owner, abandoned at)`` of each abandoned call still running, oldest first."""
        with self._cond:
            return sorted(((job.owner, at) for job, at in self._stuck.items()), key=lambda item: item[1])

    def statistics(self) -> ThreadStatistics:
        with self._cond:
            busy = sum(1 for job in self._running.values() if not job.released)
            return ThreadStatistics(self.max_threads, self._threads, busy, len(self._jobs), len(self._stuck),
                                    self.max_stuck, self._abandoned_total)  # fmt: skip

    def close(self) -> None:
        """Start nothing more: queued calls are cancelled, idle threads exit, running calls are left to end."""
        with self._cond:
            self._closed = True
            for job in self._jobs:
                job.future.cancel()
            self._jobs.clear()
            self._cond.notify_all()

    def _grow(self) -> None:
        """Start a thread when queued calls outnumber idle threads and there is room (lock held)."""
        if len(self._jobs) > self._waiting and self._threads < self.max_threads and not self._closed:
            self._threads += 1
            self._serial += 1
            thread = threading.Thread(target=self._work, name=f"{self._name}-{self._serial}", daemon=True)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._waiting += 1
                    self._cond.wait()
                    self._waiting -= 1
                if not self._jobs:  # closed
                    self._threads -= 1
                    return
                job = self._jobs.popleft()
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued
                self._running[job.future] = job
            try:
                value, error = job.fn(job.arg), None
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, as concurrent.futures does
                value, error = None, exc
            with self._cond:
                del self._running[job.future]
                abandoned, on_return = job.abandoned, job.on_return
                if abandoned:
                    self._stuck.pop(job, None)
                    if len(self._stuck) < self.max_stuck:
                        self._full_reported = False
            if abandoned:
                if on_return is not None:  # outside the lock: it may take a while
                    _notify(on_return)
                if job.released:
                    return  # its place went to another thread
                continue
            # Outside the lock: setting the result runs the caller's callbacks.
            if error is None:
                job.future.set_result(value)
            else:
                job.future.set_exception(error)
            del job, value, error  # do not keep the last result alive while idle


def _notify(on_return: Callable[[], object]) -> None:
    """Tell whoever abandoned a call that it returned (outside the lock; a failing callback is logged)."""
    try:
        on_return()
    except Exception:
        log.exception("the callback of an abandoned agent call that returned failed")
