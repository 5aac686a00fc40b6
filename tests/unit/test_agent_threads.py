"""The thread pool of synchronous agents: abandoned calls give their place to fresh threads, within a bound."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from pepper.engine.executors.threads import AgentThreads
from tests.support import eventually


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # blocked calls end with the test


def blocking(started: threading.Event, release: threading.Event):
    def call(value):
        started.set()
        release.wait()
        return value

    return call


def test_an_abandoned_call_gives_its_place_to_a_fresh_thread(release):
    pool = AgentThreads(max_threads=1)
    started = threading.Event()
    stuck = pool.submit(blocking(started, release), "late", owner="stuck-call")
    started.wait(30)

    assert pool.abandon(stuck, at=5.0)
    assert pool.submit(lambda value: value * 2, 21).result(timeout=30) == 42
    stats = pool.statistics()
    assert (stats.stuck, stats.threads, stats.abandoned_total) == (1, 1, 1)
    assert pool.stuck() == [("stuck-call", 5.0)]

    release.set()
    eventually(lambda: pool.statistics().stuck == 0, "the abandoned call ended")
    assert not stuck.done()  # its result is dropped: nobody waits for it
    pool.close()


def test_a_call_abandoned_before_it_started_never_runs(release):
    pool = AgentThreads(max_threads=1)
    started = threading.Event()
    first = pool.submit(blocking(started, release), None)
    started.wait(30)
    ran = []
    queued = pool.submit(ran.append, "queued")

    assert not pool.abandon(queued, at=1.0)
    release.set()
    first.result(timeout=30)
    assert pool.submit(ran.append, "next").result(timeout=30) is None
    assert ran == ["next"] and pool.statistics().stuck == 0
    pool.close()


def test_past_max_stuck_abandoned_calls_keep_their_place_and_it_is_logged(release, caplog):
    pool = AgentThreads(max_threads=1, max_stuck=1)
    calls = []
    for _ in range(2):
        started = threading.Event()
        calls.append(pool.submit(blocking(started, release), None))
        started.wait(30)
        assert pool.abandon(calls[-1], at=0.0)
    waiting = pool.submit(lambda value: value, "after")

    stats = pool.statistics()
    assert (stats.stuck, stats.threads, stats.queued) == (2, 1, 1)
    assert "no more threads are started in their place" in caplog.text
    release.set()
    assert waiting.result(timeout=30) == "after"  # the call that kept its place returned, and serves again
    eventually(lambda: pool.statistics().stuck == 0, "the abandoned calls ended")
    pool.close()


def test_a_closed_pool_cancels_queued_calls_and_refuses_new_ones(release):
    pool = AgentThreads(max_threads=1)
    started = threading.Event()
    pool.submit(blocking(started, release), None)
    started.wait(30)
    queued = pool.submit(lambda value: value, 1)

    pool.close()
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(lambda value: value, 2)


def test_whoever_abandoned_a_running_call_hears_once_when_it_returns(release, caplog):
    pool = AgentThreads(max_threads=1)
    started, returned = threading.Event(), []
    stuck = pool.submit(blocking(started, release), "late")
    started.wait(30)
    assert pool.abandon(stuck, at=1.0, on_return=lambda: returned.append(threading.current_thread().name))
    assert returned == []  # it still runs
    release.set()
    eventually(lambda: returned, "the abandoned call returned")
    assert len(returned) == 1 and returned[0] != threading.current_thread().name  # told on the call's thread

    started2, release2 = threading.Event(), threading.Event()
    failing = pool.submit(blocking(started2, release2), None)
    started2.wait(30)
    assert pool.abandon(failing, at=2.0, on_return=lambda: 1 / 0)
    release2.set()  # a callback that raises is logged; the pool goes on
    eventually(lambda: "abandoned agent call that returned failed" in caplog.text, "the callback's error logged")
    assert pool.submit(lambda value: value + 1, 1).result(timeout=30) == 2
    pool.close()


def test_a_call_that_ended_before_it_was_abandoned_reports_nothing():
    pool = AgentThreads(max_threads=1)
    done = pool.submit(lambda value: value, 1)
    assert done.result(timeout=30) == 1
    called = []
    assert not pool.abandon(done, at=1.0, on_return=lambda: called.append(1))
    assert called == [] and pool.statistics().stuck == 0
    pool.close()
