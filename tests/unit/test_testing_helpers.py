"""The public test helpers drive the real scheduler in virtual time."""

from __future__ import annotations

from pepper.testing import StateHarness, make_agent, make_task


def test_the_harness_runs_a_retry_after_its_backoff_in_virtual_time():
    harness = StateHarness([make_agent("a", capacity=1)])
    harness.submit(make_task("t", max_retries=1), make_task("after", dependencies=["t"]))
    assert [s.task_id for s in harness.started] == ["t"]
    harness.finish("t", error="flaky")
    assert harness.running() == []
    harness.advance(0.5)
    assert harness.running() == []  # default first retry waits 0.8-1.0 s
    harness.advance(1.0)
    assert harness.running() == ["t"]
    harness.finish("t", result=1)
    assert [s.task_id for s in harness.started] == ["t", "t", "after"]


def test_a_manual_clock_runs_timers_sleeps_and_timeouts_only_when_moved_on():
    import asyncio
    import threading

    from pepper.testing import ManualClock

    clock = ManualClock(100.0)
    seen: list[tuple[str, float]] = []
    ready, done = threading.Event(), threading.Event()

    async def engine() -> None:  # a loop on its own thread, as the engine's is
        fired = asyncio.Event()
        clock.call_at(130.0, lambda: (seen.append(("timer", clock.now())), fired.set()))
        cancelled = clock.call_at(110.0, lambda: seen.append(("cancelled", clock.now())))
        cancelled.cancel()
        ready.set()
        await clock.sleep(20)
        seen.append(("slept", clock.now()))
        try:
            async with clock.timeout(5) as deadline:
                await asyncio.Event().wait()
        except TimeoutError:
            seen.append(("timed out" if deadline.expired() else "other", clock.now()))
        await fired.wait()
        done.set()

    thread = threading.Thread(target=asyncio.run, args=(engine(),))
    thread.start()
    assert ready.wait(10)
    assert clock.wait_for_timer(earliest=1, latest=25) == 120.0  # the sleep; the cancelled timer is gone
    clock.advance(10)
    assert seen == []  # nothing due yet
    clock.advance(15)  # the sleep ends at 120 and arms a 5 s timeout, which expires at 125
    assert clock.advance_to_next_timer() == 130.0
    assert done.wait(10)
    thread.join(10)
    assert seen == [("slept", 120.0), ("timed out", 125.0), ("timer", 130.0)]


def test_a_cancelled_attempt_in_the_harness_stops_and_frees_its_slot():
    h = StateHarness([make_agent("a", ["t"], capacity=1)])
    h.submit(make_task("first", "t"), make_task("second", "t"))
    assert [s.task_id for s in h.started] == ["first"]
    actions = h.cancel("first")
    assert [s.task_id for s in h.started] == ["first", "second"]  # the aborted call stopped: its slot went on
    assert any(type(a).__name__ == "Abort" for a in actions)
    assert h.state.tasks["first"].state.value == "cancelled" and h.running() == ["second"]
